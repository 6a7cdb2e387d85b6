//! A shared job's members: its results routed to each (the watcher, a re-run and an
//! on-demand job call [`route_to_members`]), and at its end each member counted from its own
//! results and moved from POOLED to its end.

use crate::app::outbox::{save, Saved};
use crate::app::{cas_loop, lost_races, Cas, Deps, StageError};
use crate::domain::bedrock::ManifestSummary;
use crate::domain::ids::{IntentId, JobId, RecordId};
use crate::domain::intent::BatchIntent;
use crate::domain::results::{ImageResult, ResultStatus};
use crate::domain::status::IntentStatus;
use std::collections::{HashMap, HashSet};

/// Ends every member of a finished shared job (idempotent: an ended member is left as is).
pub async fn finish_members(deps: &Deps, shared: &BatchIntent) -> Result<(), StageError> {
    for member in crate::app::lists::members(deps, shared).await? {
        finish_member(deps, &member.intent_id, Some(shared)).await?;
    }
    Ok(())
}

/// Counts one member's results and moves it from POOLED to its end. `shared` is the job it
/// ran in (None: it ran on-demand).
pub(super) async fn finish_member(
    deps: &Deps,
    member: &IntentId,
    shared: Option<&BatchIntent>,
) -> Result<(), StageError> {
    cas_loop((), move |()| async move {
        let Some(m) = deps.store.get(member).await? else {
            return Ok(Cas::Done(()));
        };
        if m.status != IntentStatus::Pooled {
            return Ok(Cas::Done(()));
        }
        let held = m.pool.as_ref().and_then(|p| p.sealed_into.as_ref());
        if shared.is_some_and(|s| held != Some(&s.intent_id)) {
            return Ok(Cas::Done(())); // planned for this job but never claimed by it
        }
        let records = m.pool.as_ref().map_or(0, |p| p.records);
        let counts = member_counts(records, &all_results(deps, member).await?);
        let (status, failure) = member_end(&counts, shared);
        let expected = m.version;
        let mut next = m;
        if next
            .finish_pooled(status, counts, failure, deps.clock.now())
            .is_err()
        {
            return Ok(Cas::Done(()));
        }
        match save(deps, next, expected).await? {
            Saved::Written(i) => {
                tracing::info!(intent_id = %i.intent_id, status = %i.status, path = ?i.path(), "pooled intent finished");
                Ok(Cas::Done(()))
            }
            Saved::Stale(_) => Ok(Cas::Again(())),
        }
    })
    .await?
    .ok_or_else(|| lost_races("finishing a pooled intent"))
}

/// A member's counts from its results (skipped images are not records). A record with no
/// result (its shared job was refused, or failed before any output) counts as failed.
fn member_counts(records: u64, results: &[ImageResult]) -> ManifestSummary {
    let mut counts = ManifestSummary {
        total_record_count: records,
        ..ManifestSummary::default()
    };
    for r in results.iter().filter(|r| r.status != ResultStatus::Skipped) {
        counts.processed_record_count += u64::from(r.error_code.as_deref() != Some("no_output"));
        if r.status == ResultStatus::Succeeded {
            counts.success_record_count += 1;
        } else {
            counts.error_record_count += 1;
        }
        counts.input_token_count += r.input_tokens;
        counts.output_token_count += r.output_tokens;
    }
    counts.error_record_count = counts
        .total_record_count
        .saturating_sub(counts.success_record_count);
    counts
}

/// A member's end: its own results decide, unless its shared job ended badly and not every
/// record of the member succeeded (then the job's end and message are the member's).
fn member_end(
    counts: &ManifestSummary,
    shared: Option<&BatchIntent>,
) -> (IntentStatus, Option<String>) {
    let own = if counts.success_record_count == counts.total_record_count {
        IntentStatus::Completed
    } else if counts.success_record_count > 0 {
        IntentStatus::PartiallyCompleted
    } else {
        IntentStatus::Failed
    };
    match shared.map(|s| s.status) {
        Some(s @ (IntentStatus::Failed | IntentStatus::Stopped | IntentStatus::Expired))
            if own != IntentStatus::Completed =>
        {
            (s, shared.and_then(|s| s.failure_message.clone()))
        }
        _ if own == IntentStatus::Failed => (own, Some("no record succeeded".to_string())),
        _ => (own, None),
    }
}

/// The stored results of these records, by record id (a shared job's are its members').
pub(crate) async fn stored_results<'r>(
    deps: &Deps,
    intent: &BatchIntent,
    records: impl Iterator<Item = &'r ImageResult>,
) -> Result<HashMap<RecordId, ImageResult>, StageError> {
    let mut owners: HashSet<IntentId> = HashSet::new();
    let members: HashMap<JobId, IntentId> = crate::app::lists::members(deps, intent)
        .await?
        .into_iter()
        .map(|m| (m.job_id, m.intent_id))
        .collect();
    for r in records {
        let owner = if intent.is_pool_job() {
            r.record_id
                .owner()
                .and_then(|(job, _)| members.get(&job).cloned())
        } else {
            Some(intent.intent_id.clone())
        };
        owners.extend(owner);
    }
    let mut out = HashMap::new();
    for owner in owners {
        for r in all_results(deps, &owner).await? {
            out.insert(r.record_id.clone(), r);
        }
    }
    Ok(out)
}

/// A shared job's results go to its members, each under its own image index. A member
/// cancelled meanwhile keeps its `canceled` results: the job's answers for it are dropped.
pub(crate) async fn route_to_members(
    deps: &Deps,
    shared: &BatchIntent,
    results: Vec<ImageResult>,
) -> Result<(), StageError> {
    let mut by_job: HashMap<JobId, Vec<ImageResult>> = HashMap::new();
    for mut r in results {
        let Some((job, index)) = r.record_id.owner() else {
            continue;
        };
        r.image_index = index;
        by_job.entry(job).or_default().push(r);
    }
    let members = crate::app::lists::members(deps, shared).await?;
    for member in members {
        let Some(rows) = by_job.remove(&member.job_id) else {
            continue;
        };
        let live = deps
            .store
            .get(&member.intent_id)
            .await?
            .is_some_and(|m| m.is_live_member_of(&shared.intent_id));
        if !live {
            continue;
        }
        crate::app::duplicates::store(deps, &member.intent_id, &rows).await?;
        // A cancel that landed while these were written marked the member's records
        // canceled first; put that back, so a cancelled member's answers stay discarded.
        if let Some(m) = deps.store.get(&member.intent_id).await? {
            if m.status == IntentStatus::Cancelled {
                let canceled: Vec<ImageResult> = rows
                    .iter()
                    .map(|r| {
                        ImageResult::canceled(
                            r.record_id.clone(),
                            r.image_index,
                            r.image_key.clone(),
                        )
                    })
                    .collect();
                crate::app::duplicates::store(deps, &member.intent_id, &canceled).await?;
            }
        }
    }
    Ok(())
}

/// Every stored result of an intent, all pages.
pub(crate) async fn all_results(
    deps: &Deps,
    intent: &IntentId,
) -> Result<Vec<ImageResult>, StageError> {
    let mut out = Vec::new();
    let mut after: Option<RecordId> = None;
    loop {
        let page = deps
            .results
            .list_results(intent, after.as_ref(), 500)
            .await?;
        let n = page.len();
        after = page.last().map(|r| r.record_id.clone());
        out.extend(page);
        if n < 500 {
            return Ok(out);
        }
    }
}
