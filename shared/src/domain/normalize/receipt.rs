//! The economy policy's two measures of an upright grey photo: where the receipt is, and how
//! tall its print is.
//!
//! **Finding the receipt.** Paper is the brightest large thing in a receipt photo. On a copy
//! of at most [`SMALL_EDGE`] px a side, Otsu's threshold splits bright from dark, and the
//! largest bright 8-connected region is the candidate. It is taken only with confidence:
//! - at least [`MIN_AREA`] of the frame (a scrap of paper or a glare is not a receipt);
//! - its box at most [`MAX_BOX`] of the frame and touching at most two of the frame's edges (a
//!   screenshot's white page or a close-up fills the frame: there is nothing to crop);
//! - its rows filled, edge to edge, over at least [`MIN_FILL`] of its box (a receipt is a
//!   quadrilateral, even tilted and in perspective; a tangle of bright objects is not);
//! - clearly brighter than what is around it ([`MIN_CONTRAST`] grey levels between the two
//!   sides of the threshold).
//!
//! A shadow across the receipt would cut it in two at Otsu's threshold, so the region is
//! grown (hysteresis): from the brightest region, into every connected pixel brighter than the
//! dark side's mean by [`GROW`] of the way to the threshold. On a light table the grown region
//! may take in the table and fail the checks; then the brightest region alone is tried. When
//! neither passes, the photo is kept whole. The crop is the region's box plus a margin.
//!
//! **The print.** Inside the crop, Otsu's threshold again separates ink from paper; the ink's
//! 8-connected regions of a glyph's size (a character, or a word the blur has run together)
//! are counted, and the median of their heights is the print's height. Tilt barely changes a
//! glyph's height, unlike a row profile, whose lines smear into each other.

use image::{GrayImage, Luma};
use imageproc::morphology::{grayscale_close, Mask};
use imageproc::region_labelling::{connected_components, Connectivity};

/// The finder works on a copy this many pixels on its long edge.
pub const SMALL_EDGE: u32 = 320;
/// The smallest receipt, as a share of the frame's area.
pub const MIN_AREA: f64 = 0.03;
/// The largest box a receipt may fill, as a share of the frame's area.
pub const MAX_BOX: f64 = 0.80;
/// A receipt's rows, edge to edge, fill at least this share of its box.
pub const MIN_FILL: f64 = 0.55;
/// Paper is at least this many grey levels brighter, on average, than the rest.
pub const MIN_CONTRAST: f64 = 40.0;
/// The paper grows into neighbours brighter than the dark side's mean by this share of the
/// way to the threshold (hysteresis: a shadow across the receipt stays inside it).
pub const GROW: f64 = 0.4;
/// The margin kept around the receipt, as a share of its box's longer side.
pub const MARGIN: f64 = 0.03;
/// Fewer glyph-sized regions than this and the print's height is unknown.
const MIN_GLYPHS: usize = 12;

/// A rectangle of the upright image, in pixels.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rect {
    pub x: u32,
    pub y: u32,
    pub w: u32,
    pub h: u32,
}

/// The bounds and size of one labelled region.
#[derive(Debug, Clone, Copy)]
struct Region {
    count: u64,
    /// The region's first pixel in raster order.
    first: (u32, u32),
    x0: u32,
    y0: u32,
    x1: u32,
    y1: u32,
}

impl Region {
    fn new() -> Self {
        Self {
            count: 0,
            first: (0, 0),
            x0: u32::MAX,
            y0: u32::MAX,
            x1: 0,
            y1: 0,
        }
    }
    fn add(&mut self, x: u32, y: u32) {
        if self.count == 0 {
            self.first = (x, y);
        }
        self.count += 1;
        self.x0 = self.x0.min(x);
        self.y0 = self.y0.min(y);
        self.x1 = self.x1.max(x);
        self.y1 = self.y1.max(y);
    }
    fn width(&self) -> u32 {
        self.x1 - self.x0 + 1
    }
    fn height(&self) -> u32 {
        self.y1 - self.y0 + 1
    }
}

/// The 8-connected regions of `mask`'s non-zero pixels: their labels, and each region's
/// bounds (index = label; label 0 is the background).
fn regions(mask: &GrayImage) -> (Labels, Vec<Region>) {
    let labels = connected_components(mask, Connectivity::Eight, Luma([0u8]));
    let mut out: Vec<Region> = Vec::new();
    for (x, y, l) in labels.enumerate_pixels() {
        let l = l.0[0] as usize;
        if l == 0 {
            continue;
        }
        if out.len() <= l {
            out.resize(l + 1, Region::new());
        }
        out[l].add(x, y);
    }
    (labels, out)
}

/// A receipt found in a photo.
#[derive(Debug, Clone)]
pub struct Found {
    /// The crop: the paper's box and a margin, in the upright image's pixels.
    pub rect: Rect,
    /// Per row of the small copy: the paper's first and last column, widened by the margin.
    spans: Spans,
    /// Pixels of the upright image per pixel of the small copy, across and down.
    scale: (f64, f64),
    /// The paper's corners (top-left, top-right, bottom-right, bottom-left) in the upright
    /// image's pixels, when they outline it closely (see [`corners`]): what to warp upright.
    pub corners: Option<[(f64, f64); 4]>,
}

impl Found {
    /// True when the upright image's pixel (`x`, `y`) is paper or within the margin of it
    /// (the table around a turned receipt is not).
    pub fn covers(&self, x: f64, y: f64) -> bool {
        let (sx, sy) = (x / self.scale.0, y / self.scale.1);
        sy >= 0.0
            && self
                .spans
                .get(sy as usize)
                .copied()
                .flatten()
                .is_some_and(|(lo, hi)| sx >= f64::from(lo) && sx < f64::from(hi) + 1.0)
    }
}

/// Where the receipt is in `grey` (upright), with a margin; None when it is not found with
/// confidence (see the module's rules).
pub fn find(grey: &GrayImage) -> Option<Found> {
    let (w, h) = grey.dimensions();
    let (sw, sh) = crate::domain::normalize::fit(w, h, SMALL_EDGE);
    let small = image::imageops::thumbnail(grey, sw, sh);
    let level = imageproc::contrast::otsu_level(&small);
    let (bright, dark) = means(&small, level);
    if bright - dark < MIN_CONTRAST {
        return None;
    }
    // The brightest large region seeds the paper, which then takes in every neighbour
    // brighter than the table by a share of the gap: the part of the receipt in a shadow. On a
    // light table the grown region may take in the table; then the seed alone is the paper.
    let strong = regions(&above(&small, level));
    let (seed, first) = strong
        .1
        .iter()
        .enumerate()
        .filter(|(_, r)| r.count > 0)
        .max_by_key(|(_, r)| r.count)
        .map(|(l, r)| (l as u32, r.first))?;
    let low = (dark + (f64::from(level) - dark) * GROW) as u8;
    let weak = regions(&above(&small, low));
    let grown = weak.0.get_pixel(first.0, first.1).0[0];
    let found =
        [(&weak, grown), (&strong, seed)]
            .into_iter()
            .find_map(|((labels, regions), label)| {
                confident(labels, regions.get(label as usize)?, label)
            });
    let scale = (f64::from(w) / f64::from(sw), f64::from(h) / f64::from(sh));
    found.map(|(paper, spans, quad)| Found {
        rect: scale_up(&paper, (sw, sh), (w, h)),
        spans: widen(&spans, margin_of(&paper)),
        scale,
        corners: quad.map(|q| q.map(|(x, y)| (x * scale.0, y * scale.1))),
    })
}

type Labels = image::ImageBuffer<Luma<u32>, Vec<u32>>;
/// Per row of the small copy: a region's first and last column, if it has any there.
type Spans = Vec<Option<(u32, u32)>>;

/// Region `label`, its row spans and its corners, when it passes the module's checks for a
/// receipt.
fn confident(labels: &Labels, paper: &Region, label: u32) -> Option<(Region, Spans, Quad)> {
    let (sw, sh) = labels.dimensions();
    let frame = f64::from(sw) * f64::from(sh);
    let boxed = f64::from(paper.width()) * f64::from(paper.height());
    let edges = [
        paper.x0 == 0,
        paper.y0 == 0,
        paper.x1 + 1 == sw,
        paper.y1 + 1 == sh,
    ]
    .iter()
    .filter(|&&t| t)
    .count();
    if paper.count as f64 / frame < MIN_AREA || boxed / frame > MAX_BOX || edges > 2 {
        return None;
    }
    let spans = row_spans(labels, label, sh);
    let filled: u32 = spans.iter().flatten().map(|(lo, hi)| hi - lo + 1).sum();
    (f64::from(filled) / boxed >= MIN_FILL).then(|| (*paper, spans, corners(labels, label, paper)))
}

/// Four corners: top-left, top-right, bottom-right, bottom-left.
type Quad = Option<[(f64, f64); 4]>;

/// The quadrilateral may differ from the region's area by at most this share.
pub const MAX_QUAD_MISFIT: f64 = 0.06;

/// Region `label`'s corners in the small copy's pixels, as a document scanner finds a page's:
/// its extreme points along the two diagonals (least and most x + y, most and least x - y),
/// taken at the pixels' outer corners. None unless the quadrilateral they make has the region's
/// area within [`MAX_QUAD_MISFIT`] (a curled, torn or occluded receipt is not a quadrilateral,
/// and is cropped by its box instead).
fn corners(labels: &Labels, label: u32, paper: &Region) -> Quad {
    // (key, point) for top-left, top-right, bottom-right, bottom-left.
    let mut best = [(f64::MAX, (0.0, 0.0)); 4];
    for y in paper.y0..=paper.y1 {
        for x in paper.x0..=paper.x1 {
            if labels.get_pixel(x, y).0[0] != label {
                continue;
            }
            let (x, y) = (f64::from(x), f64::from(y));
            let candidates = [
                (x + y, (x, y)),
                (-(x - y), (x + 1.0, y)),
                (-(x + y), (x + 1.0, y + 1.0)),
                (x - y, (x, y + 1.0)),
            ];
            for (b, c) in best.iter_mut().zip(candidates) {
                if c.0 < b.0 {
                    *b = c;
                }
            }
        }
    }
    let quad = best.map(|(_, p)| p);
    let area = shoelace(&quad);
    ((area - paper.count as f64).abs() <= paper.count as f64 * MAX_QUAD_MISFIT).then_some(quad)
}

/// The area of a simple polygon (the shoelace formula).
fn shoelace(points: &[(f64, f64)]) -> f64 {
    let n = points.len();
    let twice: f64 = (0..n)
        .map(|i| {
            let (a, b) = (points[i], points[(i + 1) % n]);
            a.0 * b.1 - b.0 * a.1
        })
        .sum();
    twice.abs() / 2.0
}

/// The margin, in pixels of the small copy, around a receipt of `paper`'s size.
fn margin_of(paper: &Region) -> u32 {
    (f64::from(paper.width().max(paper.height())) * MARGIN).ceil() as u32
}

/// Per row: the first and last column of region `label` (holes such as print inside it count
/// as filled).
fn row_spans(labels: &Labels, label: u32, rows: u32) -> Spans {
    (0..rows)
        .map(|y| {
            let mut xs = (0..labels.width()).filter(|&x| labels.get_pixel(x, y).0[0] == label);
            let lo = xs.next()?;
            Some((lo, xs.next_back().unwrap_or(lo)))
        })
        .collect()
}

/// Spans widened by `m` to each side and to the `m` rows above and below.
fn widen(spans: &[Option<(u32, u32)>], m: u32) -> Spans {
    let m = m as usize;
    (0..spans.len())
        .map(|y| {
            let near = &spans[y.saturating_sub(m)..(y + m + 1).min(spans.len())];
            near.iter()
                .flatten()
                .fold(None, |acc: Option<(u32, u32)>, &(lo, hi)| {
                    let (lo, hi) = (lo.saturating_sub(m as u32), hi + m as u32);
                    Some(acc.map_or((lo, hi), |(a, b)| (a.min(lo), b.max(hi))))
                })
        })
        .collect()
}

/// A mask of `img`'s pixels brighter than `level`.
fn above(img: &GrayImage, level: u8) -> GrayImage {
    GrayImage::from_fn(img.width(), img.height(), |x, y| {
        Luma([if img.get_pixel(x, y).0[0] > level {
            255
        } else {
            0
        }])
    })
}

/// The mean grey levels above `level` and at or below it.
fn means(small: &GrayImage, level: u8) -> (f64, f64) {
    let (mut hi, mut nhi, mut lo, mut nlo) = (0u64, 0u64, 0u64, 0u64);
    for p in small.pixels() {
        let v = u64::from(p.0[0]);
        if p.0[0] > level {
            hi += v;
            nhi += 1;
        } else {
            lo += v;
            nlo += 1;
        }
    }
    (hi as f64 / nhi.max(1) as f64, lo as f64 / nlo.max(1) as f64)
}

/// A region of the small copy as a rectangle of the full image, with the margin.
fn scale_up(r: &Region, small: (u32, u32), full: (u32, u32)) -> Rect {
    let (fx, fy) = (
        f64::from(full.0) / f64::from(small.0),
        f64::from(full.1) / f64::from(small.1),
    );
    let margin = f64::from(margin_of(r));
    let x0 = ((f64::from(r.x0) - margin) * fx).max(0.0);
    let y0 = ((f64::from(r.y0) - margin) * fy).max(0.0);
    let x1 = ((f64::from(r.x1 + 1) + margin) * fx).min(f64::from(full.0));
    let y1 = ((f64::from(r.y1 + 1) + margin) * fy).min(f64::from(full.1));
    let (x, y) = (x0.floor() as u32, y0.floor() as u32);
    Rect {
        x,
        y,
        w: (x1.ceil() as u32).saturating_sub(x).max(1),
        h: (y1.ceil() as u32).saturating_sub(y).max(1),
    }
}

/// The median height, in pixels, of the print inside `rect` of `grey`; None when too few
/// glyph-sized regions are found.
pub fn print_height(grey: &GrayImage, rect: Rect) -> Option<f64> {
    let crop = image::imageops::crop_imm(grey, rect.x, rect.y, rect.w, rect.h);
    // A large crop is measured at half size (a third of the time; its print is then at least
    // 6 px, measured to within 2).
    if u64::from(rect.w) * u64::from(rect.h) > HALF_ABOVE {
        let half = image::imageops::thumbnail(&*crop, (rect.w / 2).max(1), (rect.h / 2).max(1));
        let (w, h) = half.dimensions();
        return median_glyph(&half, w, h).map(|p| p * 2.0);
    }
    median_glyph(&crop.to_image(), rect.w, rect.h)
}

/// Crops of more pixels than this are measured at half size.
const HALF_ABOVE: u64 = 600_000;

/// The median height of `crop`'s glyph-sized ink regions.
fn median_glyph(crop: &GrayImage, w: u32, h: u32) -> Option<f64> {
    let rect = Rect { x: 0, y: 0, w, h };
    let level = imageproc::contrast::otsu_level(crop);
    let ink = GrayImage::from_fn(rect.w, rect.h, |x, y| {
        Luma([if crop.get_pixel(x, y).0[0] <= level {
            255
        } else {
            0
        }])
    });
    let (_, regions) = regions(&ink);
    let tallest = (rect.h / 8).max(4);
    let widest = rect.w / 2;
    let mut heights: Vec<u32> = regions
        .iter()
        .filter(|r| r.count >= 4)
        .filter(|r| (3..=tallest).contains(&r.height()) && r.width() <= widest)
        .map(Region::height)
        .collect();
    if heights.len() < MIN_GLYPHS {
        return None;
    }
    let mid = heights.len() / 2;
    let (_, median, _) = heights.select_nth_unstable(mid);
    Some(f64::from(*median))
}

/// Paper maps to at least this share over white, so its grain and sensor noise become white.
const PAPER_GAIN: u32 = 115;

/// Evens out the light on a grey receipt whose print is `print_px` tall: each pixel is divided
/// by the local paper white (a grey-level closing, over two print heights, of a copy an eighth
/// of the size, smoothly enlarged: the print goes, a shadow's edge stays sharp), so a shadow or
/// a vignette goes, ink stays dark, and paper's noise becomes flat white (fewer JPEG bytes). Ink fainter than paper by
/// under [`PAPER_GAIN`] is kept; anything brighter is white.
pub fn flatten(img: &mut GrayImage, print_px: u32) {
    let (w, h) = img.dimensions();
    let (sw, sh) = ((w / 8).max(1), (h / 8).max(1));
    let small = image::imageops::thumbnail(img, sw, sh);
    let radius = u8::try_from(print_px * 2 / 8 + 1).unwrap_or(u8::MAX);
    let white = grayscale_close(&small, &Mask::square(radius));
    let white = image::imageops::resize(&white, w, h, image::imageops::FilterType::Triangle);
    for (p, b) in img.pixels_mut().zip(white.pixels()) {
        let paper = u32::from(b.0[0]).max(16);
        let v = u32::from(p.0[0]) * 255 * PAPER_GAIN / (paper * 100);
        p.0[0] = v.min(255) as u8;
    }
}
