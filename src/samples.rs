//! Sample receipt images: small grayscale PNGs drawn like a till receipt (a header band, item
//! lines of varying length, a total line), different for every index, for the demo; and
//! phone-like photos of a receipt (12 and 50 MP JPEGs with sensor noise and an EXIF
//! orientation, a screenshot PNG, a WebP) for the normalization tests and benchmark.

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

/// A receipt as a phone stores it: the sensor's `width` x `height` pixels (landscape when
/// `orientation` is 6: the receipt lies on its side, and the tag says to turn it 90 degrees
/// clockwise), white paper with dark print lines down the receipt and sensor noise, encoded
/// at `quality` with an EXIF block holding the orientation and a GPS tag.
pub fn phone_jpeg(width: u16, height: u16, orientation: u16, quality: u8, seed: u64) -> Vec<u8> {
    let (w, h) = (usize::from(width), usize::from(height));
    let mut px = vec![0u8; w * h * 3];
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    // Print lines run across the receipt: along y in the stored (sideways) image when it is
    // turned, along x otherwise.
    let sideways = orientation == 6;
    // Upright, the receipt is a strip of paper down the middle of the frame (40% of its
    // width, 90% of its height) on a smooth table, printed with ~60 lines of text.
    let (uw, uh) = if sideways { (h, w) } else { (w, h) };
    let line = (uh / 180).max(1);
    for (i, p) in px.chunks_exact_mut(3).enumerate() {
        let (col, row) = (i % w, i / w);
        // Upright coordinates: a 90-degree turn clockwise when stored sideways.
        let (ux, uy) = if sideways {
            (uw - 1 - row, col)
        } else {
            (col, row)
        };
        let on_paper = ux > uw * 3 / 10 && ux < uw * 7 / 10 && uy > uh / 20 && uy < uh * 19 / 20;
        let ink = on_paper && (uy / line) % 3 == 0 && (ux / (line * 2)) % 7 != 0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let noise = (x & 0x03) as u8;
        let rgb = if ink {
            [50, 48, 45]
        } else if on_paper {
            [236, 234, 228]
        } else {
            let shade = 90 + (ux * 60 / uw.max(1)) as u8;
            [shade, shade / 4 * 3, shade / 2]
        };
        p.copy_from_slice(&rgb.map(|c| c.saturating_add(noise)));
    }
    let mut out = Vec::new();
    let mut e = jpeg_encoder::Encoder::new(&mut out, quality);
    e.add_app_segment(1, &exif_block(orientation))
        .expect("an APP1 segment under 64 KiB");
    e.encode(&px, width, height, jpeg_encoder::ColorType::Rgb)
        .expect("pixels match the size");
    out
}

/// An EXIF APP1 payload: Orientation in IFD0, and a GPS IFD with a latitude reference (the
/// metadata a normalized copy must not keep).
pub fn exif_block(orientation: u16) -> Vec<u8> {
    let mut b = b"Exif\0\0MM\0\x2a\0\0\0\x08".to_vec();
    let entry = |b: &mut Vec<u8>, tag: u16, kind: u16, value: [u8; 4]| {
        b.extend_from_slice(&tag.to_be_bytes());
        b.extend_from_slice(&kind.to_be_bytes());
        b.extend_from_slice(&1u32.to_be_bytes());
        b.extend_from_slice(&value);
    };
    b.extend_from_slice(&2u16.to_be_bytes());
    let o = orientation.to_be_bytes();
    entry(&mut b, 0x0112, 3, [o[0], o[1], 0, 0]);
    entry(&mut b, 0x8825, 4, 38u32.to_be_bytes()); // GPS IFD at offset 38
    b.extend_from_slice(&0u32.to_be_bytes());
    b.extend_from_slice(&1u16.to_be_bytes());
    entry(&mut b, 0x0001, 2, *b"N\0\0\0"); // GPSLatitudeRef
    b.extend_from_slice(&0u32.to_be_bytes());
    b
}

/// A phone screenshot of a receipt app: a `width` x `height` PNG.
pub fn screenshot_png(width: u32, height: u32) -> Vec<u8> {
    let img = image::RgbImage::from_fn(width, height, |x, y| {
        let ink = (y / 40) % 2 == 0 && x % 300 > 40;
        image::Rgb(if ink { [30, 30, 30] } else { [250, 250, 250] })
    });
    let mut out = Vec::new();
    img.write_to(&mut std::io::Cursor::new(&mut out), image::ImageFormat::Png)
        .expect("PNG into memory");
    out
}

/// A photo saved as WebP (lossless: the encoder `image` ships), `width` x `height`, noisy.
pub fn photo_webp(width: u32, height: u32, seed: u64) -> Vec<u8> {
    let mut x = seed | 1;
    let img = image::RgbImage::from_fn(width, height, |_, y| {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let base = if (y / 24) % 3 == 0 { 40 } else { 225 };
        image::Rgb([base + (x & 0x07) as u8; 3])
    });
    let mut out = Vec::new();
    img.write_to(
        &mut std::io::Cursor::new(&mut out),
        image::ImageFormat::WebP,
    )
    .expect("WebP into memory");
    out
}

/// A PNG whose (valid) header claims `w`x`h` pixels over a few dozen bytes: a decompression
/// bomb, which normalization refuses before allocating anything.
pub fn bomb_png(w: u32, h: u32) -> Vec<u8> {
    let crc = |bytes: &[u8]| {
        let mut crc = 0xFFFF_FFFFu32;
        for &b in bytes {
            crc ^= u32::from(b);
            for _ in 0..8 {
                crc = (crc >> 1) ^ (0xEDB8_8320 & 0u32.wrapping_sub(crc & 1));
            }
        }
        !crc
    };
    let mut ihdr = Vec::new();
    ihdr.extend_from_slice(&w.to_be_bytes());
    ihdr.extend_from_slice(&h.to_be_bytes());
    ihdr.extend_from_slice(&[8, 2, 0, 0, 0]);
    let mut b = b"\x89PNG\r\n\x1a\n".to_vec();
    for (kind, data) in [
        (&b"IHDR"[..], &ihdr[..]),
        (b"IDAT", &b"\x78\x9c\x03\x00\x00\x00\x00\x01"[..]),
        (b"IEND", b""),
    ] {
        let mut chunk = kind.to_vec();
        chunk.extend_from_slice(data);
        b.extend_from_slice(&(data.len() as u32).to_be_bytes());
        b.extend_from_slice(&chunk);
        b.extend_from_slice(&crc(&chunk).to_be_bytes());
    }
    b
}

/// The phone-like samples, by file name: four good photos and two bad files.
pub fn phone_samples() -> Vec<(&'static str, Vec<u8>)> {
    let truncated = phone_jpeg(1200, 900, 1, 90, 2);
    vec![
        ("a-12mp.jpg", phone_jpeg(4032, 3024, 6, 92, 1)),
        ("b-50mp.jpg", phone_jpeg(8160, 6120, 1, 95, 3)),
        ("c-screenshot.png", screenshot_png(1170, 2532)),
        ("d-12mp.webp", photo_webp(4000, 3000, 4)),
        ("e-bomb.png", bomb_png(60_000, 60_000)),
        ("f-truncated.jpg", truncated[..truncated.len() / 2].to_vec()),
    ]
}

/// Writes [`phone_samples`] into `dir`; returns the paths written.
pub fn write_phone_samples(dir: &std::path::Path) -> std::io::Result<Vec<std::path::PathBuf>> {
    std::fs::create_dir_all(dir)?;
    phone_samples()
        .into_iter()
        .map(|(name, bytes)| {
            let path = dir.join(name);
            std::fs::write(&path, bytes)?;
            Ok(path)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn when_receipt_is_drawn_should_be_a_valid_png_that_passes_image_checks() {
        let a = receipt_png(1);
        assert!(a.starts_with(b"\x89PNG"));
        shared::domain::manifest::check_image(&a).expect("acceptable image");
        assert_eq!(
            shared::domain::normalize::dimensions(&a),
            Some((WIDTH, HEIGHT))
        );
        assert_ne!(a, receipt_png(2));
        assert_eq!(a, receipt_png(1));
    }
}
