//! Turning a picture into an image model's first input, as its card's image block says: JSON
//! pixel values or a PNG/JPEG upload, brought to the model's size (stretched, fitted, or by the
//! MNIST digit steps), scaled, normalised per channel, in the model's channel order and layout.

use image::imageops::FilterType;
use image::{DynamicImage, GrayImage, ImageFormat, ImageReader, Limits, RgbImage};

use crate::error::ApiError;
use spinfer_model::card::{ChannelOrder, ImageSpec, Layout, Resize};

/// The box MNIST fits each digit into, in 28ths of the image's side (20 px in 28×28).
const DIGIT_BOX: f64 = 20.0 / 28.0;
/// Uploads larger than this in either dimension are refused before decoding.
pub const MAX_IMAGE_SIDE: u32 = 4096;
const MAX_DECODE_BYTES: u64 = 64 * 1024 * 1024;

/// One picture's values for the model, in its layout and channel order.
pub type Input = Vec<f32>;

/// Values per picture: height × width × channels.
pub fn values_per_image(spec: &ImageSpec) -> usize {
    spec.height as usize * spec.width as usize * usize::from(spec.channels)
}

/// Raw pixel values from JSON, row-major, channels interleaved in RGB order: 0–255, or 0–1
/// when `normalized`; rejects NaN, infinities and out-of-range values rather than guessing.
pub fn pixels_to_input(spec: &ImageSpec, values: &[f64], normalized: bool) -> Result<Input, ApiError> {
    let expected = values_per_image(spec);
    if values.len() != expected {
        return Err(ApiError::bad_request(format!(
            "expected {expected} pixels ({}×{}×{}), got {}",
            spec.height,
            spec.width,
            spec.channels,
            values.len()
        )));
    }
    let max = if normalized { 1.0 } else { 255.0 };
    let mut unit = Vec::with_capacity(expected);
    for (i, &v) in values.iter().enumerate() {
        if !v.is_finite() || !(0.0..=max).contains(&v) {
            return Err(ApiError::bad_request(format!(
                "pixel {i} is {v}; pixels must be finite numbers in [0, {max}]"
            )));
        }
        unit.push((v / max) as f32);
    }
    Ok(finish(spec, &unit))
}

/// Decodes a PNG or JPEG (with size limits) and preprocesses it as `spec` says.
pub fn image_to_input(spec: &ImageSpec, bytes: &[u8]) -> Result<Input, ApiError> {
    let image = decode(bytes)?;
    if image.width() == 0 || image.height() == 0 {
        return Err(ApiError::bad_request("image is empty"));
    }
    let (w, h) = (spec.width, spec.height);
    let unit = if spec.digit {
        mnist_style(&image.to_luma8(), w, h)?
    } else if spec.channels == 1 {
        let fitted = fit(&image.to_luma8(), w, h, spec.resize);
        unit_values(fitted.as_raw())
    } else {
        let fitted: RgbImage = fit(&image.to_rgb8(), w, h, spec.resize);
        unit_values(fitted.as_raw())
    };
    Ok(finish(spec, &unit))
}

fn decode(bytes: &[u8]) -> Result<DynamicImage, ApiError> {
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
    reader
        .decode()
        .map_err(|e| ApiError::bad_request(format!("cannot decode image: {e}")))
}

fn unit_values(bytes: &[u8]) -> Vec<f32> {
    bytes.iter().map(|&p| f32::from(p) / 255.0).collect()
}

/// `image` at `w`×`h`: stretched, or scaled to fit with its aspect kept and the rest left
/// black, right and below.
fn fit<P>(
    image: &image::ImageBuffer<P, Vec<u8>>,
    w: u32,
    h: u32,
    resize: Resize,
) -> image::ImageBuffer<P, Vec<u8>>
where
    P: image::Pixel<Subpixel = u8> + 'static,
{
    match resize {
        Resize::Stretch => image::imageops::resize(image, w, h, FilterType::Triangle),
        Resize::Fit => {
            let (iw, ih) = image.dimensions();
            let scale = (f64::from(w) / f64::from(iw)).min(f64::from(h) / f64::from(ih));
            let sw = ((f64::from(iw) * scale).round() as u32).clamp(1, w);
            let sh = ((f64::from(ih) * scale).round() as u32).clamp(1, h);
            let scaled = image::imageops::resize(image, sw, sh, FilterType::Triangle);
            let mut canvas = image::ImageBuffer::new(w, h);
            image::imageops::replace(&mut canvas, &scaled, 0, 0);
            canvas
        }
    }
}

/// Values in [0, 1], row-major with channels interleaved (RGB), into the model's input: each
/// scaled from 0–255 by `scale`, less `mean`, over `std`, in the card's channel order and
/// layout. The digit models' block (`scale` 1/255, mean 0, std 1) leaves each value as it is.
fn finish(spec: &ImageSpec, unit: &[f32]) -> Input {
    let channels = usize::from(spec.channels);
    let pixels = unit.len() / channels;
    let factor = 255.0 * spec.scale;
    let per_channel = |v: &[f64], c: usize| v.get(c).or(v.first()).copied().unwrap_or_default();
    let mut out = vec![0.0f32; unit.len()];
    for (p, rgb) in unit.chunks_exact(channels).enumerate() {
        for c in 0..channels {
            // The model's channel c is the picture's channel `from`.
            let from = match spec.order {
                ChannelOrder::Bgr if channels == 3 => 2 - c,
                _ => c,
            };
            let v = (f64::from(rgb[from]) * factor - per_channel(&spec.mean, c)) / per_channel(&spec.std, c);
            let at = match spec.layout {
                Layout::Nchw => c * pixels + p,
                Layout::Nhwc => p * channels + c,
            };
            out[at] = v as f32;
        }
    }
    out
}

/// MNIST's own recipe, into a `w`×`h` picture of values in [0, 1]: light background inverted,
/// cropped to the ink, longer side scaled to 20/28 of the side, centred by centre of mass.
pub fn mnist_style(gray: &GrayImage, w: u32, h: u32) -> Result<Vec<f32>, ApiError> {
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
    let fit_box = ((f64::from(w.min(h)) * DIGIT_BOX).round() as u32).max(1);
    let scale = f64::from(fit_box) / cw.max(ch) as f64;
    let (sw, sh) = (
        ((cw as f64 * scale).round() as u32).clamp(1, fit_box),
        ((ch as f64 * scale).round() as u32).clamp(1, fit_box),
    );
    let digit = image::imageops::resize(&crop, sw, sh, FilterType::Triangle);

    let (cx, cy) = centre_of_mass(&digit);
    let offset_x = (f64::from(w) / 2.0 - cx).round() as i64;
    let offset_y = (f64::from(h) / 2.0 - cy).round() as i64;
    let mut input = vec![0.0f32; w as usize * h as usize];
    for (x, y, pixel) in digit.enumerate_pixels() {
        let (tx, ty) = (x as i64 + offset_x, y as i64 + offset_y);
        if (0..i64::from(w)).contains(&tx) && (0..i64::from(h)).contains(&ty) {
            input[ty as usize * w as usize + tx as usize] = f32::from(pixel[0]) / 255.0;
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

    const SIDE: usize = 28;
    const PIXELS: usize = SIDE * SIDE;

    fn digits() -> ImageSpec {
        serde_json::from_str(
            r#"{"height":28,"width":28,"channels":1,"scale":0.00392156862745098,"digit":true}"#,
        )
        .unwrap()
    }

    fn colour(extra: &str) -> ImageSpec {
        serde_json::from_str(&format!(r#"{{"height":2,"width":3,"channels":3{extra}}}"#)).unwrap()
    }

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
        let input = pixels_to_input(&digits(), &values, false).unwrap();
        assert_eq!(input[5], 1.0);
        assert_eq!(
            pixels_to_input(&digits(), &values[..10], false)
                .unwrap_err()
                .status,
            400
        );
        values[3] = f64::NAN;
        assert!(
            pixels_to_input(&digits(), &values, false)
                .unwrap_err()
                .message
                .contains("pixel 3")
        );
        values[3] = 0.5;
        values[5] = 1.0;
        assert_eq!(pixels_to_input(&digits(), &values, true).unwrap()[3], 0.5);
        values[7] = 2.0;
        assert_eq!(pixels_to_input(&digits(), &values, true).unwrap_err().status, 400);
    }

    #[test]
    fn dark_on_light_matches_light_on_dark() {
        let a = mnist_style(&digit_one(false, 100), 28, 28).unwrap();
        let b = mnist_style(&digit_one(true, 100), 28, 28).unwrap();
        let diff: f32 = a.iter().zip(&b).map(|(x, y)| (x - y).abs()).sum();
        assert!(diff < 1e-3, "diff {diff}");
    }

    #[test]
    fn digit_is_fitted_and_centred() {
        let input = mnist_style(&digit_one(false, 280), 28, 28).unwrap();
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
        assert_eq!(mnist_style(&flat, 28, 28).unwrap_err().status, 400);
        assert_eq!(
            image_to_input(&digits(), b"not an image").unwrap_err().status,
            400
        );
        let mut png = Vec::new();
        digit_one(false, 28)
            .write_to(&mut std::io::Cursor::new(&mut png), ImageFormat::Png)
            .unwrap();
        assert!(image_to_input(&digits(), &png).is_ok());
        assert_eq!(
            image_to_input(&digits(), &png[..png.len() / 2])
                .unwrap_err()
                .status,
            400
        );
    }

    #[test]
    fn the_digit_block_leaves_unit_values_as_they_are() {
        let unit: Vec<f32> = (0..=255u8).map(|p| f32::from(p) / 255.0).collect();
        let spec = ImageSpec {
            height: 16,
            width: 16,
            ..digits()
        };
        assert_eq!(finish(&spec, &unit), unit);
    }

    #[test]
    fn colour_pixels_are_normalised_reordered_and_laid_out() {
        // Two rows of three RGB pixels; pixel p has (r, g, b) = (p, 10 + p, 20 + p).
        let values: Vec<f64> = (0..6)
            .flat_map(|p| [p as f64, 10.0 + p as f64, 20.0 + p as f64])
            .collect();
        let close = |got: &[f32], want: &[f32]| {
            assert!(
                got.iter().zip(want).all(|(g, w)| (g - w).abs() < 1e-4),
                "{got:?} vs {want:?}"
            );
        };
        let nchw = pixels_to_input(
            &colour(r#","scale":1,"mean":[0,10,20],"std":[1,2,4]"#),
            &values,
            false,
        )
        .unwrap();
        close(&nchw[..6], &[0.0, 1.0, 2.0, 3.0, 4.0, 5.0]);
        close(&nchw[6..12], &[0.0, 0.5, 1.0, 1.5, 2.0, 2.5]);
        close(&nchw[12..], &[0.0, 0.25, 0.5, 0.75, 1.0, 1.25]);
        let bgr_nhwc = pixels_to_input(
            &colour(r#","scale":1,"order":"bgr","layout":"nhwc""#),
            &values,
            false,
        )
        .unwrap();
        close(&bgr_nhwc[..6], &[20.0, 10.0, 0.0, 21.0, 11.0, 1.0]);
        assert_eq!(
            pixels_to_input(&colour(""), &values[..5], false)
                .unwrap_err()
                .status,
            400
        );
    }

    #[test]
    fn uploads_are_stretched_or_fitted() {
        let wide = RgbImage::from_pixel(40, 10, image::Rgb([255, 0, 0]));
        let mut png = Vec::new();
        wide.write_to(&mut std::io::Cursor::new(&mut png), ImageFormat::Png)
            .unwrap();
        let spec = |resize| ImageSpec {
            height: 4,
            width: 4,
            resize,
            ..colour("")
        };
        let stretched = image_to_input(&spec(Resize::Stretch), &png).unwrap();
        assert!(stretched[..16].iter().all(|&v| v == 1.0), "red everywhere");
        let fitted = image_to_input(&spec(Resize::Fit), &png).unwrap();
        // 40×10 fits 4×4 as 4×1: the first row red, the rest black.
        assert!(fitted[..4].iter().all(|&v| v == 1.0) && fitted[4..16].iter().all(|&v| v == 0.0));
    }
}
