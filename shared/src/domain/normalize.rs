//! Normalizing an uploaded image, once: decoded (JPEG, PNG, WebP, the first frame of a GIF),
//! turned upright by its EXIF orientation, shrunk (never enlarged), and re-encoded as a JPEG
//! with no metadata (no GPS, no device data). Pure: bytes in, bytes out; the stages decide
//! where the result lives (see `app::normalized`).
//!
//! Two policies ([`Policy`], `IMAGE_POLICY`): **whole** keeps the whole photo in colour at the
//! model family's long edge; **economy** (the default) finds the receipt in the photo
//! (`receipt::find`), crops to it with a margin, and scales it so that its print is
//! [`TEXT_PX`] tall (`receipt::print_height`), never above the family's long edge, in grey.
//! A photo with no receipt found with confidence (a screenshot, a close-up) is kept whole, as
//! the whole policy keeps it. Both come out of the same single decode; the figures that chose
//! [`TEXT_PX`] are in docs/performance.md ("Tokens per receipt").
//!
//! Refused before any pixel buffer is allocated, each with a reason kept on the image: not an
//! image, HEIC (no maintained pure-Rust decoder builds here; libheif is a system library the
//! README does not install), a header claiming more pixels than the cap (a decompression
//! bomb: a PNG of 60000x60000 is a few dozen bytes), and a corrupt or truncated file.
//!
//! Peak memory: a JPEG is decoded at the smallest DCT scale (1/1, 1/2, 1/4, 1/8) that still
//! covers the target, so its buffer is under (2 x target)^2 x 3 bytes (29 MB at 1568 px) for
//! any size of photo; PNG, GIF and WebP have no scaled decode, so their pixel cap is lower
//! ([`MAX_DECODED_PIXELS`], at most 4 bytes a pixel: 160 MB) and the decoder's allocation
//! limit enforces it too. The resized copy and the JPEG add at most 10 MB at 1568 px; the
//! economy policy adds two grey copies of the decoded photo (6 MB for a 12 MP JPEG decoded at
//! 1/2) and the print's labels (4 bytes a pixel of the crop, measured at half size when large).

mod economy;
pub mod receipt;

use crate::domain::media::MediaType;
use fast_image_resize::images::Image;
use fast_image_resize::{FilterType, PixelType, ResizeAlg, ResizeOptions, Resizer};
use std::io::Cursor;

/// JPEG quality of a normalized image. Measured on receipts (docs/performance.md): at 85 a
/// 1568 px receipt keeps small print legible and is ~40% smaller than at 95, while below ~80
/// ringing appears around thin strokes.
pub const QUALITY: u8 = 85;
/// A JPEG header may claim at most this many pixels (decoded scaled, it costs far less): a
/// 200 MP phone mode passes, a 60000x60000 bomb does not.
pub const MAX_JPEG_PIXELS: u64 = 256_000_000;
/// PNG, GIF and WebP are decoded whole: at most this many pixels (a 12 MP WebP and a phone
/// screenshot pass).
pub const MAX_DECODED_PIXELS: u64 = 40_000_000;

/// The economy policy scales a receipt so that its print (the median glyph's height: on a till
/// receipt's capitals and digits, the capital height) is this many pixels tall. Chosen with a
/// margin: the corpus and the unseen photos first read worse than the whole photo at 12 px (a
/// dot-matrix print), so 16 keeps 4 px above that, and an x-height of about 11 px, above the
/// 10 px below which Tesseract's FAQ gives "very little chance"; Willus's 30 px optimum would
/// cost more tokens than the whole photo (docs/performance.md, "Tokens per receipt").
pub const TEXT_PX: u32 = 16;
/// JPEG quality of the economy policy's copies: a flattened grey receipt is white paper and
/// ink, and Tesseract reads it as well at 70 as at 85 for a quarter fewer bytes (the same
/// measure).
pub const ECONOMY_QUALITY: u8 = 70;

/// How much of a photo the model is given (`IMAGE_POLICY`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Policy {
    /// The whole photo, in colour, at the family's long edge.
    Whole,
    /// The receipt alone, in grey, its print [`Target::text_px`] tall; the whole photo when no
    /// receipt is found with confidence.
    #[default]
    Economy,
}

impl std::str::FromStr for Policy {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "economy" => Ok(Self::Economy),
            "whole" => Ok(Self::Whole),
            other => Err(format!("must be economy or whole, got {other:?}")),
        }
    }
}

impl Policy {
    pub fn name(&self) -> &'static str {
        match self {
            Self::Whole => "whole",
            Self::Economy => "economy",
        }
    }
}

/// What to make of an image.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Target {
    /// The long edge at most (never enlarged).
    pub long_edge: u32,
    pub quality: u8,
    pub policy: Policy,
    /// The economy policy's print height, in pixels.
    pub text_px: u32,
    /// The most pixels a copy may have (the family's: Claude's 1.15 MP), never enlarged.
    pub max_pixels: u64,
}

impl Target {
    /// `policy` at `long_edge`, with the policy's measured quality and print height.
    pub const fn new(long_edge: u32, policy: Policy) -> Self {
        Self {
            long_edge,
            quality: match policy {
                Policy::Whole => QUALITY,
                Policy::Economy => ECONOMY_QUALITY,
            },
            policy,
            text_px: TEXT_PX,
            max_pixels: u64::MAX,
        }
    }

    /// `policy` sized for `family`'s models: its long edge and its pixel count.
    pub fn for_family(family: &dyn crate::domain::family::RecordFamily, policy: Policy) -> Self {
        Self {
            max_pixels: family.image_max_pixels(),
            ..Self::new(family.image_long_edge(), policy)
        }
    }
}

/// The smallest short edge a receipt crop is given (Anthropic, "Vision": "Very small images
/// under 200 pixels on any given edge may degrade performance"), unless that would take its
/// long edge over the target's (a 1 m receipt is 1:14; then the long edge wins).
pub const MIN_SHORT_EDGE: u32 = 200;

/// A normalized image: an upright JPEG with no metadata.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Normalized {
    pub jpeg: Vec<u8>,
    pub width: u32,
    pub height: u32,
}

/// Why an image is skipped; the text is the per-image reason a client sees.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Skip {
    #[error("not a supported image (jpeg, png, gif or webp by content)")]
    NotImage,
    #[error("HEIC images are not supported yet; export the photo as JPEG (on iPhone: Settings > Camera > Formats > Most Compatible)")]
    Heic,
    #[error("image header claims {width}x{height} px, over the cap of {cap} pixels (a decompression bomb or not a photo)")]
    TooManyPixels { width: u32, height: u32, cap: u64 },
    #[error("image is corrupt or truncated: {0}")]
    Corrupt(String),
}

/// True for an ISO-BMFF file of the HEIF family (HEIC, the iPhone default).
pub fn is_heic(bytes: &[u8]) -> bool {
    bytes.get(4..8) == Some(b"ftyp")
        && matches!(
            bytes.get(8..12),
            Some(b"heic" | b"heix" | b"hevc" | b"hevx" | b"heim" | b"heis" | b"mif1" | b"msf1")
        )
}

/// How a JPEG is decoded: at the smallest DCT scale that covers the target (what
/// [`normalize`] does), or whole (the benchmark's comparison).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JpegDecode {
    Scaled,
    Full,
}

/// Normalizes `bytes` for `target`; see the module's rules.
pub fn normalize(bytes: &[u8], target: Target) -> Result<Normalized, Skip> {
    normalize_with(bytes, target, JpegDecode::Scaled)
}

/// [`normalize`], choosing how a JPEG is decoded.
pub fn normalize_with(
    bytes: &[u8],
    target: Target,
    decode: JpegDecode,
) -> Result<Normalized, Skip> {
    let media = match MediaType::sniff(bytes) {
        Some(m) => m,
        None if is_heic(bytes) => return Err(Skip::Heic),
        None => return Err(Skip::NotImage),
    };
    let (pixels, width, height) = match media {
        MediaType::Jpeg => decode_jpeg(bytes, target, decode)?,
        other => decode_other(bytes, other)?,
    };
    let orientation = orientation(bytes);
    let mut sized = None;
    if target.policy == Policy::Economy {
        match economy::make(&pixels, (width, height), orientation, target)? {
            economy::Made::Receipt(n) => return Ok(n),
            economy::Made::Whole { upright } => sized = Some(upright),
        }
    }
    let (w, h) = match sized {
        // The size upright, as stored: turned a quarter for orientations 5 to 8.
        Some((uw, uh)) if orientation >= 5 => (uh, uw),
        Some(upright) => upright,
        None => fit_within(width, height, target),
    };
    let resized = if (w, h) == (width, height) {
        pixels
    } else {
        resize(pixels, (width, height), (w, h), PixelType::U8x3)?
    };
    let img = image::RgbImage::from_raw(w, h, resized)
        .ok_or_else(|| Skip::Corrupt("fewer pixels than the header says".into()))?;
    let upright = orient(img, orientation);
    let (w, h) = upright.dimensions();
    let jpeg = encode(upright.as_raw(), w, h, target.quality, Colour::Rgb)?;
    Ok(Normalized {
        jpeg,
        width: w,
        height: h,
    })
}

/// Width and height from an image's header, read by the decoders themselves (nothing is
/// decoded): JPEG by `jpeg-decoder`, the others by `image`.
pub fn dimensions(bytes: &[u8]) -> Option<(u32, u32)> {
    match MediaType::sniff(bytes)? {
        MediaType::Jpeg => {
            let mut d = jpeg_decoder::Decoder::new(Cursor::new(bytes));
            d.read_info().ok()?;
            d.info().map(|i| (u32::from(i.width), u32::from(i.height)))
        }
        other => {
            let format = image_format(other);
            image::ImageReader::with_format(Cursor::new(bytes), format)
                .into_dimensions()
                .ok()
        }
    }
}

fn image_format(media: MediaType) -> image::ImageFormat {
    match media {
        MediaType::Png => image::ImageFormat::Png,
        MediaType::Gif => image::ImageFormat::Gif,
        MediaType::Webp => image::ImageFormat::WebP,
        MediaType::Jpeg => image::ImageFormat::Jpeg,
    }
}

/// The size that fits `long_edge`, keeping the aspect ratio; never larger than the original.
pub fn fit(width: u32, height: u32, long_edge: u32) -> (u32, u32) {
    let long = width.max(height);
    if long <= long_edge || long == 0 {
        return (width, height);
    }
    let scale = |side: u32| {
        ((u64::from(side) * u64::from(long_edge) + u64::from(long) / 2) / u64::from(long)).max(1)
            as u32
    };
    (scale(width), scale(height))
}

/// (`width`, `height`) fitted to `target`'s long edge and then to its pixel count, each only
/// ever shrinking, the aspect kept.
pub fn fit_within(width: u32, height: u32, target: Target) -> (u32, u32) {
    let (w, h) = fit(width, height, target.long_edge);
    let pixels = u64::from(w) * u64::from(h);
    if pixels <= target.max_pixels {
        return (w, h);
    }
    let scale = (target.max_pixels as f64 / pixels as f64).sqrt();
    let side = |v: u32| ((f64::from(v) * scale).floor() as u32).max(1);
    (side(w), side(h))
}

fn check_pixels(width: u32, height: u32, cap: u64) -> Result<(), Skip> {
    if width == 0 || height == 0 {
        return Err(Skip::Corrupt(format!("header says {width}x{height} px")));
    }
    if u64::from(width) * u64::from(height) > cap {
        return Err(Skip::TooManyPixels { width, height, cap });
    }
    Ok(())
}

/// A JPEG, decoded at the smallest DCT scale that still covers the target: RGB pixels.
fn decode_jpeg(
    bytes: &[u8],
    target: Target,
    decode: JpegDecode,
) -> Result<(Vec<u8>, u32, u32), Skip> {
    let corrupt = |e: jpeg_decoder::Error| Skip::Corrupt(e.to_string());
    if !jpeg_complete(bytes) {
        return Err(Skip::Corrupt(
            "the JPEG ends before its image data does".into(),
        ));
    }
    let mut d = jpeg_decoder::Decoder::new(Cursor::new(bytes));
    d.read_info().map_err(corrupt)?;
    let info = d
        .info()
        .ok_or_else(|| Skip::Corrupt("no JPEG header".into()))?;
    let (w, h) = (u32::from(info.width), u32::from(info.height));
    // A progressive JPEG keeps every coefficient at full size whatever the scale (2 bytes a
    // sample), so it gets the cap of a whole decode.
    let cap = if info.coding_process == jpeg_decoder::CodingProcess::DctProgressive {
        MAX_DECODED_PIXELS
    } else {
        MAX_JPEG_PIXELS
    };
    check_pixels(w, h, cap)?;
    let (tw, th) = match decode {
        JpegDecode::Scaled => fit(w, h, target.long_edge),
        JpegDecode::Full => (w, h),
    };
    let (sw, sh) = d.scale(tw as u16, th as u16).map_err(corrupt)?;
    let raw = d.decode().map_err(corrupt)?;
    let (sw, sh) = (u32::from(sw), u32::from(sh));
    let rgb = match info.pixel_format {
        jpeg_decoder::PixelFormat::RGB24 => raw,
        jpeg_decoder::PixelFormat::L8 => raw.iter().flat_map(|&g| [g, g, g]).collect(),
        jpeg_decoder::PixelFormat::L16 => raw
            .chunks_exact(2)
            .flat_map(|g| [g[0], g[0], g[0]])
            .collect(),
        jpeg_decoder::PixelFormat::CMYK32 => raw
            .chunks_exact(4)
            .flat_map(|p| {
                let k = u16::from(p[3]);
                [p[0], p[1], p[2]].map(|c| ((u16::from(c) * k) / 255) as u8)
            })
            .collect(),
    };
    if rgb.len() < (sw * sh * 3) as usize {
        return Err(Skip::Corrupt("fewer pixels than the header says".into()));
    }
    Ok((rgb, sw, sh))
}

/// True when a JPEG's entropy-coded data ends with an EOI marker: a truncated upload (the
/// usual corrupt photo) does not, though decoders would fill it in with grey.
fn jpeg_complete(b: &[u8]) -> bool {
    // Walk the segments to the first SOS, then scan its data for EOI (0xFF is always
    // followed by 0x00 or a restart marker inside entropy-coded data).
    let mut i = 2;
    while i + 4 <= b.len() {
        if b[i] != 0xFF {
            return false;
        }
        let marker = b[i + 1];
        if marker == 0xFF {
            i += 1; // a fill byte
            continue;
        }
        if marker == 0x01 || (0xD0..=0xD7).contains(&marker) {
            i += 2; // a marker with no length (TEM, RSTn)
            continue;
        }
        let len = usize::from(u16::from_be_bytes([b[i + 2], b[i + 3]]));
        i += 2 + len;
        if marker == 0xDA {
            break;
        }
    }
    b.get(i..)
        .is_some_and(|rest| rest.windows(2).any(|w| w == [0xFF, 0xD9]))
}

/// PNG, GIF (first frame) or WebP, decoded whole within the allocation limit: RGB pixels,
/// transparency flattened onto white.
fn decode_other(bytes: &[u8], media: MediaType) -> Result<(Vec<u8>, u32, u32), Skip> {
    let format = image_format(media);
    let corrupt = |e: image::ImageError| Skip::Corrupt(e.to_string());
    let reader = || image::ImageReader::with_format(Cursor::new(bytes), format);
    let (w, h) = reader().into_dimensions().map_err(corrupt)?;
    check_pixels(w, h, MAX_DECODED_PIXELS)?;
    let mut limits = image::Limits::default();
    limits.max_image_width = Some(w);
    limits.max_image_height = Some(h);
    limits.max_alloc = Some(MAX_DECODED_PIXELS * 4 + (16 << 20));
    let mut r = reader();
    r.limits(limits);
    let img = r.decode().map_err(corrupt)?;
    let (w, h) = (img.width(), img.height());
    if !img.color().has_alpha() {
        return Ok((img.into_rgb8().into_raw(), w, h));
    }
    // Transparent areas (a screenshot's, a sticker's) onto white paper, not black: dark print
    // on them stays readable.
    let rgba = img.into_rgba8().into_raw();
    let rgb = rgba
        .chunks_exact(4)
        .flat_map(|p| {
            let a = u16::from(p[3]);
            [p[0], p[1], p[2]].map(|c| ((u16::from(c) * a + 255 * (255 - a)) / 255) as u8)
        })
        .collect();
    Ok((rgb, w, h))
}

fn resize(
    pixels: Vec<u8>,
    from: (u32, u32),
    to: (u32, u32),
    kind: PixelType,
) -> Result<Vec<u8>, Skip> {
    let whole = receipt::Rect {
        x: 0,
        y: 0,
        w: from.0,
        h: from.1,
    };
    resize_crop(pixels, from, whole, to, kind)
}

/// Resizes the `crop` of an image of `from` pixels to `to` (Lanczos3).
fn resize_crop(
    pixels: Vec<u8>,
    from: (u32, u32),
    crop: receipt::Rect,
    to: (u32, u32),
    kind: PixelType,
) -> Result<Vec<u8>, Skip> {
    let err = |e: &dyn std::fmt::Display| Skip::Corrupt(format!("cannot resize: {e}"));
    let src = Image::from_vec_u8(from.0, from.1, pixels, kind).map_err(|e| err(&e))?;
    let mut dst = Image::new(to.0, to.1, kind);
    let options = ResizeOptions::new()
        .resize_alg(ResizeAlg::Convolution(FilterType::Lanczos3))
        .crop(
            f64::from(crop.x),
            f64::from(crop.y),
            f64::from(crop.w),
            f64::from(crop.h),
        );
    Resizer::new()
        .resize(&src, &mut dst, &options)
        .map_err(|e| err(&e))?;
    Ok(dst.into_vec())
}

/// The EXIF Orientation tag (1 to 8; 1 when absent or unreadable).
pub fn orientation(bytes: &[u8]) -> u32 {
    exif::Reader::new()
        .read_from_container(&mut Cursor::new(bytes))
        .ok()
        .and_then(|e| {
            e.get_field(exif::Tag::Orientation, exif::In::PRIMARY)?
                .value
                .get_uint(0)
        })
        .filter(|o| (1..=8).contains(o))
        .unwrap_or(1)
}

/// Applies an EXIF orientation to an image: the displayed (upright) image.
fn orient<P: image::Pixel + 'static>(
    img: image::ImageBuffer<P, Vec<P::Subpixel>>,
    orientation: u32,
) -> image::ImageBuffer<P, Vec<P::Subpixel>> {
    use image::imageops;
    match orientation {
        2 => imageops::flip_horizontal(&img),
        3 => imageops::rotate180(&img),
        4 => imageops::flip_vertical(&img),
        5 => imageops::flip_horizontal(&imageops::rotate90(&img)),
        6 => imageops::rotate90(&img),
        7 => imageops::flip_horizontal(&imageops::rotate270(&img)),
        8 => imageops::rotate270(&img),
        _ => img,
    }
}

/// The colour model of an encoded copy.
#[derive(Debug, Clone, Copy)]
enum Colour {
    Rgb,
    Grey,
}

fn encode(pixels: &[u8], w: u32, h: u32, quality: u8, colour: Colour) -> Result<Vec<u8>, Skip> {
    let mut out = Vec::with_capacity(pixels.len() / 10);
    let side = |v: u32| {
        u16::try_from(v).map_err(|_| Skip::Corrupt(format!("{v} px is too wide to encode")))
    };
    let mut encoder = jpeg_encoder::Encoder::new(&mut out, quality);
    // Huffman tables made for the image: a few percent smaller for the same pixels.
    encoder.set_optimized_huffman_tables(matches!(colour, Colour::Grey));
    encoder
        .encode(
            pixels,
            side(w)?,
            side(h)?,
            match colour {
                Colour::Rgb => jpeg_encoder::ColorType::Rgb,
                Colour::Grey => jpeg_encoder::ColorType::Luma,
            },
        )
        .map_err(|e| Skip::Corrupt(format!("cannot encode: {e}")))?;
    Ok(out)
}

#[cfg(test)]
#[path = "normalize_tests.rs"]
mod tests;
