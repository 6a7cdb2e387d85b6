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

/// A receipt on a table as a phone stores it: the upright scene is `w` x `h` (portrait when
/// `h` > `w`), a dark table, and paper over `paper` of it (left, top, right, bottom shares)
/// printed with rows of glyph-sized marks; stored turned a quarter to the left with EXIF
/// orientation 6.
fn receipt_on_table(w: u32, h: u32, paper: [f64; 4]) -> Vec<u8> {
    let upright = image::RgbImage::from_fn(w, h, |x, y| {
        let (fx, fy) = (f64::from(x) / f64::from(w), f64::from(y) / f64::from(h));
        let on_paper = fx > paper[0] && fx < paper[2] && fy > paper[1] && fy < paper[3];
        // Glyphs 9 px tall on a 16 px line pitch, 6 px wide with 3 px between.
        let (px, py) = (x % 9, y % 16);
        let inside = fx > paper[0] + 0.03 && fx < paper[2] - 0.03;
        let ink =
            on_paper && inside && (4..13).contains(&py) && px < 6 && (x / 9 + y / 16) % 5 != 0;
        image::Rgb(match (on_paper, ink) {
            (_, true) => [40, 40, 40],
            (true, false) => [240, 238, 232],
            _ => [96, 70, 50],
        })
    });
    let stored = image::imageops::rotate270(&upright);
    let mut out = Vec::new();
    let mut e = jpeg_encoder::Encoder::new(&mut out, 90);
    e.add_app_segment(1, &exif_orientation(6)).expect("app1");
    e.encode(
        stored.as_raw(),
        stored.width() as u16,
        stored.height() as u16,
        jpeg_encoder::ColorType::Rgb,
    )
    .expect("encode");
    out
}

fn components(jpeg: &[u8]) -> jpeg_decoder::PixelFormat {
    let mut d = jpeg_decoder::Decoder::new(Cursor::new(jpeg));
    d.read_info().expect("info");
    d.info().expect("info").pixel_format
}

#[test]
fn when_a_receipt_lies_on_a_table_should_give_the_model_only_the_receipt_in_grey() {
    let photo = receipt_on_table(1200, 1600, [0.35, 0.1, 0.65, 0.9]);
    let whole = normalize(&photo, CLAUDE).expect("whole");
    let economy = normalize(&photo, Target::new(1568, Policy::Economy)).expect("economy");
    assert_eq!((whole.width, whole.height), (1176, 1568), "upright, whole");
    // The receipt is 30% of the width and 80% of the height, plus a margin; its 9 px print
    // is already under TEXT_PX, so it is not shrunk.
    assert!(
        economy.height > economy.width * 2,
        "upright and cropped: {economy:?}"
    );
    assert!((400..=480).contains(&economy.width), "{}", economy.width);
    assert!(
        (1300..=1420).contains(&economy.height),
        "{}",
        economy.height
    );
    assert_eq!(components(&economy.jpeg), jpeg_decoder::PixelFormat::L8);
    assert_eq!(components(&whole.jpeg), jpeg_decoder::PixelFormat::RGB24);
    let tokens = |n: &Normalized| u64::from(n.width) * u64::from(n.height);
    assert!(
        tokens(&economy) * 10 < tokens(&whole) * 4,
        "under 40% of the tokens"
    );
    // Bytes follow (this noiseless scene's table costs little; the corpus measures them).
    assert!(economy.jpeg.len() < whole.jpeg.len(), "fewer bytes");
    // The paper is white after flattening; the table beside a turned receipt too.
    let pixels = jpeg_decoder::Decoder::new(Cursor::new(&economy.jpeg))
        .decode()
        .expect("decode");
    assert!(
        pixels[..economy.width as usize].iter().all(|&v| v > 230),
        "top row white"
    );
}

#[test]
fn when_a_receipt_is_large_in_the_frame_should_shrink_it_by_its_print() {
    // A short receipt close to the camera: print of 9 px in a 1200x1600 scene, but the same
    // scene at twice the size has 18 px print, shrunk to TEXT_PX.
    let near = receipt_on_table(2400, 3200, [0.3, 0.2, 0.7, 0.6]);
    let economy = normalize(&near, Target::new(1568, Policy::Economy)).expect("economy");
    // Decoded at 1/2 (1200x1600 upright), the print is 9 px: nothing to shrink. Whole
    // normalization would keep 1568 px; economy keeps the crop at its decoded size or less.
    assert!(economy.height <= 720, "{economy:?}");
    assert_eq!(components(&economy.jpeg), jpeg_decoder::PixelFormat::L8);
}

#[test]
fn when_no_receipt_is_found_should_keep_the_photo_whole_upright_and_in_colour() {
    // A close-up: the paper fills the frame, so there is nothing to crop.
    let closeup = receipt_on_table(1200, 1600, [-0.1, -0.1, 1.1, 1.1]);
    let n = normalize(&closeup, Target::new(1568, Policy::Economy)).expect("economy");
    assert_eq!(components(&n.jpeg), jpeg_decoder::PixelFormat::RGB24);
    assert!(n.height > n.width, "upright: {n:?}");
    let ratio = f64::from(n.height) / f64::from(n.width);
    assert!((ratio - 4.0 / 3.0).abs() < 0.01, "the whole frame: {n:?}");
    // A gradient has no print to measure: the whole policy's size exactly.
    let flat =
        normalize(&jpeg(4032, 3024, None), Target::new(1568, Policy::Economy)).expect("economy");
    assert_eq!((flat.width, flat.height), (1568, 1176));
}

#[test]
fn when_the_policy_is_named_should_parse_economy_and_whole_only() {
    assert_eq!("economy".parse(), Ok(Policy::Economy));
    assert_eq!("whole".parse(), Ok(Policy::Whole));
    let err = "crop".parse::<Policy>().expect_err("unknown");
    assert!(err.contains("economy or whole"), "{err}");
    assert_eq!(Policy::default(), Policy::Economy);
}

#[test]
fn when_sized_for_claude_should_keep_within_1568_px_and_1_15_megapixels() {
    let t = Target::for_family(&crate::domain::family::Claude, Policy::Whole);
    let (w, h) = fit_within(4032, 3024, t);
    assert!(
        w.max(h) <= 1568 && u64::from(w) * u64::from(h) <= 1_150_000,
        "{w}x{h}"
    );
    assert!(
        (f64::from(w) / f64::from(h) - 4.0 / 3.0).abs() < 0.01,
        "aspect kept"
    );
    assert_eq!(fit_within(800, 600, t), (800, 600), "never enlarged");
    let nova = Target::for_family(&crate::domain::family::Nova, Policy::Whole);
    assert_eq!(
        fit_within(3600, 1800, nova),
        (1800, 900),
        "Nova: its long edge alone"
    );
}
