//! The uploads index: what was uploaded, and a day's keys (the nightly run that makes a
//! day's intents is `app::nightly`).
//!
//! - **Indexing**: every S3 "Object Created" event of the uploads bucket (an intake source)
//!   records (userId, day, key, size, etag). Recording is an upsert, so a duplicated or
//!   replayed event changes nothing. Keys outside `uploads/{userId}/{day}/` are not receipts:
//!   they are logged and ignored, never retried.
//! - **Resolving a day**: the manifest builder asks the index; when it has nothing for the
//!   (user, day) (uploads from before the index existed), it lists the prefix in shards, in
//!   parallel, instead of one serial page walk.

use crate::app::{Deps, StageError};
use crate::domain::ids::{BucketName, ObjectKey, UserId};
use crate::domain::intent::user_upload_prefix;
use crate::domain::manifest::DEFAULT_PROMPT_VERSION;
use crate::domain::uploads::Upload;
use crate::ports::PortError;
use chrono::NaiveDate;
use futures::stream::{self, StreamExt};

/// What indexing one object did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Indexed {
    Recorded(Upload),
    /// Not an upload of ours (another bucket, or a key outside the layout).
    Ignored(String),
}

pub async fn index_object_created(
    deps: &Deps,
    bucket: &str,
    key: &str,
    size: u64,
    etag: &str,
) -> Result<Indexed, StageError> {
    if bucket != deps.settings.uploads_bucket.as_str() {
        return Ok(Indexed::Ignored(format!(
            "bucket {bucket} is not the uploads bucket"
        )));
    }
    let upload = match Upload::from_key(key, size, etag) {
        Ok(u) => u,
        Err(e) => return Ok(Indexed::Ignored(e.rule)),
    };
    deps.uploads.record(&upload).await?;
    tracing::info!(user_id = %upload.user_id, day = %upload.day, key = %upload.key, "upload indexed");
    let upload = match normalize_at_upload(deps, &upload.key).await? {
        Some(digest) => {
            // With its digest, so a request's estimate knows its copies (`app::duplicates`).
            let upload = Upload {
                digest: Some(digest),
                ..upload
            };
            deps.uploads.record(&upload).await?;
            upload
        }
        None => upload,
    };
    Ok(Indexed::Recorded(upload))
}

/// Normalizes a new upload for the default model's family (see `app::normalized`), so the
/// nightly manifest reads a small, upright copy; the copy's digest for the default model and
/// prompt. An image that cannot be normalized is only logged here: its request skips it with
/// the reason.
async fn normalize_at_upload(deps: &Deps, key: &ObjectKey) -> Result<Option<String>, StageError> {
    let settings = &deps.settings;
    let Some(model) = settings.default_model() else {
        return Ok(None);
    };
    let Some(family) = crate::domain::family::for_model_in(model, &settings.model_families) else {
        return Ok(None);
    };
    // Always from the original: a re-upload under the same key replaces its copy.
    match crate::app::normalized::make(deps, key, family).await? {
        crate::app::normalized::NormalizedCopy::Skipped(reason) => {
            tracing::warn!(key = %key, reason, "upload cannot be normalized; requests will skip it");
        }
        crate::app::normalized::NormalizedCopy::Missing => {
            tracing::info!(key = %key, "upload deleted before it was normalized");
        }
        crate::app::normalized::NormalizedCopy::Ready { jpeg, .. } => {
            let digest = crate::domain::duplicates::digest(model, DEFAULT_PROMPT_VERSION, &jpeg);
            return Ok(Some(digest));
        }
    }
    Ok(None)
}

/// The keys of a user's day: from the index, else a sharded listing of the prefix.
pub async fn resolve_day(
    deps: &Deps,
    user: &UserId,
    day: NaiveDate,
) -> Result<Vec<ObjectKey>, StageError> {
    let indexed = deps.uploads.uploads(user, day).await?;
    if !indexed.is_empty() {
        return Ok(indexed.into_iter().map(|u| u.key).collect());
    }
    let prefix = format!("{}{}/", user_upload_prefix(user), day.format("%Y-%m-%d"));
    Ok(list_sharded(deps, &deps.settings.uploads_bucket, &prefix).await?)
}

/// Shard boundaries: the first character of the name after the prefix. Shard i holds the
/// keys after boundary i-1 and up to boundary i, so every key is in exactly one shard.
const SHARD_BOUNDARIES: &[&str] = &[
    "0", "4", "8", "C", "G", "K", "O", "S", "W", "c", "g", "k", "o", "s", "w",
];

/// Shards listed at once.
const LIST_CONCURRENCY: usize = 8;

/// Lists `prefix` as parallel range walks; the keys come back in key order.
pub async fn list_sharded(
    deps: &Deps,
    bucket: &BucketName,
    prefix: &str,
) -> Result<Vec<ObjectKey>, PortError> {
    let bounds: Vec<String> = SHARD_BOUNDARIES
        .iter()
        .map(|b| format!("{prefix}{b}"))
        .collect();
    let ranges: Vec<(Option<String>, Option<String>)> = (0..=bounds.len())
        .map(|i| {
            (
                i.checked_sub(1).map(|j| bounds[j].clone()),
                bounds.get(i).cloned(),
            )
        })
        .collect();
    let shards: Vec<Result<Vec<ObjectKey>, PortError>> = stream::iter(ranges)
        .map(|(after, through)| async move {
            deps.objects
                .list_range(bucket, prefix, after.as_deref(), through.as_deref())
                .await
        })
        .buffered(LIST_CONCURRENCY)
        .collect()
        .await;
    let mut keys = Vec::new();
    for shard in shards {
        keys.extend(shard?);
    }
    Ok(keys)
}
