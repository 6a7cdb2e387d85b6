//! Where the manifest builder keeps an intent's images: inline, or streamed to a list.

use super::super::{Deps, StageError};
use crate::domain::intent::{BatchIntent, ImageEntry};

/// Where the manifest builder keeps the intent's images: in the intent up to
/// [`INLINE_LIST`](crate::domain::intent::INLINE_LIST), else streamed to its list.
pub(super) enum ImageSink {
    Inline(Vec<ImageEntry>),
    Listed {
        writer: super::super::lists::ListWriter,
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
            return Ok(Self::Inline(Vec::with_capacity(expected)));
        }
        let uri = super::super::lists::list_uri(deps, job_id, "images");
        Ok(Self::Listed {
            writer: super::super::lists::ListWriter::open(deps, &uri).await?,
            uri,
            rejected: 0,
        })
    }

    pub(super) async fn push(&mut self, entry: ImageEntry) -> Result<(), StageError> {
        match self {
            Self::Inline(v) => {
                v.push(entry);
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
            Self::Inline(v) => Ok(v),
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
