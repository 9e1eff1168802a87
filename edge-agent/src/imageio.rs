//! Reading still images (JPEG, PNG) into RGB frames.
//!
//! JPEG goes through libjpeg-turbo's decoder (bundled by the `mozjpeg` crate, NEON/SSE SIMD) with its
//! default settings — accurate integer IDCT and fancy upsampling — so pixels equal those of OpenCV's
//! `imread`, which every model here was validated with. Other formats go through `image`.

use std::path::{Path, PathBuf};

use image::RgbImage;

/// Why an image could not be read.
#[derive(Debug, thiserror::Error)]
pub enum ImageReadError {
    // `error`, not `source`: the message already holds it, and a source would print it again in
    // an error chain (`{:#}`).
    #[error("{path}: {error}")]
    Io {
        path: PathBuf,
        error: std::io::Error,
    },
    #[error("{path}: not a decodable image: {message}")]
    Decode { path: PathBuf, message: String },
}

/// Decodes an image file to RGB8.
pub fn read_rgb(path: &Path) -> Result<RgbImage, ImageReadError> {
    let bytes = std::fs::read(path).map_err(|error| ImageReadError::Io {
        path: path.to_path_buf(),
        error,
    })?;
    decode_rgb(&bytes).map_err(|message| ImageReadError::Decode {
        path: path.to_path_buf(),
        message,
    })
}

/// Decodes image bytes (JPEG by its SOI marker, anything else by `image`'s format sniffing).
pub fn decode_rgb(bytes: &[u8]) -> Result<RgbImage, String> {
    if bytes.starts_with(&[0xFF, 0xD8, 0xFF]) {
        decode_jpeg(bytes)
    } else {
        image::load_from_memory(bytes)
            .map(|i| i.to_rgb8())
            .map_err(|e| e.to_string())
    }
}

fn decode_jpeg(bytes: &[u8]) -> Result<RgbImage, String> {
    // libjpeg reports fatal errors by unwinding out of its error handler; contain that here so a
    // corrupt file is an error, never a crash.
    let result = std::panic::catch_unwind(|| -> std::io::Result<RgbImage> {
        let mut started = mozjpeg::Decompress::new_mem(bytes)?.rgb()?;
        let (w, h) = (started.width() as u32, started.height() as u32);
        let pixels: Vec<u8> = started.read_scanlines()?;
        started.finish()?;
        RgbImage::from_raw(w, h, pixels).ok_or_else(|| {
            std::io::Error::new(std::io::ErrorKind::InvalidData, "truncated scanlines")
        })
    });
    match result {
        Ok(Ok(img)) => Ok(img),
        Ok(Err(e)) => Err(e.to_string()),
        Err(panic) => Err(panic
            .downcast_ref::<String>()
            .cloned()
            .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
            .unwrap_or_else(|| "corrupt JPEG".into())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn png_round_trip_and_garbage_is_an_error() {
        let img = RgbImage::from_pixel(3, 2, image::Rgb([1, 2, 3]));
        let mut png = Vec::new();
        image::DynamicImage::ImageRgb8(img.clone())
            .write_to(&mut std::io::Cursor::new(&mut png), image::ImageFormat::Png)
            .unwrap();
        assert_eq!(decode_rgb(&png).unwrap(), img);
        assert!(decode_rgb(b"not an image").is_err());
    }

    #[test]
    fn truncated_jpeg_is_an_error_not_a_panic() {
        let mut jpeg = vec![0xFF, 0xD8, 0xFF, 0xE0, 0x00, 0x10];
        jpeg.extend_from_slice(b"JFIF\0garbage that ends early");
        assert!(decode_jpeg(&jpeg).is_err());
    }
}
