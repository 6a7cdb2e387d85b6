//! Manifest builder: resolve the intent's images, turn each into one JSONL record, split the
//! records into parts and jobs under the quotas, write the parts, and move the intent to
//! MANIFEST_READY.
//!
//! Replay: record ids and part keys are derived from the intent, so a replay rewrites the
//! same objects with the same bytes; once the intent is past REQUESTED a replay writes
//! nothing (it only takes over an orphaned outbox).

use crate::app::outbox::{save, take_over, Saved};
use crate::app::{cas_loop, lost_races, Cas, Deps, Outcome, StageError};
use crate::domain::bedrock::S3Uri;
use crate::domain::family::{self, ImageRef, RecordFamily};
use crate::domain::ids::{IntentId, ObjectKey, RecordId};
use crate::domain::intent::{BatchIntent, ImageEntry, ImageSelection};
use crate::domain::manifest::{image_record_id, prompt};
use crate::domain::results::ImageResult;
use crate::domain::status::IntentStatus;
use crate::ports::{ErrorKind, PortError};
use futures::stream::{self, StreamExt};

mod prepare;
pub(crate) mod rerun;
mod shared;
mod sink;
mod writer;

use prepare::{prepare, Prepared};
use shared::build_shared;
pub use shared::record_map_uri;
use sink::ImageSink;
use writer::ManifestWriter;

/// How many images are fetched (and normalized, if not yet) at once.
const FETCH_CONCURRENCY: usize = 8;

#[tracing::instrument(skip_all, fields(intent_id = %intent_id, job_id = %crate::domain::ids::JobId::for_intent(intent_id)))]
pub async fn build_manifest(deps: &Deps, intent_id: &IntentId) -> Result<Outcome, StageError> {
    cas_loop((), move |()| async move {
        let Some(intent) = deps.store.get(intent_id).await? else {
            return Ok(Cas::Done(Outcome::Unknown(format!("no intent {intent_id}"))));
        };
        if intent.status != IntentStatus::Requested {
            take_over(deps, &intent).await?;
            return Ok(Cas::Done(Outcome::AlreadyDone));
        }
        let expected = intent.version;
        let since = intent.updated_at;
        let next = plan_and_write(deps, intent).await?;
        match save(deps, next, expected).await? {
            Saved::Written(i) => {
                crate::metrics::stage_time(i.status, since, deps.clock.now());
                tracing::info!(job_id = %i.job_id, status = %i.status, jobs = i.jobs.len(), "manifest written");
                Ok(Cas::Done(Outcome::Advanced(i.status)))
            }
            Saved::Stale(_) => Ok(Cas::Again(())),
        }
    })
    .await?
    .ok_or_else(|| lost_races("manifest save"))
}

/// Builds every part and writes it; returns the intent as it should be stored next.
async fn plan_and_write(deps: &Deps, mut intent: BatchIntent) -> Result<BatchIntent, StageError> {
    let now = deps.clock.now();
    let Some(family) = family::for_model_in(&intent.model_id, &deps.settings.model_families) else {
        intent.fail(
            format!("model {} has no record builder", intent.model_id),
            now,
        )?;
        return Ok(intent);
    };
    let Some(prompt_text) = prompt(&intent.prompt_version) else {
        intent.fail(
            format!("unknown prompt version {}", intent.prompt_version),
            now,
        )?;
        return Ok(intent);
    };
    if let ImageSelection::Pool { .. } = &intent.selection {
        let members = crate::app::lists::members(deps, &intent).await?;
        return build_shared(deps, intent, family, &members).await;
    }
    // A day's uploads have no cap of ours: the images list moves out of the intent item
    // past INLINE_LIST, and the records split into as many jobs as Bedrock's quotas need.
    let (keys, expected) = match &intent.selection {
        ImageSelection::Day(day) => {
            let keys = crate::app::uploads::resolve_day(deps, &intent.user_id, *day).await?;
            let n = keys.len();
            (stream::iter(keys.into_iter().map(Ok)).boxed(), n)
        }
        other => (
            crate::app::lists::keys(deps, other).await?,
            other.len_hint(),
        ),
    };
    if expected == 0 {
        intent.fail("no images found for this request".into(), now)?;
        return Ok(intent);
    }
    let recipe = Recipe {
        family,
        prompt_text,
    };
    // With a deadline, the part batch cannot answer in time runs on-demand from the start
    // (an intent that will pool is planned by the pool instead).
    let split = crate::app::deadline::plan(deps, &intent, expected as u64).await?;
    intent.estimated_completion = Some(split.estimated_completion);
    let runs_alone = expected as u64 >= deps.settings.pool_threshold(&intent.model_id);
    let cut = (runs_alone && split.on_demand_records > 0).then_some(split.batch_records);
    if let Some(batch) = cut {
        tracing::info!(intent_id = %intent.intent_id, batch, on_demand = split.on_demand_records, "batch cannot answer every record by the deadline; the rest runs on-demand");
    }
    let written = write_records(deps, &intent, recipe, keys, expected, cut).await?;
    record_written(deps, intent, family, written).await
}

/// What every record of an intent is built with.
#[derive(Clone, Copy)]
struct Recipe {
    family: &'static dyn RecordFamily,
    prompt_text: &'static str,
}

/// What [`write_records`] wrote: the parts and jobs, the image entries, and the rejected
/// images' results.
struct Written<'d> {
    out: ManifestWriter<'d>,
    images: ImageSink,
    skipped: Vec<ImageResult>,
    /// Images that are exact copies of earlier ones (their entries name the first).
    duplicates: u64,
}

/// Fetches, checks and encodes the images `FETCH_CONCURRENCY` at a time, ahead of the writer,
/// keeping the client's order (it fixes the record ids), and writes each record as it comes:
/// at most `FETCH_CONCURRENCY` images and one part's upload buffer are in memory, whatever the
/// intent's size.
async fn write_records<'d>(
    deps: &'d Deps,
    intent: &BatchIntent,
    recipe: Recipe,
    keys: futures::stream::BoxStream<'_, Result<ObjectKey, StageError>>,
    expected: usize,
    cut: Option<u64>,
) -> Result<Written<'d>, StageError> {
    let job_id = &intent.job_id;
    let dups = &crate::app::duplicates::Checker::open(deps, intent).await?;
    let mut fetched = keys
        .enumerate()
        .map(|(index, key)| async move {
            let key = key?;
            let record_id = RecordId::for_image(job_id, index);
            let recipe_of = (recipe.family, recipe.prompt_text);
            let image = (index, &key, &record_id);
            let (src, prepared, digest) = prepare(deps, recipe_of, (intent, dups), image).await?;
            Ok::<_, StageError>((index, key, src, record_id, (prepared, digest)))
        })
        .buffered(FETCH_CONCURRENCY);
    let mut w = Written {
        out: ManifestWriter::new(deps, job_id, &intent.model_id, expected as u64).with_cut(cut),
        images: ImageSink::open(deps, job_id, expected).await?,
        skipped: Vec::new(),
        duplicates: 0,
    };
    while let Some(item) = fetched.next().await {
        let step = match item {
            Ok((index, key, src, record_id, (prepared, digest))) => {
                match in_order(
                    deps,
                    (intent, dups),
                    (index, &key, &record_id),
                    (prepared, digest),
                )
                .await
                {
                    Ok(prepared) => {
                        w.accept(deps, recipe, (index, key, src, record_id), prepared)
                            .await
                    }
                    Err(e) => Err(e),
                }
            }
            Err(e) => Err(e),
        };
        if let Err(e) = step {
            w.out.abort().await;
            w.images.abort().await;
            return Err(e);
        }
    }
    Ok(w)
}

/// A prepared image's final place in the build's order (`app::duplicates::Checker::settle`):
/// one whose digest an earlier image of the request placed becomes a copy of that one.
async fn in_order(
    deps: &Deps,
    (intent, dups): (&BatchIntent, &crate::app::duplicates::Checker),
    image: (usize, &ObjectKey, &RecordId),
    (prepared, (digest, perceptual)): (Prepared, prepare::Hashes),
) -> Result<Prepared, StageError> {
    use crate::app::duplicates::{Checked, Verdict};
    let verdict = match &prepared {
        Prepared::Copy(first) => Verdict::Copy(first.clone()),
        _ => Verdict::First,
    };
    let checked = Checked {
        digest,
        perceptual,
        verdict,
    };
    Ok(match dups.settle(deps, intent, image, checked).await? {
        Verdict::Copy(first) => Prepared::Copy(first),
        Verdict::First => prepared,
    })
}

impl Written<'_> {
    /// Places one prepared image and keeps its entry: a record, a rejected image (with its
    /// `skipped` result), or a copy of an earlier image (answered from it, never sent).
    async fn accept(
        &mut self,
        deps: &Deps,
        recipe: Recipe,
        (index, key, src, record_id): (usize, ObjectKey, S3Uri, RecordId),
        prepared: Prepared,
    ) -> Result<(), StageError> {
        let mut entry = ImageEntry {
            index,
            key,
            record_id,
            rejected: None,
            duplicate_of: None,
        };
        if let Prepared::Copy(first) = prepared {
            self.duplicates += 1;
            entry.rejected = Some(format!("an exact copy of {}", first.image_key));
            entry.duplicate_of = Some(first);
            return self.images.push(deps, entry).await;
        }
        let image = (index, &src, &entry.record_id);
        entry.rejected = self.place(deps, recipe, image, prepared).await?;
        if let Some(reason) = &entry.rejected {
            let (rid, key) = (entry.record_id.clone(), entry.key.clone());
            self.skipped
                .push(ImageResult::skipped(rid, index, key, reason));
        }
        self.images.push(deps, entry).await
    }

    /// Writes one prepared image's record; `Some(reason)` if it was rejected instead.
    async fn place(
        &mut self,
        deps: &Deps,
        recipe: Recipe,
        (index, src, record_id): (usize, &S3Uri, &RecordId),
        prepared: Prepared,
    ) -> Result<Option<String>, StageError> {
        match prepared {
            Prepared::Line(line) => self.out.push(line.as_bytes()).await?,
            Prepared::Failed(why) => {
                return Err(StageError::Retryable(PortError::new(
                    ErrorKind::Unexpected,
                    format!("encoding record {record_id} failed: {why}"),
                )))
            }
            Prepared::Located(media) => {
                // Bedrock's same-folder rule: the image must sit in the folder the job reads.
                // Job folders have fixed-width names, so the record's length (and so its
                // place) does not depend on which job it lands in.
                let build = |dest: &S3Uri| {
                    recipe.family.record(
                        &image_record_id(index),
                        media,
                        ImageRef::S3(dest),
                        recipe.prompt_text,
                        deps.settings.max_output_tokens,
                    )
                };
                let name = format!("images/{index:06}.{}", media.ext());
                let probe = build(&self.out.next_input(0).join(&name));
                let dest = self.out.next_input(probe.len() as u64).join(&name);
                deps.objects.copy(src, &dest).await?;
                self.out.push(build(&dest).as_bytes()).await?;
            }
            Prepared::Rejected(reason) => return Ok(Some(reason)),
            Prepared::Copy(first) => {
                return Ok(Some(format!("an exact copy of {}", first.image_key)))
            }
        }
        Ok(None)
    }
}

/// Closes the parts and jobs, stores the rejected images' results, and moves the intent on:
/// MANIFEST_READY with jobs of its own, POOLED below the pooling threshold, FAILED if every
/// image was rejected.
async fn record_written(
    deps: &Deps,
    mut intent: BatchIntent,
    family: &'static dyn RecordFamily,
    written: Written<'_>,
) -> Result<BatchIntent, StageError> {
    let now = deps.clock.now();
    let Written {
        out,
        images,
        skipped,
        duplicates,
    } = written;
    intent.duplicates = duplicates;
    let accepted = out.records();
    // An intent with jobs of its own pads a short last job; a pooled one's records are
    // re-read into a shared job, which pads its own.
    let own = deps
        .settings
        .runs_alone(&intent.model_id, accepted, out.splitter.bytes);
    let mut jobs = out.finish(own.then_some(family)).await?;
    let min = deps
        .settings
        .quotas_for(&intent.model_id)
        .min_records_per_job;
    for job in &mut jobs {
        // A pooled intent's parts are read into a shared job; and a batch share that rejected
        // images left below Bedrock's minimum runs on-demand too.
        job.on_demand = own && (job.on_demand || job.records() < min);
    }
    let images = images.finish(&mut intent).await?;
    if !skipped.is_empty() {
        crate::app::results::put_own(deps, &intent.intent_id, &skipped).await?;
    }
    if jobs.is_empty() && duplicates > 0 {
        // Every image it sends is a copy of an earlier one: nothing to run.
        intent.images = images;
        intent.complete_without_jobs(now)?;
    } else if jobs.is_empty() {
        intent.images = images;
        intent.fail(
            "every image was rejected; see the per-image results".into(),
            now,
        )?;
    } else if !own {
        // Too small for a job of its own (below the job minimum, or below the configured
        // pooling threshold): the parts just written wait in the model's pool (the
        // reconciler seals pools, see `pool.rs`).
        crate::metrics::count(crate::metrics::INTENTS_POOLED, 1);
        intent.record_pooled(images, jobs, now)?;
    } else {
        intent.record_manifest(images, jobs, now)?;
    }
    Ok(intent)
}
