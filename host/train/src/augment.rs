//! On-the-fly augmentation of training images: a random rotation, shift and scale about the
//! image centre, warped with bilinear interpolation by `imageproc`. Seeded: the same seed,
//! epoch and image give the same result. Applied to the training split only.

use image::{GrayImage, Luma};
use imageproc::geometric_transformations::{Border, Interpolation, Projection, warp};
use rand::Rng;
use spinfer_model::contract::SIDE;

/// How far each random transform may go; `None` in the config means no augmentation.
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize)]
pub struct Augment {
    /// Rotation, ± degrees.
    pub rotate_degrees: f32,
    /// Shift on each axis, ± pixels.
    pub shift_pixels: f32,
    /// Scale, 1 ± this.
    pub scale: f32,
}

impl Augment {
    /// What the compact model was trained with.
    pub const STANDARD: Augment = Augment {
        rotate_degrees: 12.0,
        shift_pixels: 2.0,
        scale: 0.1,
    };

    /// A randomly transformed copy of one 28×28 image (0–255, row-major).
    pub fn apply(&self, pixels: &[u8], rng: &mut impl Rng) -> Vec<u8> {
        let side = SIDE as u32;
        let image = GrayImage::from_raw(side, side, pixels.to_vec()).expect("a 28×28 image");
        let angle = rng
            .random_range(-self.rotate_degrees..=self.rotate_degrees)
            .to_radians();
        let scale = rng.random_range(1.0 - self.scale..=1.0 + self.scale);
        let (dx, dy) = (
            rng.random_range(-self.shift_pixels..=self.shift_pixels),
            rng.random_range(-self.shift_pixels..=self.shift_pixels),
        );
        let centre = SIDE as f32 / 2.0;
        let projection = Projection::translate(centre + dx, centre + dy)
            * Projection::rotate(angle)
            * Projection::scale(scale, scale)
            * Projection::translate(-centre, -centre);
        warp(
            &image,
            projection,
            Interpolation::Bilinear,
            Border::Constant(Luma([0])),
        )
        .into_raw()
    }
}

#[cfg(test)]
mod tests {
    use rand::SeedableRng;
    use rand::rngs::StdRng;

    use super::*;

    fn digit() -> Vec<u8> {
        // A vertical bar: a "1".
        (0..SIDE * SIDE)
            .map(|i| {
                if (12..16).contains(&(i % SIDE)) && (5..23).contains(&(i / SIDE)) {
                    255
                } else {
                    0
                }
            })
            .collect()
    }

    #[test]
    fn seeded_and_bounded() {
        let augment = Augment::STANDARD;
        let a = augment.apply(&digit(), &mut StdRng::seed_from_u64(7));
        let b = augment.apply(&digit(), &mut StdRng::seed_from_u64(7));
        let c = augment.apply(&digit(), &mut StdRng::seed_from_u64(8));
        assert_eq!(a, b);
        assert_ne!(a, c);
        assert_eq!(a.len(), SIDE * SIDE);
        // The ink moves but stays: roughly the same amount of it, scaled by at most ±10 %².
        let ink = |p: &[u8]| p.iter().map(|&v| f64::from(v)).sum::<f64>();
        let ratio = ink(&a) / ink(&digit());
        assert!((0.7..1.3).contains(&ratio), "{ratio}");
    }

    #[test]
    fn no_change_is_the_identity() {
        let none = Augment {
            rotate_degrees: 0.0,
            shift_pixels: 0.0,
            scale: 0.0,
        };
        assert_eq!(none.apply(&digit(), &mut StdRng::seed_from_u64(1)), digit());
    }
}
