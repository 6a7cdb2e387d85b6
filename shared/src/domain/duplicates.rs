//! Duplicate photos: the same user's copies of one image answered once, and near copies (the
//! same receipt photographed again) flagged.
//!
//! - **Exact**: an image is keyed by a SHA-256 of its normalized copy's bytes together with
//!   the model and prompt that read it ([`digest`]), per user, for `DUPLICATE_WINDOW_DAYS`.
//!   Normalizing is deterministic, so the same photo under two keys (a retry, a second tap,
//!   two devices) has one digest; one conditional write per digest decides which copy is the
//!   first ([`Claim`]). Another copy is never sent to a model: its result is the first's
//!   answer ([`follower_result`]), with 0 tokens and a [`DuplicateOf`] that says what it saved.
//! - **Near**: a perceptual hash of the normalized copy's grey pixels ([`perceptual`]), kept
//!   beside the digest. A new image within [`NEAR_DISTANCE`] bits (Hamming) of an image the
//!   same user sent in the window is still sent and answered, and carries a
//!   [`PossibleDuplicateOf`]. The threshold is measured (docs/performance.md, "Duplicates").

use crate::domain::ids::{IntentId, JobId, ModelId, ObjectKey, RecordId};
pub use crate::domain::results::{DuplicateOf, PossibleDuplicateOf};
use crate::domain::results::{ImageResult, ResultStatus};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// The largest Hamming distance between two perceptual hashes that flags a possible
/// duplicate. Measured (`cargo bench --bench duplicates`, docs/performance.md, "Duplicates"):
/// on the tuning set the same receipt photographed again lay at most 74 bits apart and
/// different receipts of one shop at least 87; 80 sits in the middle of that gap. On the
/// check set (other fonts and conditions) it flagged 8 of 8 re-photographs and 0 of 32 others.
pub const NEAR_DISTANCE: u32 = 80;

/// Most of a user's images a new one is compared with for near copies: the newest in the
/// window. Bounds what a manifest build reads for a heavy user (200,000 images a day is the
/// default allowance) to about 3 MB.
pub const NEAR_SCAN: usize = 10_000;

/// The side of the perceptual hash's grid: a double gradient over 32 × 32 cells (544 bits).
/// Smaller grids see the shop's layout and not its lines: at 16 × 16 different receipts of
/// one shop came within the distance of the same receipt photographed again.
pub const HASH_SIDE: u32 = 32;

/// The digest that keys exact copies: the normalized copy's bytes, read by this model with
/// this prompt (an answer is only reused for the same question), as hex.
pub fn digest(model: &ModelId, prompt_version: &str, normalized_jpeg: &[u8]) -> String {
    let mut h = Sha256::new();
    h.update(model.as_str().as_bytes());
    h.update([0]);
    h.update(prompt_version.as_bytes());
    h.update([0]);
    h.update(normalized_jpeg);
    hex::encode(h.finalize())
}

/// The perceptual hash of a normalized copy's grey pixels ([`double_gradient`]), as base64;
/// None when the bytes are not a JPEG. The JPEG is decoded at a reduced DCT scale: the hash
/// reads a few hundred pixels a side at most.
pub fn perceptual(normalized_jpeg: &[u8]) -> Option<String> {
    Some(double_gradient(&grey(normalized_jpeg)?))
}

/// `image_hasher`'s double-gradient hash with a [`HASH_SIDE`]² hash size, as base64 (standard
/// alphabet, no padding): the grey image resized (Lanczos3) to 17 × 17, then each pixel
/// against its right neighbour row by row, then against its lower one column by column, 544
/// bits packed least significant first. Written here so the build does not carry that crate's
/// DCT and FFT for one algorithm; `duplicates_tests.rs` holds it to `image_hasher`'s own output
/// bit for bit, and the benchmark compares it with that crate's other hashers.
pub fn double_gradient(grey: &image::GrayImage) -> String {
    use base64::Engine as _;
    let side = HASH_SIDE / 2 + 1;
    let small = image::imageops::resize(grey, side, side, image::imageops::FilterType::Lanczos3);
    let px = |x: u32, y: u32| small.get_pixel(x, y).0[0];
    let mut bits = Vec::with_capacity((2 * side * (side - 1)) as usize);
    for y in 0..side {
        bits.extend((1..side).map(|x| px(x - 1, y) < px(x, y)));
    }
    for x in 0..side {
        bits.extend((1..side).map(|y| px(x, y - 1) < px(x, y)));
    }
    let bytes: Vec<u8> = bits
        .chunks(8)
        .map(|c| (0..c.len()).fold(0u8, |b, n| b | (u8::from(c[n]) << n)))
        .collect();
    base64::engine::general_purpose::STANDARD_NO_PAD.encode(bytes)
}

/// A JPEG's grey pixels, decoded at the smallest DCT scale of at least 256 px a side.
pub fn grey(jpeg: &[u8]) -> Option<image::GrayImage> {
    let mut d = jpeg_decoder::Decoder::new(std::io::Cursor::new(jpeg));
    d.read_info().ok()?;
    d.scale(256, 256).ok()?;
    let pixels = d.decode().ok()?;
    let info = d.info()?;
    let (w, h) = (u32::from(info.width), u32::from(info.height));
    let luma: Vec<u8> = match info.pixel_format {
        jpeg_decoder::PixelFormat::L8 => pixels,
        jpeg_decoder::PixelFormat::RGB24 => pixels
            .chunks_exact(3)
            .map(|p| {
                ((u32::from(p[0]) * 299 + u32::from(p[1]) * 587 + u32::from(p[2]) * 114) / 1000)
                    as u8
            })
            .collect(),
        _ => return None,
    };
    image::GrayImage::from_raw(w, h, luma)
}

/// The Hamming distance between two hashes from [`perceptual`]; None if either is unreadable
/// or they differ in size.
pub fn distance(a: &str, b: &str) -> Option<u32> {
    use base64::Engine as _;
    let decode = |h: &str| {
        base64::engine::general_purpose::STANDARD_NO_PAD
            .decode(h)
            .ok()
    };
    let (a, b) = (decode(a)?, decode(b)?);
    (a.len() == b.len()).then(|| a.iter().zip(&b).map(|(x, y)| (x ^ y).count_ones()).sum())
}

/// The image that was answered first: where its result is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FirstCopy {
    pub intent_id: IntentId,
    pub job_id: JobId,
    pub record_id: RecordId,
    /// Its index in its intent: a lower one of the same intent takes a claim over.
    #[serde(default)]
    pub index: usize,
    pub image_key: ObjectKey,
}

/// One image a user sent in the window: the index item of its digest.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Seen {
    pub digest: String,
    /// Its perceptual hash, when its pixels could be read.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub perceptual: Option<String>,
    pub first: FirstCopy,
    pub seen_at: DateTime<Utc>,
    /// When the window closes for it (the store's TTL too).
    pub expires_at: DateTime<Utc>,
}

impl Seen {
    /// True while it answers copies of itself.
    pub fn is_live(&self, now: DateTime<Utc>) -> bool {
        self.expires_at > now
    }
}

/// What the conditional write of a digest found.
#[derive(Debug, Clone, PartialEq)]
pub enum Claim {
    /// This image is the first (or the same image again, on a replay, or an earlier image of
    /// the intent that claimed it: see [`takes_over`]).
    First,
    /// Another image of the same digest came first, in the window.
    Duplicate(FirstCopy),
}

/// True when `claimant` may write the digest's item over `stored`: the item has passed its
/// window, or it names a later image of the same intent (two copies in one request, checked
/// at once: the earlier is the first). The same image again (a replay) is first without a
/// write, so its item keeps when it was first seen.
pub fn takes_over(stored: &Seen, claimant: &FirstCopy, now: DateTime<Utc>) -> bool {
    let s = &stored.first;
    !stored.is_live(now) || (s.intent_id == claimant.intent_id && s.index > claimant.index)
}

/// A copy waiting for (or answered from) its first: kept under the first's intent, so the
/// writer of the first's result finds every copy to answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Follower {
    pub first: FirstCopy,
    pub intent_id: IntentId,
    pub record_id: RecordId,
    pub index: usize,
    pub image_key: ObjectKey,
}

impl Follower {
    /// The follower's key under its first's intent: one per (first record, follower).
    pub fn sort_key(&self) -> String {
        format!(
            "f#{}#{}#{}",
            self.first.record_id, self.intent_id, self.record_id
        )
    }
}

/// A record's near-copy mark, kept under its intent until its result is written.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NearMark {
    pub record_id: RecordId,
    pub of: PossibleDuplicateOf,
}

/// The nearest live image of `seen` to `perceptual` within [`NEAR_DISTANCE`], other than the
/// image `digest` itself: what a new image may be a photo of again.
pub fn nearest(
    seen: &[Seen],
    digest: &str,
    perceptual: &str,
    now: DateTime<Utc>,
) -> Option<PossibleDuplicateOf> {
    seen.iter()
        .filter(|s| s.digest != digest && s.is_live(now))
        .filter_map(|s| Some((s, distance(s.perceptual.as_deref()?, perceptual)?)))
        .filter(|(_, d)| *d <= NEAR_DISTANCE)
        .min_by_key(|(s, d)| (*d, s.seen_at))
        .map(|(s, d)| PossibleDuplicateOf {
            job_id: s.first.job_id.clone(),
            image_key: s.first.image_key.clone(),
            distance: d,
        })
}

/// A copy's result from its first's: the same answer and checks, 0 tokens, no attempts of its
/// own. A first that was cancelled (its answer discarded) leaves the copy failed, with why.
pub fn follower_result(first: &ImageResult, f: &Follower) -> ImageResult {
    let mut r = first.clone();
    r.record_id = f.record_id.clone();
    r.image_index = f.index;
    r.image_key = f.image_key.clone();
    r.input_tokens = 0;
    r.output_tokens = 0;
    r.attempts = 0;
    r.on_demand = false;
    r.reask = None;
    r.possible_duplicate_of = None;
    let (saved_in, saved_out) = first_tokens(first);
    if matches!(first.status, ResultStatus::Canceled | ResultStatus::Skipped) {
        r.status = ResultStatus::Failed;
        r.error_code = Some("duplicate_not_answered".into());
        r.error_message = Some(format!(
            "an exact copy of {}, which was not answered: {}",
            f.first.image_key,
            first.error_message.as_deref().unwrap_or("no reason given")
        ));
    }
    r.duplicate_of = Some(Box::new(DuplicateOf {
        job_id: f.first.job_id.clone(),
        image_key: f.first.image_key.clone(),
        saved_input_tokens: saved_in,
        saved_output_tokens: saved_out,
        saved_on_demand: first.on_demand,
    }));
    r
}

/// What the first's answer cost in tokens, a re-ask's other attempt included.
fn first_tokens(first: &ImageResult) -> (u64, u64) {
    let other = first
        .reask
        .as_ref()
        .map_or((0, 0), |a| (a.other.input_tokens, a.other.output_tokens));
    (first.input_tokens + other.0, first.output_tokens + other.1)
}

#[cfg(test)]
#[path = "duplicates_tests.rs"]
mod tests;
