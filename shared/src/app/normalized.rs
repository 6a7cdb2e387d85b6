//! Where normalized images live, and making one when it is missing. Every uploaded image is
//! normalized once (`domain::normalize`): at upload, on its uploads-index event, for the
//! default model's family; and by the manifest builder for anything not normalized yet (an
//! image uploaded before this existed, or a family of another size).
//!
//! The copy's key is derived from the original's, the size and the policy (`IMAGE_POLICY`), in
//! the uploads bucket: `normalized/{long edge}/{original key}.jpg` for the whole photo and
//! `normalized/e{long edge}/{original key}.jpg` for the economy copy (outside `uploads/`, so
//! writing it raises no upload event; a change of policy never reads the other's copies). Normalizing is deterministic, so a replay (a redelivered event, a second
//! manifest build) writes the same bytes to the same key; the original is never changed. A
//! re-upload under the same key raises a new event, which makes the copy again from the new
//! original ([`make`], never the cached copy). The manifest builder uses a copy only while its
//! original is still there: a deleted upload is `not found`, as it was before copies existed.

use crate::app::{Deps, StageError};
use crate::domain::bedrock::S3Uri;
use crate::domain::family::RecordFamily;
use crate::domain::ids::ObjectKey;
use crate::domain::normalize::{normalize, Policy, Target};
use crate::ports::ErrorKind;

/// The largest original read, in bytes, told from the object's metadata before any byte of it
/// is fetched: a 200 MP phone JPEG is about 30 MB, a 40 MP PNG screenshot less; anything
/// larger is skipped with this reason, never loaded (intake's function has 1 GB).
pub const MAX_ORIGINAL_BYTES: u64 = 50 * MIB;

const MIB: u64 = 1024 * 1024;

/// MiB of originals and their decoded pixels one process normalizes at once: each make holds
/// its share (`cost_mib`) while it reads and decodes, so concurrency is bounded by bytes, not
/// by a count (eight large PNGs wait their turn instead of passing the function's memory).
const MIB_IN_FLIGHT: u32 = 384;
static IN_FLIGHT: tokio::sync::Semaphore =
    tokio::sync::Semaphore::const_new(MIB_IN_FLIGHT as usize);

/// How much of [`MIB_IN_FLIGHT`] normalizing an original of `size` bytes takes: its bytes and
/// its decoded pixels (4 bytes each, at most the decoder's cap), read from its header when the
/// first bytes hold one, else the cap.
fn cost_mib(size: u64, header: &[u8]) -> u32 {
    use crate::domain::normalize::{dimensions, MAX_DECODED_PIXELS};
    let pixels = dimensions(header)
        .map_or(MAX_DECODED_PIXELS, |(w, h)| u64::from(w) * u64::from(h))
        .min(MAX_DECODED_PIXELS);
    let mib = (size + pixels * 4).div_ceil(MIB);
    u32::try_from(mib)
        .unwrap_or(u32::MAX)
        .clamp(1, MIB_IN_FLIGHT)
}

/// A normalized copy, or why there is none.
#[derive(Debug)]
pub enum NormalizedCopy {
    /// The copy's bytes (an upright JPEG with no metadata) and where it is stored.
    Ready { jpeg: Vec<u8>, uri: S3Uri },
    /// The image is skipped, for this reason (corrupt, a bomb, HEIC, not an image).
    Skipped(String),
    /// The original is not in the uploads bucket.
    Missing,
}

/// Where the copy of `key` normalized to `long_edge` lives; None when that key would pass S3's
/// 1,024 bytes (intake refuses such uploads, `domain::uploads::MAX_UPLOAD_KEY_BYTES`; one
/// stored before that is skipped with a reason, never a crash).
pub fn normalized_uri(deps: &Deps, key: &ObjectKey, long_edge: u32) -> Option<S3Uri> {
    let policy = match deps.settings.image_policy {
        Policy::Whole => "",
        Policy::Economy => "e",
    };
    let copy = ObjectKey::parse(&format!("normalized/{policy}{long_edge}/{key}.jpg")).ok()?;
    Some(S3Uri::object(&deps.settings.uploads_bucket, &copy))
}

/// Why an image has no normalized copy: its key is too long for one.
fn too_long(key: &ObjectKey) -> NormalizedCopy {
    NormalizedCopy::Skipped(
        crate::domain::uploads::key_too_long(key.as_str()).map_or_else(
            || "its key is too long".to_owned(),
            |r| format!("the key {r}"),
        ),
    )
}

/// The copy of `key` normalized to `long_edge`, while the original exists: read if it is
/// there, else made from the original and stored.
pub async fn get_or_make(
    deps: &Deps,
    key: &ObjectKey,
    family: &dyn RecordFamily,
) -> Result<NormalizedCopy, StageError> {
    let long_edge = family.image_long_edge();
    let original = S3Uri::object(&deps.settings.uploads_bucket, key);
    match deps.objects.head(&original, 0).await {
        Ok(_) => {}
        Err(e) if e.kind == ErrorKind::NotFound => return Ok(NormalizedCopy::Missing),
        Err(e) => return Err(e.into()),
    }
    let Some(uri) = normalized_uri(deps, key, long_edge) else {
        return Ok(too_long(key));
    };
    match deps.objects.get(&uri).await {
        Ok(jpeg) => Ok(NormalizedCopy::Ready { jpeg, uri }),
        Err(e) if e.kind == ErrorKind::NotFound => make(deps, key, family).await,
        Err(e) => Err(e.into()),
    }
}

/// Makes the copy of `key` normalized for `family` (its long edge and pixel count) from the
/// original (on the blocking pool: it is CPU work) and stores it, over any older copy.
pub async fn make(
    deps: &Deps,
    key: &ObjectKey,
    family: &dyn RecordFamily,
) -> Result<NormalizedCopy, StageError> {
    let Some(uri) = normalized_uri(deps, key, family.image_long_edge()) else {
        return Ok(too_long(key));
    };
    let original = S3Uri::object(&deps.settings.uploads_bucket, key);
    let (header, size) = match deps.objects.head(&original, 64 * 1024).await {
        Ok(h) => h,
        Err(e) if e.kind == ErrorKind::NotFound => return Ok(NormalizedCopy::Missing),
        Err(e) => return Err(e.into()),
    };
    if size > MAX_ORIGINAL_BYTES {
        return Ok(NormalizedCopy::Skipped(format!(
            "the upload is {size} bytes; images over {MAX_ORIGINAL_BYTES} bytes are not read"
        )));
    }
    let _share = IN_FLIGHT
        .acquire_many(cost_mib(size, &header))
        .await
        .map_err(|e| StageError::Permanent(format!("the normalizing budget is closed: {e}")))?;
    let bytes = match deps.objects.get(&original).await {
        Ok(b) => b,
        Err(e) if e.kind == ErrorKind::NotFound => return Ok(NormalizedCopy::Missing),
        Err(e) => return Err(e.into()),
    };
    let target = Target::for_family(family, deps.settings.image_policy);
    let made = tokio::task::spawn_blocking(move || normalize(&bytes, target)).await;
    // A decoder that panics on a file is the file's fault, like any other corrupt image.
    let Ok(made) = made else {
        return Ok(NormalizedCopy::Skipped(
            "the image could not be decoded".into(),
        ));
    };
    match made {
        Ok(n) => {
            deps.objects.put(&uri, n.jpeg.clone()).await?;
            crate::metrics::count(crate::metrics::IMAGES_NORMALIZED, 1);
            Ok(NormalizedCopy::Ready { jpeg: n.jpeg, uri })
        }
        Err(skip) => Ok(NormalizedCopy::Skipped(skip.to_string())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn when_weighing_an_original_should_count_its_bytes_and_decoded_pixels() {
        // No header to read: the decoder's cap (40 MP x 4 bytes = 152.6 MiB) plus its bytes.
        assert_eq!(cost_mib(MIB, b"not an image"), 154);
        // A tiny PNG: one MiB at least.
        let mut png = Vec::new();
        image::RgbImage::new(64, 48)
            .write_to(&mut std::io::Cursor::new(&mut png), image::ImageFormat::Png)
            .expect("png");
        assert_eq!(cost_mib(png.len() as u64, &png), 1);
        // A 4000x3000 header: 45.8 MiB of pixels and its bytes.
        let mut big = Vec::new();
        image::GrayImage::new(4000, 3000)
            .write_to(&mut std::io::Cursor::new(&mut big), image::ImageFormat::Png)
            .expect("png");
        assert_eq!(cost_mib(big.len() as u64, &big[..64]), 46);
        // Never more than the whole budget, so one image can always run.
        assert_eq!(cost_mib(u64::MAX / 2, b""), MIB_IN_FLIGHT);
    }
}
