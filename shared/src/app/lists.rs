//! Long lists kept outside the intent item: a request's keys, an intent's images and a shared
//! job's members each live in a JSON-lines object beside the manifests once they pass
//! [`INLINE_LIST`] entries, so an intent item stays small whatever the request's size
//! (DynamoDB holds 400 KB an item). Every list's key is derived from its intent, so a replay
//! writes the same object with the same bytes.
//!
//! - `manifests/{jobId}/lists/keys-{payload hash}.jsonl`: a request's keys, written by intake
//!   before the intent (a retry with another payload writes another object, never this one);
//! - `manifests/{jobId}/lists/images.jsonl`: the images the manifest builder resolved;
//! - `manifests/{jobId}/lists/members.jsonl`: a shared job's members, written before its intent.

use crate::app::{Deps, StageError};
use crate::domain::bedrock::S3Uri;
use crate::domain::ids::{JobId, ObjectKey};
use crate::domain::intent::{
    BatchIntent, ImageEntry, ImageSelection, PoolMember, INLINE_BYTES, INLINE_LIST,
};
use crate::ports::ObjectWriter;
use futures::stream::{self, BoxStream, StreamExt};
use serde::de::DeserializeOwned;
use serde::Serialize;

/// Where list `name` of job `job_id` lives.
pub fn list_uri(deps: &Deps, job_id: &JobId, name: &str) -> S3Uri {
    S3Uri::object(
        &deps.settings.manifests_bucket,
        &ObjectKey::parse(&format!("manifests/{job_id}/lists/{name}.jsonl"))
            .unwrap_or_else(|e| unreachable!("a derived key is valid: {e}")),
    )
}

/// Writes `items` as a JSON-lines object, streaming (never the whole list as one buffer).
pub async fn put<T: Serialize>(deps: &Deps, uri: &S3Uri, items: &[T]) -> Result<(), StageError> {
    let mut w = ListWriter::open(deps, uri).await?;
    for item in items {
        if let Err(e) = w.push(item).await {
            w.abort().await;
            return Err(e);
        }
    }
    w.finish().await
}

/// Reads a JSON-lines list whole.
pub async fn get<T: DeserializeOwned + Send + 'static>(
    deps: &Deps,
    uri: &S3Uri,
) -> Result<Vec<T>, StageError> {
    let mut out = Vec::new();
    let mut items = read(deps, uri).await?;
    while let Some(item) = items.next().await {
        out.push(item?);
    }
    Ok(out)
}

/// Reads a JSON-lines list an entry at a time.
pub async fn read<T: DeserializeOwned + Send + 'static>(
    deps: &Deps,
    uri: &S3Uri,
) -> Result<BoxStream<'static, Result<T, StageError>>, StageError> {
    let name = uri.to_string();
    let lines = deps.objects.lines(uri).await?;
    Ok(lines
        .filter_map(move |line| {
            let name = name.clone();
            async move {
                match line {
                    Ok(l) if l.trim().is_empty() => None,
                    Ok(l) => Some(serde_json::from_str(&l).map_err(|e| {
                        StageError::Permanent(format!("list {name} has a bad line: {e}"))
                    })),
                    Err(e) => Some(Err(e.into())),
                }
            }
        })
        .boxed())
}

/// An intent's images, wherever they are kept.
pub async fn images(deps: &Deps, intent: &BatchIntent) -> Result<Vec<ImageEntry>, StageError> {
    match &intent.image_list {
        Some(list) => get(deps, &list.uri).await,
        None => Ok(intent.images.clone()),
    }
}

/// A shared job's members, wherever they are kept (none for any other intent).
pub async fn members(deps: &Deps, intent: &BatchIntent) -> Result<Vec<PoolMember>, StageError> {
    match &intent.selection {
        ImageSelection::Pool {
            member_list: Some(uri),
            ..
        } => get(deps, uri).await,
        ImageSelection::Pool { members, .. } => Ok(members.clone()),
        _ => Ok(Vec::new()),
    }
}

/// The explicit keys of a request, kept inline or in a list, an entry at a time.
pub async fn keys(
    deps: &Deps,
    selection: &ImageSelection,
) -> Result<BoxStream<'static, Result<ObjectKey, StageError>>, StageError> {
    match selection {
        ImageSelection::Keys(keys) => Ok(stream::iter(keys.clone().into_iter().map(Ok)).boxed()),
        ImageSelection::KeyList { list, .. } => read(deps, list).await,
        _ => Ok(stream::empty().boxed()),
    }
}

/// A request's keys: inline up to [`INLINE_LIST`] keys and [`INLINE_BYTES`], else written to their list (before the
/// intent, so an intent never names a list that is not there).
pub async fn keep_keys(
    deps: &Deps,
    job_id: &JobId,
    payload_hash: &str,
    selection: ImageSelection,
) -> Result<ImageSelection, StageError> {
    match selection {
        ImageSelection::Keys(keys)
            if keys.len() > INLINE_LIST
                || keys.iter().map(|k| k.as_str().len()).sum::<usize>() > INLINE_BYTES =>
        {
            let hash = payload_hash.get(..16).unwrap_or(payload_hash);
            let list = list_uri(deps, job_id, &format!("keys-{hash}"));
            put(deps, &list, &keys).await?;
            Ok(ImageSelection::KeyList {
                list,
                count: keys.len(),
            })
        }
        other => Ok(other),
    }
}

/// Streams JSON lines into one object.
pub struct ListWriter {
    writer: Box<dyn ObjectWriter>,
    line: Vec<u8>,
    pub count: usize,
}

impl ListWriter {
    pub async fn open(deps: &Deps, uri: &S3Uri) -> Result<Self, StageError> {
        Ok(Self {
            writer: deps.objects.writer(uri).await?,
            line: Vec::new(),
            count: 0,
        })
    }

    pub async fn push<T: Serialize>(&mut self, item: &T) -> Result<(), StageError> {
        self.line.clear();
        serde_json::to_writer(&mut self.line, item)
            .map_err(|e| StageError::Permanent(format!("cannot encode a list entry: {e}")))?;
        self.line.push(b'\n');
        self.writer.write(&self.line).await?;
        self.count += 1;
        Ok(())
    }

    pub async fn finish(self) -> Result<(), StageError> {
        self.writer.finish().await?;
        Ok(())
    }

    pub async fn abort(self) {
        self.writer.abort().await;
    }
}
