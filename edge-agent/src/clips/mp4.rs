//! Annex B access units into an MP4 file: parameter sets into the track's `avcC`, every other NAL
//! unit length-prefixed into its sample, the stream's own media times at 90 kHz.

use std::io::Cursor;

use bytes::Bytes;
use mp4::{AvcConfig, MediaConfig, Mp4Config, Mp4Sample, Mp4Writer, TrackConfig, TrackType};

use super::ClipError;
use super::ring::AccessUnit;

/// MP4 media timescale: RTP's video clock, so camera timing survives to the tick.
const TIMESCALE: u32 = 90_000;

const SPS: u8 = 7;
const PPS: u8 = 8;
const AUD: u8 = 9;

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
    let param = |kind: u8| {
        nal_units(&units[0].annexb)
            .find(|n| n[0] & 0x1f == kind)
            .map(<[u8]>::to_vec)
    };
    let (Some(sps), Some(pps)) = (param(SPS), param(PPS)) else {
        return Err(ClipError::NoKeyframe(units.len()));
    };
    let mux = |e: mp4::Error| ClipError::Mux(e.to_string());
    let config = Mp4Config {
        major_brand: "isom".parse().map_err(mux)?,
        minor_version: 512,
        compatible_brands: ["isom", "iso2", "avc1", "mp41"]
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
            media_conf: MediaConfig::AvcConfig(AvcConfig {
                width: w,
                height: h,
                seq_param_set: sps,
                pic_param_set: pps,
            }),
        })
        .map_err(mux)?;
    let origin = units[0].stream_time;
    let mut last_duration = TIMESCALE / 10;
    for (i, u) in units.iter().enumerate() {
        let start = ticks(u.stream_time.saturating_sub(origin));
        if let Some(next) = units.get(i + 1) {
            let d = ticks(next.stream_time.saturating_sub(origin)).saturating_sub(start);
            last_duration = u32::try_from(d).unwrap_or(u32::MAX).max(1);
        }
        let mut sample = Vec::with_capacity(u.annexb.len() + 16);
        for nal in nal_units(&u.annexb).filter(|n| !matches!(n[0] & 0x1f, SPS | PPS | AUD)) {
            let len = u32::try_from(nal.len())
                .map_err(|_| ClipError::Mux("NAL unit over 4 GiB".into()))?;
            sample.extend_from_slice(&len.to_be_bytes());
            sample.extend_from_slice(nal);
        }
        if sample.is_empty() {
            continue;
        }
        writer
            .write_sample(
                1,
                &Mp4Sample {
                    start_time: start,
                    duration: last_duration,
                    rendering_offset: 0,
                    is_sync: u.keyframe,
                    bytes: Bytes::from(sample),
                },
            )
            .map_err(mux)?;
    }
    writer.write_end().map_err(mux)?;
    Ok(writer.into_writer().into_inner())
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
