//! A shared job's members at its end: each counted from its own results and moved from POOLED
//! to its end (its results were routed to it as they were stored, `app::results`).

use crate::app::outbox::{save, Saved};
use crate::app::results::all_results;
use crate::app::{cas_loop, lost_races, Cas, Deps, StageError};
use crate::domain::bedrock::ManifestSummary;
use crate::domain::ids::IntentId;
use crate::domain::intent::BatchIntent;
use crate::domain::results::{ImageResult, ResultStatus};
use crate::domain::status::IntentStatus;

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
