//! What the sources and the clip recorder know of H.264 and H.265 bitstreams: which NAL units are
//! keyframes, parameter sets and slices, how a demuxer's length-prefixed samples and `avcC`/`hvcC`
//! records become Annex B, and the `hvcC` record an MP4 track needs (the MP4 crate writes only a
//! stub for it).

use super::h264::{Bits, avcc_to_annexb};
use super::nal_units;

/// The video codecs clips are cut from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VideoCodec {
    H264,
    H265,
}

/// H.264 NAL unit types (ITU-T H.264 table 7-1).
pub(crate) const H264_SPS: u8 = 7;
pub(crate) const H264_PPS: u8 = 8;
const H264_AUD: u8 = 9;

/// H.265 NAL unit types (ITU-T H.265 table 7-1).
const HEVC_VPS: u8 = 32;
const HEVC_SPS: u8 = 33;
const HEVC_PPS: u8 = 34;
const HEVC_AUD: u8 = 35;

impl VideoCodec {
    /// The NAL unit type in a unit's first header byte.
    pub fn nal_type(self, nal: &[u8]) -> u8 {
        match (self, nal.first()) {
            (_, None) => u8::MAX,
            (VideoCodec::H264, Some(b)) => b & 0x1f,
            (VideoCodec::H265, Some(b)) => (b >> 1) & 0x3f,
        }
    }

    /// A picture a decoder can start at: an IDR (H.264), an IRAP — BLA, IDR or CRA — (H.265).
    pub fn is_keyframe(self, annexb: &[u8]) -> bool {
        nal_units(annexb).any(|n| {
            let t = self.nal_type(n);
            match self {
                VideoCodec::H264 => t == 5,
                VideoCodec::H265 => (16..=21).contains(&t),
            }
        })
    }

    /// Parameter sets (they go into the track's decoder record) and access unit delimiters
    /// (MP4 samples do without them).
    pub fn is_out_of_band(self, nal: &[u8]) -> bool {
        let t = self.nal_type(nal);
        match self {
            VideoCodec::H264 => matches!(t, H264_SPS..=H264_AUD),
            VideoCodec::H265 => matches!(t, HEVC_VPS..=HEVC_AUD),
        }
    }

    /// Whether the unit is a coded slice (a picture's data, not a parameter set or SEI).
    pub fn is_slice(self, nal: &[u8]) -> bool {
        let t = self.nal_type(nal);
        match self {
            VideoCodec::H264 => (1..=5).contains(&t),
            VideoCodec::H265 => t <= 31,
        }
    }

    /// Whether the unit is a parameter set.
    pub fn is_parameter_set(self, nal: &[u8]) -> bool {
        let t = self.nal_type(nal);
        match self {
            VideoCodec::H264 => matches!(t, H264_SPS | H264_PPS),
            VideoCodec::H265 => matches!(t, HEVC_VPS..=HEVC_PPS),
        }
    }
}

/// Why a decoder record or a sample could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct CodecDataError(pub String);

/// A demuxer's view of a stream (`stream-format=avc|hvc1|hev1`): NAL units prefixed by their
/// length, the parameter sets in a decoder record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LengthPrefixed {
    /// Bytes in each length prefix (1, 2 or 4).
    pub length_size: usize,
    /// The record's parameter sets, in order.
    pub parameter_sets: Vec<Vec<u8>>,
}

struct Bytes<'a> {
    buf: &'a [u8],
    at: usize,
}

impl<'a> Bytes<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], CodecDataError> {
        let end = self.at.checked_add(n).filter(|&e| e <= self.buf.len());
        let end = end.ok_or_else(|| {
            CodecDataError(format!(
                "decoder record ends at byte {} where {n} more were due",
                self.buf.len()
            ))
        })?;
        let s = &self.buf[self.at..end];
        self.at = end;
        Ok(s)
    }
    fn u8(&mut self) -> Result<u8, CodecDataError> {
        Ok(self.take(1)?[0])
    }
    fn u16(&mut self) -> Result<usize, CodecDataError> {
        let b = self.take(2)?;
        Ok(usize::from(u16::from_be_bytes([b[0], b[1]])))
    }
}

impl LengthPrefixed {
    /// Reads an `avcC` (H.264) or `hvcC` (H.265) record.
    pub fn from_record(codec: VideoCodec, record: &[u8]) -> Result<Self, CodecDataError> {
        let mut r = Bytes { buf: record, at: 0 };
        let mut parameter_sets = Vec::new();
        let length_size = match codec {
            VideoCodec::H264 => {
                r.take(4)?; // version, profile, compatibility, level
                let length_size = usize::from(r.u8()? & 3) + 1;
                for group in 0..2 {
                    let count = match group {
                        0 => r.u8()? & 0x1f,
                        _ => r.u8()?,
                    };
                    for _ in 0..count {
                        let n = r.u16()?;
                        parameter_sets.push(r.take(n)?.to_vec());
                    }
                }
                length_size
            }
            VideoCodec::H265 => {
                r.take(21)?; // version, profile, tier, level, chroma, bit depths, frame rate
                let length_size = usize::from(r.u8()? & 3) + 1;
                let arrays = r.u8()?;
                for _ in 0..arrays {
                    r.u8()?; // completeness and NAL type: the units say their own type
                    let count = r.u16()?;
                    for _ in 0..count {
                        let n = r.u16()?;
                        parameter_sets.push(r.take(n)?.to_vec());
                    }
                }
                length_size
            }
        };
        if length_size == 3 {
            return Err(CodecDataError(
                "a NAL length prefix of 3 bytes is not allowed".into(),
            ));
        }
        Ok(LengthPrefixed {
            length_size,
            parameter_sets,
        })
    }

    /// The H.264 track of an MP4 file as its `avc1` sample entry's `avcC` describes it; `None`
    /// when the track has no such entry.
    pub fn of_h264_track(track: &mp4::Mp4Track) -> Option<Self> {
        let avcc = &track.trak.mdia.minf.stbl.stsd.avc1.as_ref()?.avcc;
        Some(LengthPrefixed {
            length_size: usize::from(avcc.length_size_minus_one & 3) + 1,
            parameter_sets: avcc
                .sequence_parameter_sets
                .iter()
                .chain(&avcc.picture_parameter_sets)
                .map(|n| n.bytes.clone())
                .collect(),
        })
    }

    /// Appends one sample as Annex B to `out`, the record's parameter sets first when
    /// `with_parameter_sets`.
    pub fn write_annexb(
        &self,
        sample: &[u8],
        with_parameter_sets: bool,
        out: &mut Vec<u8>,
    ) -> Result<(), CodecDataError> {
        if with_parameter_sets {
            for p in &self.parameter_sets {
                out.extend_from_slice(&[0, 0, 0, 1]);
                out.extend_from_slice(p);
            }
        }
        avcc_to_annexb(sample, self.length_size, out).map_err(CodecDataError)
    }

    /// One sample as Annex B, the record's parameter sets first when `with_parameter_sets`.
    pub fn to_annexb(
        &self,
        sample: &[u8],
        with_parameter_sets: bool,
    ) -> Result<Vec<u8>, CodecDataError> {
        let mut out = Vec::with_capacity(sample.len() + 64);
        self.write_annexb(sample, with_parameter_sets, &mut out)?;
        Ok(out)
    }
}

/// The `hvcC` decoder configuration record (ISO/IEC 14496-15 §8.3.3) for an H.265 stream from
/// its VPS, SPS and PPS: profile, tier and level copied from the SPS, 4-byte NAL lengths.
pub fn hvcc_record(parameter_sets: &[&[u8]]) -> Result<Vec<u8>, CodecDataError> {
    let of = |t: u8| -> Vec<&[u8]> {
        parameter_sets
            .iter()
            .copied()
            .filter(|n| VideoCodec::H265.nal_type(n) == t)
            .collect()
    };
    let (vps, sps, pps) = (of(HEVC_VPS), of(HEVC_SPS), of(HEVC_PPS));
    let (Some(first_sps), false, false) = (sps.first(), vps.is_empty(), pps.is_empty()) else {
        return Err(CodecDataError(
            "an H.265 keyframe without its VPS, SPS and PPS".into(),
        ));
    };
    let early = || CodecDataError("the SPS ends early".into());
    // H.265's NAL header is two bytes; `Bits` takes one off
    let mut b = Bits::new(first_sps.get(1..).unwrap_or_default());
    b.bits(8).ok_or_else(early)?; // the header's second byte
    b.bits(4).ok_or_else(early)?; // sps_video_parameter_set_id
    let max_sub_layers_minus1 = b.bits(3).ok_or_else(early)? as usize;
    let temporal_id_nested = b.bit().ok_or_else(early)?;
    // profile_tier_level: the general part is 12 bytes, kept as it is
    let general = b.rbsp().get(2..14).ok_or_else(early)?.to_vec();
    b.skip(96).ok_or_else(early)?;
    let mut present = Vec::with_capacity(max_sub_layers_minus1);
    for _ in 0..max_sub_layers_minus1 {
        present.push((b.bit().ok_or_else(early)?, b.bit().ok_or_else(early)?));
    }
    if max_sub_layers_minus1 > 0 {
        b.skip(2 * (8 - max_sub_layers_minus1)).ok_or_else(early)?;
    }
    for (profile, level) in present {
        b.skip(88 * profile as usize + 8 * level as usize)
            .ok_or_else(early)?;
    }
    b.ue().ok_or_else(early)?; // sps_seq_parameter_set_id
    let chroma_format_idc = b.ue().ok_or_else(early)?;
    if chroma_format_idc == 3 {
        b.bit().ok_or_else(early)?;
    }
    b.ue().ok_or_else(early)?;
    b.ue().ok_or_else(early)?; // width, height
    if b.bit().ok_or_else(early)? == 1 {
        for _ in 0..4 {
            b.ue().ok_or_else(early)?;
        }
    }
    let bit_depth_luma = b.ue().ok_or_else(early)?;
    let bit_depth_chroma = b.ue().ok_or_else(early)?;
    if chroma_format_idc > 3 || bit_depth_luma > 8 || bit_depth_chroma > 8 {
        return Err(CodecDataError(
            "an SPS with impossible chroma or bit depth".into(),
        ));
    }

    let mut out = vec![1u8];
    out.extend_from_slice(&general); // profile space, tier, profile, flags, level
    out.extend_from_slice(&[0xf0, 0x00]); // min_spatial_segmentation_idc 0
    out.push(0xfc); // parallelismType unknown
    out.push(0xfc | chroma_format_idc as u8);
    out.push(0xf8 | bit_depth_luma as u8);
    out.push(0xf8 | bit_depth_chroma as u8);
    out.extend_from_slice(&[0, 0]); // avgFrameRate unknown
    // constantFrameRate 0, numTemporalLayers, temporalIdNested, lengthSizeMinusOne 3
    out.push(
        (((max_sub_layers_minus1 as u8 + 1) & 7) << 3) | ((temporal_id_nested as u8) << 2) | 3,
    );
    out.push(3);
    for (t, units) in [(HEVC_VPS, vps), (HEVC_SPS, sps), (HEVC_PPS, pps)] {
        out.push(0x80 | t); // array_completeness: no parameter sets in the samples
        let count = u16::try_from(units.len())
            .map_err(|_| CodecDataError("too many parameter sets".into()))?;
        out.extend_from_slice(&count.to_be_bytes());
        for u in units {
            let len = u16::try_from(u.len())
                .map_err(|_| CodecDataError("a parameter set over 64 KiB".into()))?;
            out.extend_from_slice(&len.to_be_bytes());
            out.extend_from_slice(u);
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The parameter sets libx265 (through ffmpeg) writes for 320x240 4:2:0 8-bit: Main profile,
    /// level 2, one sub-layer; and the first 23 bytes of the `hvcC` ffmpeg's MP4 muxer makes of them.
    const VPS: &[u8] = &[
        0x40, 0x01, 0x0c, 0x01, 0xff, 0xff, 0x01, 0x60, 0x00, 0x00, 0x03, 0x00, 0x90, 0x00, 0x00,
        0x03, 0x00, 0x00, 0x03, 0x00, 0x3c, 0x95, 0x98, 0x09,
    ];
    const SPS: &[u8] = &[
        0x42, 0x01, 0x01, 0x01, 0x60, 0x00, 0x00, 0x03, 0x00, 0x90, 0x00, 0x00, 0x03, 0x00, 0x00,
        0x03, 0x00, 0x3c, 0xa0, 0x0a, 0x08, 0x0f, 0x16, 0x59, 0x59, 0xa4, 0x93, 0x2b, 0xc0, 0x5a,
        0x02, 0x00, 0x00, 0x03, 0x00, 0x02, 0x00, 0x00, 0x03, 0x00, 0x14, 0x10,
    ];
    const PPS: &[u8] = &[0x44, 0x01, 0xc1, 0x72, 0xb4, 0x62, 0x40];
    const FFMPEG_HVCC_HEAD: &str = "0101600000009000000000003cf000fcfdf8f800000f03";

    #[test]
    fn keyframes_and_parameter_sets_are_told_apart_per_codec() {
        let idr264 = [0, 0, 0, 1, 0x67, 0, 0, 0, 1, 0x65, 9];
        assert!(VideoCodec::H264.is_keyframe(&idr264));
        assert!(!VideoCodec::H264.is_keyframe(&[0, 0, 1, 0x41, 9]));
        // H.265: CRA (21) and IDR_W_RADL (19) start a clip, TRAIL_R (1) does not
        assert!(VideoCodec::H265.is_keyframe(&[0, 0, 1, 21 << 1, 1, 9]));
        assert!(VideoCodec::H265.is_keyframe(&[0, 0, 1, 19 << 1, 1, 9]));
        assert!(!VideoCodec::H265.is_keyframe(&[0, 0, 1, 1 << 1, 1, 9]));
        assert!(VideoCodec::H265.is_parameter_set(SPS));
        assert!(VideoCodec::H265.is_slice(&[19 << 1, 1]) && !VideoCodec::H265.is_slice(SPS));
        assert!(VideoCodec::H264.is_slice(&[0x41]) && !VideoCodec::H264.is_slice(&[0x06]));
        assert!(VideoCodec::H265.is_out_of_band(&[HEVC_AUD << 1, 1]));
        assert!(!VideoCodec::H265.is_out_of_band(&[39 << 1, 1]), "SEI stays");
    }

    #[test]
    fn an_hvcc_record_carries_the_sps_profile_and_reads_back_its_parameter_sets() {
        let record = hvcc_record(&[VPS, SPS, PPS]).expect("record");
        // profile, level, 4:2:0, 8-bit, one temporal layer, 4-byte lengths, 3 arrays: as ffmpeg
        assert_eq!(hex::encode(&record[..23]), FFMPEG_HVCC_HEAD);
        let back = LengthPrefixed::from_record(VideoCodec::H265, &record).expect("reads back");
        assert_eq!(back.length_size, 4);
        assert_eq!(
            back.parameter_sets,
            vec![VPS.to_vec(), SPS.to_vec(), PPS.to_vec()]
        );
        assert!(hvcc_record(&[SPS, PPS]).is_err(), "no VPS");
        assert!(hvcc_record(&[VPS, &SPS[..8], PPS]).is_err(), "a cut SPS");
    }

    #[test]
    fn length_prefixed_samples_become_annex_b_and_bad_lengths_are_refused() {
        // avcC: version 1, profile 66, compat 0, level 31, 4-byte lengths, 1 SPS, 1 PPS
        let avcc = [1, 66, 0, 31, 0xff, 0xe1, 0, 3, 0x67, 1, 2, 1, 0, 2, 0x68, 3];
        let lp = LengthPrefixed::from_record(VideoCodec::H264, &avcc).expect("avcC");
        assert_eq!(lp.parameter_sets, vec![vec![0x67, 1, 2], vec![0x68, 3]]);
        let sample = [0, 0, 0, 2, 0x65, 7, 0, 0, 0, 1, 0x06];
        let annexb = lp.to_annexb(&sample, true).expect("converts");
        let nals: Vec<&[u8]> = nal_units(&annexb).collect();
        assert_eq!(
            nals,
            vec![&[0x67, 1, 2][..], &[0x68, 3], &[0x65, 7], &[0x06]]
        );
        assert!(
            lp.to_annexb(&[0, 0, 0, 9, 0x65], false).is_err(),
            "length past the end"
        );
        assert!(LengthPrefixed::from_record(VideoCodec::H264, &avcc[..9]).is_err());
        assert!(LengthPrefixed::from_record(VideoCodec::H265, &[1; 10]).is_err());
    }
}
