//! Where normalized images live, and making one when it is missing. Every uploaded image is
//! normalized once (`domain::normalize`): at upload, on its uploads-index event, for the
//! default model's family; and by the manifest builder for anything not normalized yet (an
//! image uploaded before this existed, or a family of another size).
//!
//! The copy's key is derived from the original's and the size, in the uploads bucket:
//! `normalized/{long edge}/{original key}.jpg` (outside `uploads/`, so writing it raises no
//! upload event). Normalizing is deterministic, so a replay (a redelivered event, a second
//! manifest build) writes the same bytes to the same key; the original is never changed. A
//! re-upload under the same key raises a new event, which makes the copy again from the new
//! original ([`make`], never the cached copy). The manifest builder uses a copy only while its
//! original is still there: a deleted upload is `not found`, as it was before copies existed.

use super::{Deps, StageError};
use crate::domain::bedrock::S3Uri;
use crate::domain::ids::ObjectKey;
use crate::domain::normalize::{normalize, Target, QUALITY};
use crate::ports::ErrorKind;

/// A normalized copy, or why there is none.
#[derive(Debug)]
pub enum Got {
    /// The copy's bytes (an upright JPEG with no metadata) and where it is stored.
    Ready { jpeg: Vec<u8>, uri: S3Uri },
    /// The image is skipped, for this reason (corrupt, a bomb, HEIC, not an image).
    Skipped(String),
    /// The original is not in the uploads bucket.
    Missing,
}

/// Where the copy of `key` normalized to `long_edge` lives.
pub fn normalized_uri(deps: &Deps, key: &ObjectKey, long_edge: u32) -> S3Uri {
    S3Uri::object(
        &deps.settings.uploads_bucket,
        &ObjectKey::parse(&format!("normalized/{long_edge}/{key}.jpg"))
            .unwrap_or_else(|e| unreachable!("a derived key is valid: {e}")),
    )
}

/// The copy of `key` normalized to `long_edge`, while the original exists: read if it is
/// there, else made from the original and stored.
pub async fn get_or_make(deps: &Deps, key: &ObjectKey, long_edge: u32) -> Result<Got, StageError> {
    let original = S3Uri::object(&deps.settings.uploads_bucket, key);
    match deps.objects.head(&original, 0).await {
        Ok(_) => {}
        Err(e) if e.kind == ErrorKind::NotFound => return Ok(Got::Missing),
        Err(e) => return Err(e.into()),
    }
    let uri = normalized_uri(deps, key, long_edge);
    match deps.objects.get(&uri).await {
        Ok(jpeg) => Ok(Got::Ready { jpeg, uri }),
        Err(e) if e.kind == ErrorKind::NotFound => make(deps, key, long_edge).await,
        Err(e) => Err(e.into()),
    }
}

/// Makes the copy of `key` normalized to `long_edge` from the original (on the blocking pool:
/// it is CPU work) and stores it, over any older copy.
pub async fn make(deps: &Deps, key: &ObjectKey, long_edge: u32) -> Result<Got, StageError> {
    let uri = normalized_uri(deps, key, long_edge);
    let original = S3Uri::object(&deps.settings.uploads_bucket, key);
    let bytes = match deps.objects.get(&original).await {
        Ok(b) => b,
        Err(e) if e.kind == ErrorKind::NotFound => return Ok(Got::Missing),
        Err(e) => return Err(e.into()),
    };
    let target = Target {
        long_edge,
        quality: QUALITY,
    };
    let made = tokio::task::spawn_blocking(move || normalize(&bytes, target)).await;
    // A decoder that panics on a file is the file's fault, like any other corrupt image.
    let Ok(made) = made else {
        return Ok(Got::Skipped("the image could not be decoded".into()));
    };
    match made {
        Ok(n) => {
            deps.objects.put(&uri, n.jpeg.clone()).await?;
            crate::metrics::count(crate::metrics::IMAGES_NORMALIZED, 1);
            Ok(Got::Ready { jpeg: n.jpeg, uri })
        }
        Err(skip) => Ok(Got::Skipped(skip.to_string())),
    }
}
