//! Re-asks: an answer that failed a receipt check (`needsReview`) is asked again, once, as
//! `REASK_POLICY` says, before its result is stored:
//! - `whole` (the default): the upright whole photo at full size (`Policy::Whole`) instead of
//!   the economy crop, to the same model;
//! - `model:<id>`: the same photo, as the intent's image policy makes it, to a stronger model;
//! - `off`: never.
//!
//! It runs on-demand (InvokeModel, through the model's shared budget, `app::pace`) within the
//! intent's deadline and the call's time ([`BUDGET`] for an ingest), a chunk at a time, and both attempts' tokens count in the intent's cost (`domain::usage`).
//! The result keeps the answer with fewer failed checks, the first on a tie, and holds the
//! other in its `reask` field (`ImageResult::keep_better`).
//!
//! Replay: before asking, the stored results of the flagged records are read; one that was
//! re-asked already (a crash after the re-ask, before the job's end was written) is taken as it
//! is, so a replay asks no second time. A record is re-asked at most once: a result that holds
//! a re-ask is never flagged for another.
//!
//! A family whose batch records reference images in S3 (Nova) is re-asked with the image
//! inline: InvokeModel takes Nova's `source.bytes` as base64 (see `domain::family::nova`).

use crate::app::on_demand::Pending;
use crate::app::{Deps, StageError};
use crate::domain::family::{ImageRef, RecordFamily};
use crate::domain::ids::{IntentId, ObjectKey, RecordId};
use crate::domain::intent::BatchIntent;
use crate::domain::normalize::{normalize, Policy, Target};
use crate::domain::results::ImageResult;
use crate::domain::settings::ReaskPolicy;
use crate::ports::ErrorKind;
use chrono::{DateTime, Utc};
use std::collections::{HashMap, HashSet};

/// How long one ingest may spend asking flagged answers again (the watcher's Lambda runs 15
/// minutes; what is left keeps its first answer, flagged).
pub const BUDGET: chrono::Duration = chrono::Duration::minutes(5);

/// Asks the flagged answers among `results` (of `intent`'s job) again, each result then
/// holding the better answer. `owner` names the intent each record's result is stored under
/// (a shared job's are its members').
pub async fn reask_flagged(
    deps: &Deps,
    intent: &BatchIntent,
    results: &mut [ImageResult],
    (owner, until): (impl Fn(&RecordId) -> IntentId, DateTime<Utc>),
) -> Result<(), StageError> {
    let policy = deps.settings.reask.clone();
    let flagged: Vec<usize> = (0..results.len())
        .filter(|&i| results[i].needs_review == Some(true) && results[i].reask.is_none())
        .collect();
    if policy == ReaskPolicy::Off || flagged.is_empty() {
        return Ok(());
    }
    let done = already_reasked(deps, results, &flagged, owner).await?;
    let mut asked = Vec::new();
    for &i in &flagged {
        match done.get(&results[i].record_id) {
            Some(stored) => results[i] = stored.clone(),
            None => asked.push(i),
        }
    }
    let (model, image_policy) = match &policy {
        ReaskPolicy::Model(id) => (id.clone(), deps.settings.image_policy),
        _ => (intent.model_id.clone(), Policy::Whole),
    };
    let Some(family) = crate::domain::family::for_model_in(&model, &deps.settings.model_families)
    else {
        tracing::warn!(model = %model, "no record builder for the re-ask model; flagged answers kept");
        return Ok(());
    };
    let Some(prompt) = crate::domain::manifest::prompt(&intent.prompt_version) else {
        return Ok(());
    };
    let limits = crate::app::on_demand::Limits {
        deadline: intent.deadline,
        until,
        review: deps.review_of(intent),
    };
    let shape = (family, image_policy, prompt);
    let mut left = asked.len();
    // A chunk at a time, within the call's end: only a chunk's inputs are in memory, and what
    // the call has no time for keeps its first answer, flagged for a person.
    for chunk in asked.chunks(crate::app::on_demand::CHUNK) {
        if deps.clock.now() >= until {
            tracing::warn!(intent_id = %intent.intent_id, left, "no time left to ask the rest again; their first answers stay flagged");
            break;
        }
        let pending = pending_of(deps, shape, results, chunk).await?;
        let answers = crate::app::on_demand::run(deps, &model, pending, &limits).await;
        crate::metrics::count(crate::metrics::RECEIPTS_REASKED, answers.len() as u64);
        let mut by_record: HashMap<RecordId, ImageResult> = answers
            .into_iter()
            .map(|a| (a.record_id.clone(), a))
            .collect();
        for &i in chunk {
            if let Some(answer) = by_record.remove(&results[i].record_id) {
                let first = results[i].clone();
                results[i] = first.keep_better(answer, policy.to_string());
            }
        }
        left -= chunk.len();
    }
    tracing::info!(intent_id = %intent.intent_id, flagged = flagged.len(), asked = asked.len() - left, policy = %policy, "flagged answers asked again");
    Ok(())
}

/// The re-asks of the results at `chunk`, each with its input (an image whose original is
/// gone, or no longer usable, is left out).
async fn pending_of(
    deps: &Deps,
    shape: (&'static dyn RecordFamily, Policy, &'static str),
    results: &[ImageResult],
    chunk: &[usize],
) -> Result<Vec<Pending>, StageError> {
    let mut pending = Vec::new();
    for &i in chunk {
        let r = &results[i];
        if let Some(input) = input_for(deps, shape, &r.image_key, r.image_index).await? {
            pending.push(Pending {
                record_id: r.record_id.clone(),
                index: r.image_index,
                key: r.image_key.clone(),
                model_input: input,
                attempts: 0,
            });
        }
    }
    Ok(pending)
}

/// [`reask_flagged`] for the answers of a job, whose records' owners `records` names.
pub(super) async fn reask_job(
    deps: &Deps,
    intent: &BatchIntent,
    results: &mut [ImageResult],
    (records, until): (&crate::app::job_end::records::JobRecords, DateTime<Utc>),
) -> Result<(), StageError> {
    let owners = records.owners();
    let owner = |rid: &RecordId| {
        owners
            .get(rid)
            .map_or(intent.intent_id.clone(), |o| (*o).clone())
    };
    reask_flagged(deps, intent, results, (owner, until)).await
}

/// The stored results of the flagged records that hold a re-ask already, by record id.
async fn already_reasked(
    deps: &Deps,
    results: &[ImageResult],
    flagged: &[usize],
    owner: impl Fn(&RecordId) -> IntentId,
) -> Result<HashMap<RecordId, ImageResult>, StageError> {
    let wanted: HashSet<&RecordId> = flagged.iter().map(|&i| &results[i].record_id).collect();
    let owners: HashSet<IntentId> = wanted.iter().map(|rid| owner(rid)).collect();
    let mut out = HashMap::new();
    for o in owners {
        for r in crate::app::results::all_results(deps, &o).await? {
            if r.reask.is_some() && wanted.contains(&r.record_id) {
                out.insert(r.record_id.clone(), r);
            }
        }
    }
    Ok(out)
}

/// The re-ask's model input for the image at `key`: its original normalized under
/// `image_policy` and built into `family`'s record, the image inline. None when the original is
/// gone or not usable.
async fn input_for(
    deps: &Deps,
    (family, image_policy, prompt): (&'static dyn RecordFamily, Policy, &'static str),
    key: &ObjectKey,
    index: usize,
) -> Result<Option<serde_json::Value>, StageError> {
    let original = crate::domain::bedrock::S3Uri::object(&deps.settings.uploads_bucket, key);
    let bytes = match deps.objects.get(&original).await {
        Ok(b) => b,
        Err(e) if e.kind == ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e.into()),
    };
    let target = Target::for_family(family, image_policy);
    let max_tokens = deps.settings.max_output_tokens;
    let line = tokio::task::spawn_blocking(move || {
        let n = normalize(&bytes, target).ok()?;
        let media = crate::domain::manifest::check_image(&n.jpeg).ok()?;
        let rid = crate::domain::manifest::image_record_id(index);
        Some(family.record(&rid, media, ImageRef::Bytes(&n.jpeg), prompt, max_tokens))
    })
    .await
    .ok()
    .flatten();
    Ok(line.and_then(|l| crate::app::on_demand::input_of(&l, |_| true).map(|(_, v)| v)))
}
