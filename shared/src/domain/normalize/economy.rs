//! The economy policy's pass over a decoded photo (see the parent module): the receipt found,
//! cropped, sized by its print, in grey, its light evened out and the table around it white;
//! or, with no receipt found, the size the whole photo is kept at.

use crate::domain::normalize::{
    encode, fit_within, orient, receipt, resize_crop, Colour, Normalized, Skip, Target,
    MIN_SHORT_EDGE,
};
use fast_image_resize::PixelType;
use image::{GrayImage, Luma};
use imageproc::geometric_transformations::{warp_into, Border, Interpolation, Projection};

/// What the economy policy makes of a photo.
#[derive(Debug)]
pub(super) enum Made {
    /// The receipt alone.
    Receipt(Normalized),
    /// No receipt found with confidence: the whole photo is kept, in colour, at this upright
    /// size (smaller than the long edge when its print is measurably larger than needed).
    Whole { upright: (u32, u32) },
}

/// The economy policy over decoded RGB `pixels` stored with EXIF `orientation`.
pub(super) fn make(
    pixels: &[u8],
    (width, height): (u32, u32),
    orientation: u32,
    target: Target,
) -> Result<Made, Skip> {
    let grey = GrayImage::from_raw(width, height, luma(pixels))
        .ok_or_else(|| Skip::Corrupt("fewer pixels than the header says".into()))?;
    let grey = orient(grey, orientation);
    let (gw, gh) = grey.dimensions();
    let Some(found) = receipt::find(&grey) else {
        let whole = receipt::Rect {
            x: 0,
            y: 0,
            w: gw,
            h: gh,
        };
        let (upright, _) = size(&grey, whole, target);
        return Ok(Made::Whole { upright });
    };
    let rect = found.rect;
    let ((w, h), print) = size(&grey, rect, target);
    let out = resize_crop(grey.into_raw(), (gw, gh), rect, (w, h), PixelType::U8)?;
    let mut out = GrayImage::from_raw(w, h, out)
        .ok_or_else(|| Skip::Corrupt("the resized receipt is short of pixels".into()))?;
    let scale = f64::from(w) / f64::from(rect.w);
    let print_out = print.map_or(target.text_px, |p| (p * scale).round() as u32);
    match straighten(&out, &found, (w, h)) {
        Some(upright) => out = upright,
        None => whiten_table(&mut out, &found),
    }
    receipt::flatten(&mut out, print_out.max(1));
    // A soft blur, in proportion to the print, joins a dot-matrix printer's dots into strokes
    // as a smaller copy does; small print (a long receipt far off) is barely touched.
    let sigma = INK_BLUR * print_out as f32;
    let out = if sigma >= 0.3 {
        imageproc::filter::gaussian_blur_f32(&out, sigma)
    } else {
        out
    };
    let (w, h) = out.dimensions();
    let jpeg = encode(out.as_raw(), w, h, target.quality, Colour::Grey)?;
    Ok(Made::Receipt(Normalized {
        jpeg,
        width: w,
        height: h,
    }))
}

/// The Gaussian blur over a finished copy, as a share of its print's height (0.8 px at 16 px):
/// a thermal printer's dots read as strokes, solid print keeps its edges (docs/performance.md,
/// "Straightened, with a margin, judged photo by photo").
pub const INK_BLUR: f32 = 0.05;

/// The cropped receipt (`crop`, the found box at `size`) warped to an upright rectangle, as a
/// document scanner does: its four corners to a rectangle's, which takes out both the turn
/// (deskew) and the perspective (keystone). The rectangle's sides are the means of the
/// quadrilateral's opposite sides, at the crop's scale (a warp near 1:1 keeps the print sharp;
/// the resize before it filtered properly). None when the corners were not found with
/// confidence: the box crop stays, its table whitened.
fn straighten(crop: &GrayImage, found: &receipt::Found, size: (u32, u32)) -> Option<GrayImage> {
    let rect = found.rect;
    let corners = found.corners?;
    let (sx, sy) = (
        f64::from(size.0) / f64::from(rect.w),
        f64::from(size.1) / f64::from(rect.h),
    );
    let q = corners.map(|(x, y)| {
        (
            ((x - f64::from(rect.x)) * sx) as f32,
            ((y - f64::from(rect.y)) * sy) as f32,
        )
    });
    let side = |a: (f32, f32), b: (f32, f32)| (a.0 - b.0).hypot(a.1 - b.1);
    let w = ((side(q[0], q[1]) + side(q[3], q[2])) / 2.0)
        .round()
        .max(1.0);
    let h = ((side(q[0], q[3]) + side(q[1], q[2])) / 2.0)
        .round()
        .max(1.0);
    let to = [(0.0, 0.0), (w, 0.0), (w, h), (0.0, h)];
    let projection = Projection::from_control_points(q, to)?;
    let mut out = GrayImage::new(w as u32, h as u32);
    warp_into(
        crop,
        projection,
        Interpolation::Bilinear,
        Border::Constant(Luma([255])),
        &mut out,
    );
    Some(out)
}

/// The size `rect` of `grey` is given at: its print `target.text_px` tall when measured
/// (never enlarged), its short edge at least [`MIN_SHORT_EDGE`] where the long edge allows, at
/// most the long edge and the pixel count; and the print's height measured, if it was.
fn size(grey: &GrayImage, rect: receipt::Rect, target: Target) -> ((u32, u32), Option<f64>) {
    let print = receipt::print_height(grey, rect);
    let by_print = print.map_or(1.0, |p| (f64::from(target.text_px) / p).min(1.0));
    let short = f64::from(rect.w.min(rect.h).max(1));
    let floor = (f64::from(MIN_SHORT_EDGE) / short).min(1.0);
    let scale = by_print.max(floor);
    let side = |v: u32| ((f64::from(v) * scale).round() as u32).max(1);
    let by_edge = fit_within(rect.w, rect.h, target);
    let size = if side(rect.w.max(rect.h)) < by_edge.0.max(by_edge.1) {
        (side(rect.w), side(rect.h))
    } else {
        by_edge
    };
    (size, print)
}

/// The table around a turned receipt, white: nothing to read, and no bytes.
fn whiten_table(out: &mut GrayImage, found: &receipt::Found) {
    let rect = found.rect;
    let (w, h) = out.dimensions();
    let step = (
        f64::from(rect.w) / f64::from(w),
        f64::from(rect.h) / f64::from(h),
    );
    for (x, y, p) in out.enumerate_pixels_mut() {
        let at = (
            f64::from(rect.x) + (f64::from(x) + 0.5) * step.0,
            f64::from(rect.y) + (f64::from(y) + 0.5) * step.1,
        );
        if !found.covers(at.0, at.1) {
            p.0[0] = 255;
        }
    }
}

/// RGB pixels as grey (ITU-R BT.601 luma, in integers).
fn luma(rgb: &[u8]) -> Vec<u8> {
    rgb.chunks_exact(3)
        .map(|p| ((77 * u32::from(p[0]) + 150 * u32::from(p[1]) + 29 * u32::from(p[2])) >> 8) as u8)
        .collect()
}
