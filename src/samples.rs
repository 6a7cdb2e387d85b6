//! Sample receipt images for the demo: small grayscale PNGs drawn like a till receipt (a
//! header band, item lines of varying length, a total line), different for every index.

use sha2::{Digest, Sha256};

pub const WIDTH: u32 = 360;
pub const HEIGHT: u32 = 540;

/// A PNG receipt, deterministic for `index`.
pub fn receipt_png(index: usize) -> Vec<u8> {
    let seed = Sha256::digest(format!("receipt-{index}").as_bytes());
    let (w, h) = (WIDTH as usize, HEIGHT as usize);
    let mut pixels = vec![245u8; w * h];
    let mut bar = |x0: usize, y0: usize, bw: usize, bh: usize, shade: u8| {
        for y in y0..(y0 + bh).min(h) {
            for x in x0..(x0 + bw).min(w) {
                pixels[y * w + x] = shade;
            }
        }
    };
    bar(40, 30, 280, 28, 40); // merchant name band
    let lines = 4 + (seed[0] % 6) as usize;
    for i in 0..lines {
        let y = 90 + i * 34;
        let len = 80 + (seed[(i + 1) % 32] as usize % 140);
        bar(30, y, len, 12, 70); // item description
        bar(270, y, 60, 12, 70); // amount
    }
    let total_y = 90 + lines * 34 + 30;
    bar(30, total_y, 300, 3, 20); // rule
    bar(30, total_y + 14, 90, 16, 20); // TOTAL
    bar(250, total_y + 14, 80, 16, 20); // amount
    let mut out = Vec::new();
    {
        let mut encoder = png::Encoder::new(&mut out, WIDTH, HEIGHT);
        encoder.set_color(png::ColorType::Grayscale);
        encoder.set_depth(png::BitDepth::Eight);
        // Writing to a Vec cannot fail for I/O reasons; the dimensions are constants.
        let mut writer = encoder
            .write_header()
            .expect("PNG header for a fixed-size image");
        writer
            .write_image_data(&pixels)
            .expect("PNG data matches the header");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn when_receipt_is_drawn_should_be_a_valid_png_that_passes_image_checks() {
        let a = receipt_png(1);
        assert!(a.starts_with(b"\x89PNG"));
        let media = shared::domain::manifest::check_image(&a).expect("acceptable image");
        assert_eq!(media.dimensions(&a), Some((WIDTH, HEIGHT)));
        assert_ne!(a, receipt_png(2));
        assert_eq!(a, receipt_png(1));
    }
}
