//! Greedy CTC decoding (PP-OCR rec): argmax per step, collapse repeats, drop blanks.

use super::super::InferenceError;

/// One line's read.
#[derive(Debug, Clone, PartialEq)]
pub struct CtcRead {
    pub text: String,
    /// Probability of each emitted character.
    pub char_probs: Vec<f32>,
    /// Mean of `char_probs` (0 when nothing was read).
    pub mean_prob: f32,
}

/// Decodes `[n, steps, classes]` where class 0 is the blank, `1..=dict.len()` the dictionary and
/// the last class a space.
pub fn decode_ctc(
    out: &[f32],
    n: usize,
    steps: usize,
    dict: &[String],
) -> Result<Vec<CtcRead>, InferenceError> {
    let classes = dict.len() + 2;
    if out.len() != n * steps * classes {
        return Err(InferenceError::Output(format!(
            "CTC: expected {n}x{steps}x{classes} values, got {}",
            out.len()
        )));
    }
    Ok(out
        .chunks_exact(steps * classes)
        .map(|m| {
            let (mut text, mut char_probs, mut prev) = (String::new(), Vec::new(), usize::MAX);
            for row in m.chunks_exact(classes) {
                let (i, p) = row
                    .iter()
                    .copied()
                    .enumerate()
                    .fold((0, f32::MIN), |a, (i, p)| if p > a.1 { (i, p) } else { a });
                if i != 0 && i != prev {
                    text.push_str(if i == classes - 1 { " " } else { &dict[i - 1] });
                    char_probs.push(p);
                }
                prev = i;
            }
            let mean_prob = if char_probs.is_empty() {
                0.0
            } else {
                char_probs.iter().sum::<f32>() / char_probs.len() as f32
            };
            CtcRead {
                text,
                char_probs,
                mean_prob,
            }
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repeats_collapse_and_blanks_separate() {
        let dict: Vec<String> = ["A", "B"].map(String::from).to_vec();
        // classes: blank, A, B, space; steps: A A blank A B space
        let steps = [1, 1, 0, 1, 2, 3];
        let mut out = vec![0.0f32; steps.len() * 4];
        for (t, &c) in steps.iter().enumerate() {
            out[t * 4 + c] = 0.9;
        }
        let r = decode_ctc(&out, 1, steps.len(), &dict).unwrap();
        assert_eq!(r[0].text, "AAB ");
        assert_eq!(r[0].char_probs.len(), 4);
    }
}
