//! Fixed-slot OCR: each slot is a softmax over the alphabet; the pad character fills unused slots.

use super::super::InferenceError;

/// One crop's read, with the full probability matrix kept for grammar-constrained decoding.
#[derive(Debug, Clone, PartialEq)]
pub struct SlotRead {
    /// Argmax text with trailing pad characters removed.
    pub text: String,
    /// Probability of the argmax class of every slot (including pad slots).
    pub slot_probs: Vec<f32>,
    /// `slots × alphabet` probabilities, row-major.
    pub probs: Vec<f32>,
}

/// Decodes `[n, slots, alphabet]` probabilities.
pub fn decode_slots(
    out: &[f32],
    n: usize,
    slots: usize,
    alphabet: &[char],
    pad: char,
) -> Result<Vec<SlotRead>, InferenceError> {
    let k = alphabet.len();
    if out.len() != n * slots * k {
        return Err(InferenceError::Output(format!(
            "slot OCR: expected {}x{slots}x{k} values, got {}",
            n,
            out.len()
        )));
    }
    Ok(out
        .chunks_exact(slots * k)
        .map(|m| {
            let mut text = String::with_capacity(slots);
            let mut slot_probs = Vec::with_capacity(slots);
            for row in m.chunks_exact(k) {
                let (i, p) = row
                    .iter()
                    .copied()
                    .enumerate()
                    .fold((0, f32::MIN), |a, (i, p)| if p > a.1 { (i, p) } else { a });
                text.push(alphabet[i]);
                slot_probs.push(p);
            }
            let trimmed = text.trim_end_matches(pad).to_string();
            SlotRead {
                text: trimmed,
                slot_probs,
                probs: m.to_vec(),
            }
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn argmax_per_slot_and_trailing_pad_stripped() {
        let alphabet: Vec<char> = "AB_".chars().collect();
        let out = [0.7, 0.2, 0.1, 0.1, 0.8, 0.1, 0.0, 0.1, 0.9];
        let r = decode_slots(&out, 1, 3, &alphabet, '_').unwrap();
        assert_eq!(r[0].text, "AB");
        assert_eq!(r[0].slot_probs, vec![0.7, 0.8, 0.9]);
        assert!(decode_slots(&out[..8], 1, 3, &alphabet, '_').is_err());
    }
}
