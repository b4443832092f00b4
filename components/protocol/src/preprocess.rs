//! Turning what a client sends into the model's input: 784 floats in [0, 1], white ink on black.

use image::imageops::FilterType;
use image::{GrayImage, ImageFormat, ImageReader, Limits};

use crate::error::ApiError;
use spinfer_model::contract::{PIXELS, SIDE};

/// The box MNIST fits each digit into before centring it in 28×28.
const DIGIT_BOX: u32 = 20;
/// Uploads larger than this in either dimension are refused before decoding.
pub const MAX_IMAGE_SIDE: u32 = 4096;
const MAX_DECODE_BYTES: u64 = 64 * 1024 * 1024;

pub type Input = [f32; PIXELS];

/// Raw pixel values from JSON: 0–255, or 0–1 when `normalized`; rejects NaN, infinities and
/// out-of-range values rather than guessing.
pub fn pixels_to_input(values: &[f64], normalized: bool) -> Result<Input, ApiError> {
    if values.len() != PIXELS {
        return Err(ApiError::bad_request(format!(
            "expected {PIXELS} pixels (28×28), got {}",
            values.len()
        )));
    }
    let max = if normalized { 1.0 } else { 255.0 };
    let mut input = [0.0f32; PIXELS];
    for (i, (&v, slot)) in values.iter().zip(input.iter_mut()).enumerate() {
        if !v.is_finite() || !(0.0..=max).contains(&v) {
            return Err(ApiError::bad_request(format!(
                "pixel {i} is {v}; pixels must be finite numbers in [0, {max}]"
            )));
        }
        *slot = (v / max) as f32;
    }
    Ok(input)
}

/// Decodes a PNG or JPEG (with size limits) and preprocesses it the MNIST way.
pub fn image_to_input(bytes: &[u8]) -> Result<Input, ApiError> {
    let format = image::guess_format(bytes)
        .ok()
        .filter(|f| matches!(f, ImageFormat::Png | ImageFormat::Jpeg))
        .ok_or_else(|| ApiError::bad_request("image is neither a PNG nor a JPEG"))?;
    let mut reader = ImageReader::with_format(std::io::Cursor::new(bytes), format);
    let mut limits = Limits::default();
    limits.max_image_width = Some(MAX_IMAGE_SIDE);
    limits.max_image_height = Some(MAX_IMAGE_SIDE);
    limits.max_alloc = Some(MAX_DECODE_BYTES);
    reader.limits(limits);
    let image = reader
        .decode()
        .map_err(|e| ApiError::bad_request(format!("cannot decode image: {e}")))?;
    mnist_style(&image.to_luma8())
}

/// MNIST's own recipe: light background inverted, cropped to the ink, longer side scaled to
/// 20 px, centred by centre of mass in 28×28.
pub fn mnist_style(gray: &GrayImage) -> Result<Input, ApiError> {
    let (width, height) = gray.dimensions();
    if width == 0 || height == 0 {
        return Err(ApiError::bad_request("image is empty"));
    }
    let mut ink = gray.clone();
    if border_mean(gray) > 127.0 {
        image::imageops::invert(&mut ink);
    }
    let (x0, y0, x1, y1) =
        ink_bounds(&ink).ok_or_else(|| ApiError::bad_request("image has no ink: it is one flat colour"))?;
    stretch_contrast(&mut ink);
    let crop = image::imageops::crop_imm(&ink, x0, y0, x1 - x0 + 1, y1 - y0 + 1).to_image();
    let (cw, ch) = crop.dimensions();
    let scale = DIGIT_BOX as f64 / cw.max(ch) as f64;
    let (sw, sh) = (
        ((cw as f64 * scale).round() as u32).clamp(1, DIGIT_BOX),
        ((ch as f64 * scale).round() as u32).clamp(1, DIGIT_BOX),
    );
    let digit = image::imageops::resize(&crop, sw, sh, FilterType::Triangle);

    let (cx, cy) = centre_of_mass(&digit);
    let offset_x = (SIDE as f64 / 2.0 - cx).round() as i64;
    let offset_y = (SIDE as f64 / 2.0 - cy).round() as i64;
    let mut input = [0.0f32; PIXELS];
    for (x, y, pixel) in digit.enumerate_pixels() {
        let (tx, ty) = (x as i64 + offset_x, y as i64 + offset_y);
        if (0..SIDE as i64).contains(&tx) && (0..SIDE as i64).contains(&ty) {
            input[ty as usize * SIDE + tx as usize] = f32::from(pixel[0]) / 255.0;
        }
    }
    Ok(input)
}

/// Background to 0, strongest ink to 255, as in MNIST, whatever the photo's exposure.
fn stretch_contrast(ink: &mut GrayImage) {
    let min = ink.pixels().map(|p| p[0]).min().unwrap_or(0);
    let max = ink.pixels().map(|p| p[0]).max().unwrap_or(255);
    let range = f32::from(max.saturating_sub(min).max(1));
    for p in ink.pixels_mut() {
        p[0] = (f32::from(p[0] - min) * 255.0 / range).round() as u8;
    }
}

fn border_mean(gray: &GrayImage) -> f64 {
    let (w, h) = gray.dimensions();
    let border = gray
        .enumerate_pixels()
        .filter(|(x, y, _)| *x == 0 || *y == 0 || *x == w - 1 || *y == h - 1);
    let (sum, count) = border.fold((0u64, 0u64), |(s, c), (_, _, p)| (s + u64::from(p[0]), c + 1));
    sum as f64 / count.max(1) as f64
}

/// Bounding box of pixels clearly brighter than the darkest background.
fn ink_bounds(ink: &GrayImage) -> Option<(u32, u32, u32, u32)> {
    let min = ink.pixels().map(|p| p[0]).min()?;
    let max = ink.pixels().map(|p| p[0]).max()?;
    if max - min < 32 {
        return None;
    }
    let threshold = min + (max - min) / 4;
    ink.enumerate_pixels()
        .filter(|(_, _, p)| p[0] > threshold)
        .fold(None, |bounds, (x, y, _)| {
            Some(match bounds {
                None => (x, y, x, y),
                Some((x0, y0, x1, y1)) => (x0.min(x), y0.min(y), x1.max(x), y1.max(y)),
            })
        })
}

fn centre_of_mass(image: &GrayImage) -> (f64, f64) {
    let (mut sum, mut sx, mut sy) = (0.0, 0.0, 0.0);
    for (x, y, p) in image.enumerate_pixels() {
        let v = f64::from(p[0]);
        sum += v;
        sx += v * (x as f64 + 0.5);
        sy += v * (y as f64 + 0.5);
    }
    if sum == 0.0 {
        let (w, h) = image.dimensions();
        (w as f64 / 2.0, h as f64 / 2.0)
    } else {
        (sx / sum, sy / sum)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn digit_one(dark_on_light: bool, size: u32) -> GrayImage {
        let (bg, fg) = if dark_on_light { (250, 10) } else { (0, 255) };
        GrayImage::from_fn(size, size, |x, y| {
            let on = x >= size * 4 / 10 && x < size * 6 / 10 && y >= size / 5 && y < size * 4 / 5;
            image::Luma([if on { fg } else { bg }])
        })
    }

    #[test]
    fn json_pixels_are_validated_and_scaled() {
        let mut values = vec![0.0; PIXELS];
        values[5] = 255.0;
        let input = pixels_to_input(&values, false).unwrap();
        assert_eq!(input[5], 1.0);
        assert_eq!(pixels_to_input(&values[..10], false).unwrap_err().status, 400);
        values[3] = f64::NAN;
        assert!(
            pixels_to_input(&values, false)
                .unwrap_err()
                .message
                .contains("pixel 3")
        );
        values[3] = 0.5;
        values[5] = 1.0;
        assert_eq!(pixels_to_input(&values, true).unwrap()[3], 0.5);
        values[7] = 2.0;
        assert_eq!(pixels_to_input(&values, true).unwrap_err().status, 400);
    }

    #[test]
    fn dark_on_light_matches_light_on_dark() {
        let a = mnist_style(&digit_one(false, 100)).unwrap();
        let b = mnist_style(&digit_one(true, 100)).unwrap();
        let diff: f32 = a.iter().zip(&b).map(|(x, y)| (x - y).abs()).sum();
        assert!(diff < 1e-3, "diff {diff}");
    }

    #[test]
    fn digit_is_fitted_and_centred() {
        let input = mnist_style(&digit_one(false, 280)).unwrap();
        let rows: Vec<usize> = (0..SIDE)
            .filter(|r| input[r * SIDE..(r + 1) * SIDE].iter().any(|&v| v > 0.5))
            .collect();
        assert_eq!(rows.len(), 20, "the longer side is scaled to 20 px");
        assert!(
            (rows[0] as i64 - 4).abs() <= 1,
            "vertically centred: first row {}",
            rows[0]
        );
    }

    #[test]
    fn flat_and_broken_images_are_rejected() {
        let flat = GrayImage::from_pixel(10, 10, image::Luma([128]));
        assert_eq!(mnist_style(&flat).unwrap_err().status, 400);
        assert_eq!(image_to_input(b"not an image").unwrap_err().status, 400);
        let mut png = Vec::new();
        digit_one(false, 28)
            .write_to(&mut std::io::Cursor::new(&mut png), ImageFormat::Png)
            .unwrap();
        assert!(image_to_input(&png).is_ok());
        assert_eq!(image_to_input(&png[..png.len() / 2]).unwrap_err().status, 400);
    }
}
