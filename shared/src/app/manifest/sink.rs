//! Where the manifest builder keeps an intent's images: inline, or streamed to a list.

use crate::app::{Deps, StageError};
use crate::domain::intent::{BatchIntent, ImageEntry};

/// Where the manifest builder keeps the intent's images: in the intent up to
/// [`INLINE_LIST`](crate::domain::intent::INLINE_LIST) entries and
/// [`INLINE_BYTES`](crate::domain::intent::INLINE_BYTES) of keys, else streamed to its list
/// (a sink that passes the bytes on the way moves what it holds to the list).
pub(super) enum ImageSink {
    Inline {
        entries: Vec<ImageEntry>,
        bytes: usize,
        job_id: crate::domain::ids::JobId,
    },
    Listed {
        writer: crate::app::lists::ListWriter,
        uri: crate::domain::bedrock::S3Uri,
        rejected: usize,
    },
}

impl ImageSink {
    pub(super) async fn open(
        deps: &Deps,
        job_id: &crate::domain::ids::JobId,
        expected: usize,
    ) -> Result<Self, StageError> {
        if expected <= crate::domain::intent::INLINE_LIST {
            return Ok(Self::Inline {
                entries: Vec::with_capacity(expected),
                bytes: 0,
                job_id: job_id.clone(),
            });
        }
        Self::listed(deps, job_id).await
    }

    async fn listed(deps: &Deps, job_id: &crate::domain::ids::JobId) -> Result<Self, StageError> {
        let uri = crate::app::lists::list_uri(deps, job_id, "images");
        Ok(Self::Listed {
            writer: crate::app::lists::ListWriter::open(deps, &uri).await?,
            uri,
            rejected: 0,
        })
    }

    pub(super) async fn push(&mut self, deps: &Deps, entry: ImageEntry) -> Result<(), StageError> {
        match self {
            Self::Inline {
                entries,
                bytes,
                job_id,
            } => {
                *bytes += entry.key.as_str().len();
                entries.push(entry);
                if *bytes <= crate::domain::intent::INLINE_BYTES {
                    return Ok(());
                }
                // Too many bytes to keep in the item: everything so far goes to the list.
                let held = std::mem::take(entries);
                *self = Self::listed(deps, &job_id.clone()).await?;
                for e in held {
                    Box::pin(self.push(deps, e)).await?;
                }
                Ok(())
            }
            Self::Listed {
                writer, rejected, ..
            } => {
                *rejected += usize::from(entry.rejected.is_some());
                writer.push(&entry).await
            }
        }
    }

    pub(super) async fn abort(self) {
        if let Self::Listed { writer, .. } = self {
            writer.abort().await;
        }
    }

    /// The images to keep in the intent (none when listed; the intent then names the list).
    pub(super) async fn finish(
        self,
        intent: &mut BatchIntent,
    ) -> Result<Vec<ImageEntry>, StageError> {
        match self {
            Self::Inline { entries, .. } => Ok(entries),
            Self::Listed {
                writer,
                uri,
                rejected,
            } => {
                let count = writer.count;
                writer.finish().await?;
                intent.image_list = Some(crate::domain::intent::ImageList {
                    uri,
                    count,
                    rejected,
                });
                Ok(Vec::new())
            }
        }
    }
}
