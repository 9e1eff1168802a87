//! H.264 decoding shared by the file and RTSP sources: openh264 with `Flush::NoFlush` (the default
//! flush-after-every-picture breaks streams with B-frames, see stack-facts §4), presentation
//! timestamps re-attached to the pictures it outputs, and YUV→RGB honouring the SPS colour range
//! (traffic cameras and phone clips often send full-range "yuvj420p").

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::time::SystemTime;

use openh264::OpenH264API;
use openh264::decoder::{DecodedYUV, Decoder, DecoderConfig, Flush};
use openh264::formats::YUVSource;
use yuvutils_rs::{YuvPlanarImage, YuvRange, YuvStandardMatrix, yuv420_to_rgb};

/// A decoded picture with the timing of the access unit it came from.
pub(crate) struct Decoded {
    /// Presentation time in the caller's clock units.
    pub pts: i64,
    /// Whatever the caller attached to the access unit (receipt wall time).
    pub tag: SystemTime,
    pub width: u32,
    pub height: u32,
    pub rgb: Vec<u8>,
}

/// openh264 outputs pictures in presentation order but drops the caller's timestamps, so the
/// pending PTS values are kept in a min-heap: each output picture takes the smallest one. That is
/// exact as long as every access unit yields one picture, which holds for conforming streams.
pub(crate) struct H264Decoder {
    decoder: Decoder,
    pending: BinaryHeap<Reverse<(i64, SystemTime)>>,
    full_range: bool,
    last_pts: i64,
}

impl H264Decoder {
    pub(crate) fn new() -> Result<Self, String> {
        let config = DecoderConfig::new().flush_after_decode(Flush::NoFlush);
        let decoder = Decoder::with_api_config(OpenH264API::from_source(), config)
            .map_err(|e| format!("cannot start the openh264 decoder: {e}"))?;
        Ok(Self {
            decoder,
            pending: BinaryHeap::new(),
            full_range: false,
            last_pts: i64::MIN,
        })
    }

    /// Feeds one access unit in Annex B form. Returns the picture the decoder released, if any
    /// (with B-frames it releases pictures later, in presentation order).
    pub(crate) fn push(
        &mut self,
        annexb: &[u8],
        pts: i64,
        tag: SystemTime,
    ) -> Result<Option<Decoded>, String> {
        for nal in nal_units(annexb) {
            if nal.first().map(|b| b & 0x1f) == Some(7) {
                // No video signal info in the SPS means limited range.
                self.full_range = sps_full_range(nal).unwrap_or(false);
            }
        }
        self.pending.push(Reverse((pts, tag)));
        match self.decoder.decode(annexb) {
            Ok(Some(yuv)) => {
                let converted = to_rgb(&yuv, self.full_range);
                match converted {
                    Ok((rgb, w, h)) => Ok(Some(self.stamp(rgb, w, h))),
                    Err(e) => {
                        // Its timestamp is consumed so later pictures keep theirs.
                        self.pending.pop();
                        Err(e)
                    }
                }
            }
            Ok(None) => Ok(None),
            Err(e) => {
                // The picture is lost: forget its timestamp so later pictures keep theirs.
                self.pending.retain(|Reverse((p, _))| *p != pts);
                Err(e.to_string())
            }
        }
    }

    /// Releases the pictures still held for reordering, at the end of a stream or session.
    pub(crate) fn flush(&mut self) -> Result<Vec<Decoded>, String> {
        let full_range = self.full_range;
        let pictures: Vec<(Vec<u8>, u32, u32)> = self
            .decoder
            .flush_remaining()
            .map_err(|e| e.to_string())?
            .iter()
            .map(|yuv| to_rgb(yuv, full_range))
            .collect::<Result<_, _>>()?;
        let out = pictures
            .into_iter()
            .map(|(rgb, w, h)| self.stamp(rgb, w, h))
            .collect();
        self.pending.clear();
        Ok(out)
    }

    fn stamp(&mut self, rgb: Vec<u8>, width: u32, height: u32) -> Decoded {
        let (pts, tag) = match self.pending.pop() {
            Some(Reverse(p)) => p,
            None => (self.last_pts.saturating_add(1), SystemTime::now()),
        };
        let pts = pts.max(self.last_pts.saturating_add(1));
        self.last_pts = pts;
        Decoded {
            pts,
            tag,
            width,
            height,
            rgb,
        }
    }
}

/// I420 → packed RGB8 with BT.601 coefficients, limited or full range (SIMD in yuvutils-rs: this
/// is a per-pixel step at full resolution on every frame).
fn to_rgb(yuv: &DecodedYUV<'_>, full_range: bool) -> Result<(Vec<u8>, u32, u32), String> {
    let (w, h) = yuv.dimensions();
    let (sy, su, sv) = yuv.strides();
    let planes = YuvPlanarImage {
        y_plane: yuv.y(),
        y_stride: sy as u32,
        u_plane: yuv.u(),
        u_stride: su as u32,
        v_plane: yuv.v(),
        v_stride: sv as u32,
        width: w as u32,
        height: h as u32,
    };
    let range = if full_range {
        YuvRange::Full
    } else {
        YuvRange::Limited
    };
    let mut rgb = super::pool::frame_buffer(w * h * 3);
    yuv420_to_rgb(
        &planes,
        &mut rgb,
        w as u32 * 3,
        range,
        YuvStandardMatrix::Bt601,
    )
    .map_err(|e| format!("YUV to RGB: {e}"))?;
    Ok((rgb, w as u32, h as u32))
}

/// Splits an Annex B byte stream into NAL units (without start codes).
pub(crate) fn nal_units(data: &[u8]) -> impl Iterator<Item = &[u8]> {
    let mut starts = Vec::new();
    let mut i = 0;
    while i + 3 <= data.len() {
        if data[i] == 0 && data[i + 1] == 0 && data[i + 2] == 1 {
            starts.push(i + 3);
            i += 3;
        } else {
            i += 1;
        }
    }
    let ends: Vec<usize> = starts
        .iter()
        .skip(1)
        .map(|&s| {
            // Drop the start code and a leading zero of a 4-byte start code.
            let mut e = s - 3;
            if e > 0 && data[e - 1] == 0 {
                e -= 1;
            }
            e
        })
        .chain(std::iter::once(data.len()))
        .collect();
    starts
        .into_iter()
        .zip(ends)
        .filter(|(s, e)| e > s)
        .map(move |(s, e)| &data[s..e])
}

/// Converts one AVCC sample (length-prefixed NAL units, as stored in mp4) to Annex B.
pub(crate) fn avcc_to_annexb(
    sample: &[u8],
    length_size: usize,
    out: &mut Vec<u8>,
) -> Result<(), String> {
    if !(1..=4).contains(&length_size) {
        return Err(format!("invalid NAL length size {length_size} in avcC"));
    }
    let mut i = 0;
    while i < sample.len() {
        if i + length_size > sample.len() {
            return Err("sample ends inside a NAL length field".into());
        }
        let len = sample[i..i + length_size]
            .iter()
            .fold(0usize, |acc, b| (acc << 8) | usize::from(*b));
        i += length_size;
        if len > sample.len() - i {
            return Err(format!(
                "NAL unit of {len} bytes runs past the end of the sample"
            ));
        }
        out.extend_from_slice(&[0, 0, 0, 1]);
        out.extend_from_slice(&sample[i..i + len]);
        i += len;
    }
    Ok(())
}

/// Exp-Golomb bit reader over an RBSP (emulation-prevention bytes removed); H.265 parameter
/// sets are read with it too (`clips`).
pub(crate) struct Bits {
    data: Vec<u8>,
    pos: usize,
}

impl Bits {
    /// A reader of `nal`'s payload (after its header), emulation prevention taken out.
    pub(crate) fn new(nal: &[u8]) -> Self {
        let mut data = Vec::with_capacity(nal.len());
        let mut zeros = 0;
        for &b in nal {
            if zeros >= 2 && b == 3 {
                zeros = 0;
                continue;
            }
            zeros = if b == 0 { zeros + 1 } else { 0 };
            data.push(b);
        }
        Self { data, pos: 0 }
    }

    pub(crate) fn bit(&mut self) -> Option<u32> {
        let byte = *self.data.get(self.pos / 8)?;
        let b = (byte >> (7 - self.pos % 8)) & 1;
        self.pos += 1;
        Some(u32::from(b))
    }

    pub(crate) fn bits(&mut self, n: u32) -> Option<u32> {
        (0..n).try_fold(0u32, |acc, _| Some((acc << 1) | self.bit()?))
    }

    /// Skips `n` bits; `None` past the end.
    pub(crate) fn skip(&mut self, n: usize) -> Option<()> {
        self.pos += n;
        (self.pos <= self.data.len() * 8).then_some(())
    }

    /// The RBSP bytes read so far and after.
    pub(crate) fn rbsp(&self) -> &[u8] {
        &self.data
    }

    pub(crate) fn ue(&mut self) -> Option<u32> {
        let mut zeros = 0;
        while self.bit()? == 0 {
            zeros += 1;
            if zeros > 31 {
                return None;
            }
        }
        Some((1u32 << zeros) - 1 + self.bits(zeros)?)
    }

    fn se(&mut self) -> Option<i32> {
        let k = self.ue()?;
        Some(if k % 2 == 1 {
            k.div_ceil(2) as i32
        } else {
            -((k / 2) as i32)
        })
    }
}

/// Reads `video_full_range_flag` from an SPS NAL unit (with its header byte); `None` when the SPS
/// has no video signal info (then limited range applies) or cannot be parsed.
pub(crate) fn sps_full_range(nal: &[u8]) -> Option<bool> {
    let mut r = Bits::new(nal.get(1..)?);
    let profile = r.bits(8)?;
    r.bits(16)?; // constraint flags, level
    r.ue()?; // seq_parameter_set_id
    if matches!(
        profile,
        100 | 110 | 122 | 244 | 44 | 83 | 86 | 118 | 128 | 138 | 139 | 134 | 135
    ) {
        let chroma = r.ue()?;
        if chroma == 3 {
            r.bit()?;
        }
        r.ue()?;
        r.ue()?; // bit depths
        r.bit()?; // qpprime_y_zero_transform_bypass
        if r.bit()? == 1 {
            let lists = if chroma == 3 { 12 } else { 8 };
            for i in 0..lists {
                if r.bit()? == 1 {
                    let size = if i < 6 { 16 } else { 64 };
                    let (mut last, mut next) = (8i32, 8i32);
                    for _ in 0..size {
                        if next != 0 {
                            next = (last + r.se()? + 256) % 256;
                        }
                        if next != 0 {
                            last = next;
                        }
                    }
                }
            }
        }
    }
    r.ue()?; // log2_max_frame_num
    match r.ue()? {
        0 => {
            r.ue()?;
        }
        1 => {
            r.bit()?;
            r.se()?;
            r.se()?;
            for _ in 0..r.ue()? {
                r.se()?;
            }
        }
        _ => {}
    }
    r.ue()?; // max_num_ref_frames
    r.bit()?; // gaps_in_frame_num_allowed
    r.ue()?;
    r.ue()?; // picture size in macroblocks
    if r.bit()? == 0 {
        r.bit()?; // mb_adaptive_frame_field
    }
    r.bit()?; // direct_8x8_inference
    if r.bit()? == 1 {
        for _ in 0..4 {
            r.ue()?; // cropping
        }
    }
    if r.bit()? == 0 {
        return None; // no VUI
    }
    if r.bit()? == 1 && r.bits(8)? == 255 {
        r.bits(32)?; // extended sample aspect ratio
    }
    if r.bit()? == 1 {
        r.bit()?; // overscan_appropriate
    }
    if r.bit()? == 0 {
        return None; // no video signal type
    }
    r.bits(3)?; // video_format
    Some(r.bit()? == 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn avcc_becomes_annexb_and_splits_back() {
        let sample = [0, 0, 0, 2, 0x65, 0xAA, 0, 0, 0, 1, 0x41];
        let mut out = Vec::new();
        avcc_to_annexb(&sample, 4, &mut out).unwrap();
        assert_eq!(out, [0, 0, 0, 1, 0x65, 0xAA, 0, 0, 0, 1, 0x41]);
        let nals: Vec<&[u8]> = nal_units(&out).collect();
        assert_eq!(nals, vec![&[0x65, 0xAA][..], &[0x41][..]]);
    }

    #[test]
    fn truncated_avcc_is_an_error_not_a_panic() {
        let mut out = Vec::new();
        assert!(avcc_to_annexb(&[0, 0, 0, 9, 0x65], 4, &mut out).is_err());
        assert!(avcc_to_annexb(&[0, 0], 4, &mut out).is_err());
        assert!(avcc_to_annexb(&[0], 0, &mut out).is_err());
    }

    #[test]
    fn sps_without_video_signal_info_or_garbage_gives_none() {
        // SPS with VUI absent (x264 baseline 64x64 minus the VUI): no range information.
        assert_eq!(
            sps_full_range(&[0x67, 0x42, 0xC0, 0x0A, 0xD9, 0x07, 0x3E]),
            None
        );
        for junk in [
            &[][..],
            &[0x67],
            &[0x67, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF],
        ] {
            assert_eq!(sps_full_range(junk), None);
        }
    }
}
