//! One image made ready for the writer: normalized, checked and (inline families) encoded.

use crate::app::duplicates::Verdict;
use crate::app::normalized::NormalizedCopy;
use crate::app::{Deps, StageError};
use crate::domain::family::{ImageRef, ImageSource, RecordFamily};
use crate::domain::manifest::{check_image, image_record_id};

/// One image, normalized (see `app::normalized`), checked, held against the user's earlier
/// images (`app::duplicates`), and for an inline family encoded into its record: where its
/// normalized copy is, and what the writer does with it.
pub(super) async fn prepare(
    deps: &Deps,
    (family, prompt_text): (&'static dyn RecordFamily, &'static str),
    (intent, dups): (
        &crate::domain::intent::BatchIntent,
        &crate::app::duplicates::Checker,
    ),
    (index, key, record_id): (
        usize,
        &crate::domain::ids::ObjectKey,
        &crate::domain::ids::RecordId,
    ),
) -> Result<(crate::domain::bedrock::S3Uri, Prepared, Hashes), StageError> {
    let original = crate::domain::bedrock::S3Uri::object(&deps.settings.uploads_bucket, key);
    let (jpeg, uri) = match crate::app::normalized::get_or_make(deps, key, family).await? {
        NormalizedCopy::Ready { jpeg, uri } => (jpeg, uri),
        NormalizedCopy::Skipped(reason) => {
            return Ok((original, Prepared::Rejected(reason), (None, None)))
        }
        NormalizedCopy::Missing => {
            let why = "not found in the uploads bucket".to_string();
            return Ok((original, Prepared::Rejected(why), (None, None)));
        }
    };
    // Bedrock's limits apply to what it is sent: the normalized copy.
    let media = match check_image(&jpeg) {
        Ok(m) => m,
        Err(reason) => return Ok((uri, Prepared::Rejected(reason), (None, None))),
    };
    let image = (index, key, record_id);
    let checked = dups.check(deps, intent, image, &jpeg).await?;
    let digest = (checked.digest, checked.perceptual);
    if let Verdict::Copy(first) = checked.verdict {
        return Ok((uri, Prepared::Copy(first), digest));
    }
    if family.image_source() == ImageSource::S3Location {
        return Ok((uri, Prepared::Located(media), digest));
    }
    // Encoding is CPU work: on the blocking pool it runs beside the writer (and other
    // encodes) instead of between its writes.
    let rid = image_record_id(index);
    let max_tokens = deps.settings.max_output_tokens;
    let encoded = tokio::task::spawn_blocking(move || {
        family.record(&rid, media, ImageRef::Bytes(&jpeg), prompt_text, max_tokens)
    })
    .await;
    Ok((
        uri,
        match encoded {
            Ok(line) => Prepared::Line(line),
            Err(e) => Prepared::Failed(e.to_string()),
        },
        digest,
    ))
}

/// An image's digest and perceptual hash (`app::duplicates`), when they were looked for.
pub(super) type Hashes = (Option<String>, Option<String>);

/// One image, ready for the writer.
pub(super) enum Prepared {
    /// Its record line (inline families).
    Line(String),
    /// Checked; its record is built once its job folder is known (S3Location families).
    Located(crate::domain::manifest::MediaType),
    /// Why it is not in the manifest.
    Rejected(String),
    /// An exact copy of this earlier image: answered from it (`app::duplicates`).
    Copy(crate::domain::duplicates::FirstCopy),
    /// The encoding task died (a panic): retry the message.
    Failed(String),
}
