use super::*;

const CLAUDE: Target = Target::new(1568, Policy::Whole);

/// An EXIF APP1 payload holding only an Orientation tag (big-endian TIFF, one IFD entry).
pub fn exif_orientation(o: u16) -> Vec<u8> {
    let mut b = b"Exif\0\0MM\0\x2a\0\0\0\x08".to_vec();
    b.extend_from_slice(&1u16.to_be_bytes()); // one entry
    b.extend_from_slice(&0x0112u16.to_be_bytes()); // Orientation
    b.extend_from_slice(&3u16.to_be_bytes()); // SHORT
    b.extend_from_slice(&1u32.to_be_bytes()); // count
    b.extend_from_slice(&o.to_be_bytes());
    b.extend_from_slice(&[0, 0]);
    b.extend_from_slice(&0u32.to_be_bytes()); // no next IFD
    b
}

/// A `w`x`h` JPEG of a gradient (left dark, right light), with an orientation tag if given.
fn jpeg(w: u16, h: u16, orientation: Option<u16>) -> Vec<u8> {
    let mut px = Vec::with_capacity(usize::from(w) * usize::from(h) * 3);
    for _y in 0..h {
        for x in 0..w {
            let v = (u32::from(x) * 255 / u32::from(w)) as u8;
            px.extend_from_slice(&[v, v, v]);
        }
    }
    let mut out = Vec::new();
    let mut e = jpeg_encoder::Encoder::new(&mut out, 90);
    if let Some(o) = orientation {
        e.add_app_segment(1, &exif_orientation(o)).expect("app1");
    }
    e.encode(&px, w, h, jpeg_encoder::ColorType::Rgb)
        .expect("encode");
    out
}

fn dims(jpeg: &[u8]) -> (u32, u32) {
    let mut d = jpeg_decoder::Decoder::new(Cursor::new(jpeg));
    d.read_info().expect("info");
    let i = d.info().expect("info");
    (u32::from(i.width), u32::from(i.height))
}

#[test]
fn when_a_photo_is_larger_than_the_target_should_shrink_its_long_edge_to_it() {
    let n = normalize(&jpeg(4032, 3024, None), CLAUDE).expect("normalized");
    assert_eq!((n.width, n.height), (1568, 1176));
    assert_eq!(dims(&n.jpeg), (1568, 1176));
}

#[test]
fn when_a_photo_is_smaller_than_the_target_should_never_enlarge_it() {
    let n = normalize(&jpeg(640, 320, None), CLAUDE).expect("normalized");
    assert_eq!((n.width, n.height), (640, 320));
}

#[test]
fn when_exif_says_rotate_90_should_make_the_pixels_upright_and_drop_the_metadata() {
    let src = jpeg(800, 600, Some(6));
    assert_eq!(orientation(&src), 6);
    let n = normalize(&src, CLAUDE).expect("normalized");
    assert_eq!(
        (n.width, n.height),
        (600, 800),
        "taller than wide once upright"
    );
    assert_eq!(orientation(&n.jpeg), 1, "no orientation left to apply");
    assert!(
        !n.jpeg.windows(4).any(|w| w == b"Exif"),
        "no EXIF block (GPS, device) in the copy"
    );
    // Rotated 90 clockwise, the dark left edge is now the top.
    let mut d = jpeg_decoder::Decoder::new(Cursor::new(&n.jpeg));
    let px = d.decode().expect("decode");
    let row = |y: usize| px[y * 600 * 3];
    assert!(row(10) < row(790), "top {} bottom {}", row(10), row(790));
}

/// A PNG whose (valid) header claims `w`x`h` pixels, with almost no data behind it.
pub fn bomb_png(w: u32, h: u32) -> Vec<u8> {
    fn crc32(bytes: &[u8]) -> u32 {
        let mut crc = 0xFFFF_FFFFu32;
        for &b in bytes {
            crc ^= u32::from(b);
            for _ in 0..8 {
                crc = (crc >> 1) ^ (0xEDB8_8320 & 0u32.wrapping_sub(crc & 1));
            }
        }
        !crc
    }
    let mut ihdr = b"IHDR".to_vec();
    ihdr.extend_from_slice(&w.to_be_bytes());
    ihdr.extend_from_slice(&h.to_be_bytes());
    ihdr.extend_from_slice(&[8, 2, 0, 0, 0]);
    let mut b = b"\x89PNG\r\n\x1a\n".to_vec();
    for (kind, data) in [
        (&b"IHDR"[..], &ihdr[4..]),
        (b"IDAT", &b"\x78\x9c\x03\x00\x00\x00\x00\x01"[..]),
        (b"IEND", b""),
    ] {
        let mut chunk = kind.to_vec();
        chunk.extend_from_slice(data);
        b.extend_from_slice(&(data.len() as u32).to_be_bytes());
        b.extend_from_slice(&chunk);
        b.extend_from_slice(&crc32(&chunk).to_be_bytes());
    }
    b
}

#[test]
fn when_a_png_header_claims_60000_square_should_skip_it_before_decoding() {
    let b = bomb_png(60_000, 60_000);
    let err = normalize(&b, CLAUDE).expect_err("a bomb");
    assert!(
        matches!(err, Skip::TooManyPixels { width: 60_000, .. }),
        "{err}"
    );
}

#[test]
fn when_a_jpeg_is_truncated_should_skip_it_as_corrupt() {
    let full = jpeg(400, 300, None);
    let err = normalize(&full[..full.len() / 2], CLAUDE).expect_err("truncated");
    assert!(err.to_string().contains("truncated"), "{err}");
}

#[test]
fn when_the_file_is_heic_or_not_an_image_should_say_so() {
    let heic = b"\0\0\0\x18ftypheic\0\0\0\0mif1heic";
    assert_eq!(normalize(heic, CLAUDE), Err(Skip::Heic));
    assert_eq!(normalize(b"%PDF-1.7", CLAUDE), Err(Skip::NotImage));
}

#[test]
fn when_a_png_is_a_screenshot_should_shrink_it_to_the_target() {
    let img = image::RgbImage::from_fn(1170, 2532, |x, y| {
        image::Rgb([(x % 256) as u8, (y % 256) as u8, 0])
    });
    let mut png = Vec::new();
    img.write_to(&mut Cursor::new(&mut png), image::ImageFormat::Png)
        .expect("png");
    let n = normalize(&png, CLAUDE).expect("normalized");
    assert_eq!((n.width, n.height), (725, 1568));
}

#[test]
fn when_a_png_is_transparent_should_flatten_it_onto_white() {
    let img = image::RgbaImage::from_fn(40, 20, |x, _| {
        if x < 20 {
            image::Rgba([0, 0, 0, 0]) // transparent
        } else {
            image::Rgba([0, 0, 0, 255]) // black print
        }
    });
    let mut png = Vec::new();
    img.write_to(&mut Cursor::new(&mut png), image::ImageFormat::Png)
        .expect("png");
    let n = normalize(&png, CLAUDE).expect("normalized");
    let px = jpeg_decoder::Decoder::new(Cursor::new(&n.jpeg))
        .decode()
        .expect("decode");
    assert!(px[10 * 40 * 3 + 5 * 3] > 240, "transparent became white");
    assert!(px[10 * 40 * 3 + 35 * 3] < 20, "print stayed black");
}

#[test]
fn when_a_jpeg_has_restart_markers_should_still_find_its_end() {
    // SOI, a length-less RST0 before the frame, then a real image's segments.
    let full = jpeg(64, 48, None);
    let mut odd = vec![0xFF, 0xD8, 0xFF, 0xD0];
    odd.extend_from_slice(&full[2..]);
    assert!(jpeg_complete(&odd));
    assert!(!jpeg_complete(&full[..full.len() - 2]));
}
