//! Annex B access units into an MP4 file: parameter sets into the track's decoder record (`avcC`
//! for H.264, `hvcC` for H.265), every other NAL unit length-prefixed into its sample, the
//! stream's own media times at 90 kHz.

use std::io::Cursor;

use bytes::Bytes;
use mp4::{
    AvcConfig, HevcConfig, MediaConfig, Mp4Config, Mp4Sample, Mp4Writer, TrackConfig, TrackType,
};

use super::ClipError;
use super::ring::AccessUnit;
use crate::source::{H264_PPS, H264_SPS, VideoCodec, hvcc_record};

/// MP4 media timescale: RTP's video clock, so camera timing survives to the tick.
const TIMESCALE: u32 = 90_000;

pub(super) use crate::source::nal_units;

fn ticks(d: std::time::Duration) -> u64 {
    u64::try_from(d.as_nanos() * u128::from(TIMESCALE) / 1_000_000_000).unwrap_or(u64::MAX)
}

/// One MP4 of `units` (which start at a keyframe carrying SPS and PPS), `dims` the picture size.
pub fn remux(units: &[AccessUnit], dims: (u32, u32)) -> Result<Vec<u8>, ClipError> {
    let (width, height) = dims;
    let size = |v: u32| u16::try_from(v).ok().filter(|&v| v > 0);
    let (Some(w), Some(h)) = (size(width), size(height)) else {
        return Err(ClipError::Size(width, height));
    };
    let first_key = units
        .iter()
        .position(|u| u.keyframe)
        .ok_or(ClipError::NoKeyframe(units.len()))?;
    let units = &units[first_key..];
    let codec = units[0].codec;
    let params: Vec<&[u8]> = nal_units(&units[0].annexb)
        .filter(|n| codec.is_parameter_set(n))
        .collect();
    let of = |t: u8| {
        params
            .iter()
            .find(|n| codec.nal_type(n) == t)
            .map(|n| n.to_vec())
    };
    let (media_conf, hvcc) = match codec {
        VideoCodec::H264 => {
            let (Some(sps), Some(pps)) = (of(H264_SPS), of(H264_PPS)) else {
                return Err(ClipError::NoKeyframe(units.len()));
            };
            let avc = AvcConfig {
                width: w,
                height: h,
                seq_param_set: sps,
                pic_param_set: pps,
            };
            (MediaConfig::AvcConfig(avc), None)
        }
        VideoCodec::H265 => {
            let record = hvcc_record(&params).map_err(|e| ClipError::Mux(e.0))?;
            let hevc = HevcConfig {
                width: w,
                height: h,
            };
            (MediaConfig::HevcConfig(hevc), Some(record))
        }
    };
    let mux = |e: mp4::Error| ClipError::Mux(e.to_string());
    let brand = match codec {
        VideoCodec::H264 => "avc1",
        VideoCodec::H265 => "hvc1",
    };
    let config = Mp4Config {
        major_brand: "isom".parse().map_err(mux)?,
        minor_version: 512,
        compatible_brands: ["isom", "iso2", brand, "mp41"]
            .iter()
            .map(|b| b.parse())
            .collect::<Result<_, _>>()
            .map_err(mux)?,
        timescale: 1000,
    };
    let mut writer = Mp4Writer::write_start(Cursor::new(Vec::new()), &config).map_err(mux)?;
    writer
        .add_track(&TrackConfig {
            track_type: TrackType::Video,
            timescale: TIMESCALE,
            language: "und".into(),
            media_conf,
        })
        .map_err(mux)?;
    // Units come in decode order with presentation times; with B-frames those go back and forth.
    // Decode times are the presentation times sorted (the k-th picture decoded gets the k-th
    // smallest), every picture shown `delay` after it, so no picture shows before it is decoded.
    let pictures: Vec<&AccessUnit> = units
        .iter()
        .filter(|u| nal_units(&u.annexb).any(|n| codec.is_slice(n)))
        .collect();
    let origin = pictures
        .iter()
        .map(|u| u.stream_time)
        .min()
        .unwrap_or_default();
    let shown: Vec<u64> = pictures
        .iter()
        .map(|u| ticks(u.stream_time - origin))
        .collect();
    let mut decoded = shown.clone();
    decoded.sort_unstable();
    let delay = shown
        .iter()
        .zip(&decoded)
        .map(|(p, d)| d.saturating_sub(*p))
        .max()
        .unwrap_or(0);
    let mut last_duration = TIMESCALE / 10;
    for (i, u) in pictures.iter().enumerate() {
        if let Some(next) = decoded.get(i + 1) {
            last_duration = u32::try_from(next - decoded[i]).unwrap_or(u32::MAX).max(1);
        }
        let rendering_offset = i32::try_from(shown[i] + delay - decoded[i])
            .map_err(|_| ClipError::Mux("pictures reordered by over 6 hours".into()))?;
        let mut sample = Vec::with_capacity(u.annexb.len() + 16);
        for nal in nal_units(&u.annexb).filter(|n| !codec.is_out_of_band(n)) {
            let len = u32::try_from(nal.len())
                .map_err(|_| ClipError::Mux("NAL unit over 4 GiB".into()))?;
            sample.extend_from_slice(&len.to_be_bytes());
            sample.extend_from_slice(nal);
        }
        writer
            .write_sample(
                1,
                &Mp4Sample {
                    start_time: decoded[i],
                    duration: last_duration,
                    rendering_offset,
                    is_sync: u.keyframe,
                    bytes: Bytes::from(sample),
                },
            )
            .map_err(mux)?;
    }
    writer.write_end().map_err(mux)?;
    let file = writer.into_writer().into_inner();
    match hvcc {
        Some(record) => with_hvcc(file, &record),
        None => Ok(file),
    }
}

/// The path from `moov` to the H.265 sample entry's decoder record, and the bytes each box has
/// before its children (a full box's version and flags, an entry count, a visual sample entry).
const HVCC_PATH: [(&[u8; 4], usize); 8] = [
    (b"moov", 0),
    (b"trak", 0),
    (b"mdia", 0),
    (b"minf", 0),
    (b"stbl", 0),
    (b"stsd", 8),
    (b"hev1", 78),
    (b"hvcC", 0),
];

/// Puts the real `hvcC` record in the file the MP4 crate wrote (it writes a one-byte stub), grows
/// the boxes around it, and names the sample entry `hvc1`: every parameter set is in the record.
/// `moov` comes after `mdat`, so no chunk offset moves.
fn with_hvcc(mut file: Vec<u8>, record: &[u8]) -> Result<Vec<u8>, ClipError> {
    let bad = |what: &str| ClipError::Mux(format!("patching hvcC: {what}"));
    // a box's size: 32 bits, or 1 there and 64 bits after the name (a large `mdat`)
    let size_at = |b: &[u8], at: usize| -> Option<usize> {
        let n = |r: std::ops::Range<usize>| {
            b.get(r)
                .map(|s| s.iter().fold(0u64, |n, &x| (n << 8) | u64::from(x)))
        };
        match n(at..at + 4)? {
            1 => usize::try_from(n(at + 8..at + 16)?).ok(),
            size => usize::try_from(size).ok(),
        }
    };
    // (offset, size) of each box on the path, outermost first
    let mut found: Vec<(usize, usize)> = Vec::with_capacity(HVCC_PATH.len());
    let (mut from, mut to) = (0, file.len());
    for (name, skip) in HVCC_PATH {
        let mut at = from;
        let hit = loop {
            let size = size_at(&file, at).ok_or_else(|| bad("a box runs past the file"))?;
            if size < 8 || at + size > to {
                return Err(bad("a box of impossible size"));
            }
            if file.get(at + 4..at + 8) == Some(&name[..]) {
                break (at, size);
            }
            at += size;
            if at >= to {
                return Err(bad(&format!("no {} box", String::from_utf8_lossy(name))));
            }
        };
        found.push(hit);
        from = hit.0 + 8 + skip;
        to = hit.0 + hit.1;
    }
    let (stub_at, stub_size) = found[found.len() - 1];
    let mut boxed = Vec::with_capacity(record.len() + 8);
    let new_size = u32::try_from(record.len() + 8).map_err(|_| bad("record too large"))?;
    boxed.extend_from_slice(&new_size.to_be_bytes());
    boxed.extend_from_slice(b"hvcC");
    boxed.extend_from_slice(record);
    let grow = boxed
        .len()
        .checked_sub(stub_size)
        .ok_or_else(|| bad("the stub is larger than the record"))?;
    for &(at, size) in &found[..found.len() - 1] {
        let size = u32::try_from(size + grow).map_err(|_| bad("box too large"))?;
        file[at..at + 4].copy_from_slice(&size.to_be_bytes());
    }
    let (entry_at, _) = found[found.len() - 2];
    file[entry_at + 4..entry_at + 8].copy_from_slice(b"hvc1");
    file.splice(stub_at..stub_at + stub_size, boxed);
    Ok(file)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nal_units_split_on_three_and_four_byte_start_codes() {
        let buf = [
            0, 0, 0, 1, 0x67, 1, 2, 0, 0, 1, 0x68, 3, 0, 0, 0, 1, 0x65, 4, 5,
        ];
        let nals: Vec<&[u8]> = nal_units(&buf).collect();
        assert_eq!(
            nals,
            vec![&[0x67, 1, 2][..], &[0x68, 3][..], &[0x65, 4, 5][..]]
        );
        assert_eq!(nal_units(&[1, 2, 3]).count(), 0, "no start code, no unit");
    }

    #[test]
    fn units_without_a_keyframe_or_a_size_are_refused() {
        let u = AccessUnit {
            stream_time: std::time::Duration::ZERO,
            capture_time: std::time::SystemTime::UNIX_EPOCH,
            keyframe: false,
            codec: VideoCodec::H264,
            annexb: std::sync::Arc::from(&[0u8, 0, 1, 0x41, 9][..]),
        };
        assert!(matches!(
            remux(std::slice::from_ref(&u), (640, 480)),
            Err(ClipError::NoKeyframe(1))
        ));
        assert!(matches!(
            remux(&[u], (0, 480)),
            Err(ClipError::Size(0, 480))
        ));
    }
}
