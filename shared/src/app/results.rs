//! Where results are stored: [`put`] is the one function every writer of results calls (a
//! shared job's results go to its members, each under its own image index); [`put_own`] is
//! its plain form for results already the intent's own. Both store through
//! `app::duplicates::store`, which also answers the copies waiting on these records. And the
//! reads of what is stored: [`all_results`], [`stored_results`].
//!
//! Replay: results are upserts keyed by (intentId, recordId): storing the same results again
//! writes the same rows.

use crate::app::{Deps, StageError};
use crate::domain::ids::{IntentId, JobId, RecordId};
use crate::domain::intent::BatchIntent;
use crate::domain::results::ImageResult;
use crate::domain::status::IntentStatus;
use std::collections::{HashMap, HashSet};

/// Stores `results` of `intent`'s job: a shared job's go to its members.
pub async fn put(
    deps: &Deps,
    intent: &BatchIntent,
    results: Vec<ImageResult>,
) -> Result<(), StageError> {
    if intent.is_pool_job() {
        route_to_members(deps, intent, results).await
    } else {
        put_own(deps, &intent.intent_id, &results).await
    }
}

/// Stores results that are `owner`'s own (a member's, a rejected image's, a cancel's).
pub async fn put_own(
    deps: &Deps,
    owner: &IntentId,
    results: &[ImageResult],
) -> Result<(), StageError> {
    crate::app::duplicates::store(deps, owner, results).await
}

/// The stored results of these records, by record id (a shared job's are its members').
pub async fn stored_results<'r>(
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
async fn route_to_members(
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
        put_own(deps, &member.intent_id, &rows).await?;
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
                put_own(deps, &member.intent_id, &canceled).await?;
            }
        }
    }
    Ok(())
}

/// Every stored result of an intent, all pages.
pub async fn all_results(deps: &Deps, intent: &IntentId) -> Result<Vec<ImageResult>, StageError> {
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
