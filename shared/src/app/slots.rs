//! Concurrency slots, every take, free and count of them: at most `max_concurrent_jobs` submitted + in-progress Bedrock jobs per
//! model. A submitter that finds every slot taken leaves its intent MANIFEST_READY and lets
//! its message go (so waiting never burns the queue's receive count into the DLQ); whoever
//! frees a slot wakes the oldest waiting intent of that model by announcing it again. A wake
//! can be lost (it reads a lagging index, or dies): each reconciler pass wakes waiting intents
//! while their model has free slots ([`wake_while_free`]).

use crate::app::outbox::{save, Saved};
use crate::app::{Deps, StageError};
use crate::domain::ids::ModelId;
use crate::domain::status::IntentStatus;

/// Takes a slot of `model` for `holder` (a job's client token): true if it holds one now (a
/// retry finds the slot it took), false if every slot is taken.
pub async fn take(deps: &Deps, model: &ModelId, holder: &str) -> Result<bool, StageError> {
    let cap = deps.settings.quotas_for(model).max_concurrent_jobs;
    Ok(deps.slots.acquire(model.as_str(), holder, cap).await?)
}

/// How many of `model`'s slots are taken, and how many it has (strongly consistent).
pub async fn held(deps: &Deps, model: &ModelId) -> Result<(u32, u32), StageError> {
    let cap = deps.settings.quotas_for(model).max_concurrent_jobs;
    Ok((deps.slots.held(model.as_str(), cap).await?, cap))
}

/// Every allowed model with its slots taken and its slots: what the operator page and the
/// nights' points show.
pub async fn held_per_model(deps: &Deps) -> Result<Vec<(ModelId, u32, u32)>, StageError> {
    let mut out = Vec::new();
    for model in &deps.settings.allowed_models {
        let (taken, cap) = held(deps, model).await?;
        out.push((model.clone(), taken, cap));
    }
    Ok(out)
}

/// Frees `holder`'s slot of `model`, waking nobody (Bedrock said "not now": a woken intent
/// would be told the same).
pub async fn release(deps: &Deps, model: &ModelId, holder: &str) -> Result<(), StageError> {
    let cap = deps.settings.quotas_for(model).max_concurrent_jobs;
    Ok(deps.slots.release(model.as_str(), holder, cap).await?)
}

/// Frees `holder`'s slot of `model`, then wakes one intent waiting for it.
pub async fn release_and_wake(
    deps: &Deps,
    model: &ModelId,
    holder: &str,
) -> Result<(), StageError> {
    let cap = deps.settings.quotas_for(model).max_concurrent_jobs;
    deps.slots.release(model.as_str(), holder, cap).await?;
    wake_one(deps, model).await.map(|_| ())
}

/// Wakes waiting intents of `model`, oldest first, as many as it has free slots. Returns how
/// many it woke. One woken too many finds no slot and waits again.
pub async fn wake_while_free(deps: &Deps, model: &ModelId) -> Result<usize, StageError> {
    let (taken, cap) = held(deps, model).await?;
    let free = cap.saturating_sub(taken);
    let mut woken = 0;
    for _ in 0..free {
        if !wake_one(deps, model).await? {
            break;
        }
        woken += 1;
    }
    Ok(woken)
}

/// Intents waiting for a job slot that may try now: MANIFEST_READY ones, and running ones
/// whose re-run job waits (index reads, see [`wake_one`]), each past any "not now" backoff.
/// For one `model` (each freed slot asks), the running intents are read only when no
/// MANIFEST_READY one waits: a job's end costs one index read, as before re-runs existed.
pub async fn waiting_intents(
    deps: &Deps,
    now: chrono::DateTime<chrono::Utc>,
    model: Option<&ModelId>,
) -> Result<Vec<crate::domain::intent::BatchIntent>, StageError> {
    let mut out = Vec::new();
    for status in [
        IntentStatus::ManifestReady,
        IntentStatus::Submitted,
        IntentStatus::InProgress,
    ] {
        out.extend(
            deps.store
                .list_by_status(status, now, 200)
                .await?
                .into_iter()
                .filter(|i| {
                    i.waiting_for_slot_since.is_some()
                        && i.outbox.is_none()
                        && i.may_create_at(now)
                        && model.is_none_or(|m| &i.model_id == m)
                }),
        );
        if model.is_some() && !out.is_empty() {
            break;
        }
    }
    Ok(out)
}

/// When the earliest "not now" backoff of a waiting intent runs out (the embedded runner
/// sleeps until then; deployed, the reconciler's schedule comes round).
pub async fn next_backoff_end(
    deps: &Deps,
) -> Result<Option<chrono::DateTime<chrono::Utc>>, StageError> {
    let now = deps.clock.now();
    let mut next = None;
    for status in [
        IntentStatus::ManifestReady,
        IntentStatus::Submitted,
        IntentStatus::InProgress,
    ] {
        for i in deps.store.list_by_status(status, now, 200).await? {
            if let Some(b) = i
                .create_backoff
                .filter(|_| i.waiting_for_slot_since.is_some())
            {
                next = Some(
                    next.map_or(b.not_before, |n: chrono::DateTime<chrono::Utc>| {
                        n.min(b.not_before)
                    }),
                );
            }
        }
    }
    Ok(next)
}

/// Announces again the MANIFEST_READY intent of `model` that has waited longest for a slot.
/// False if none was waiting (as far as the index shows).
pub async fn wake_one(deps: &Deps, model: &ModelId) -> Result<bool, StageError> {
    let now = deps.clock.now();
    // Index read (byStatusUpdated, may lag). Safe: the store re-reads every intent it names
    // and keeps only those still MANIFEST_READY, and the reannounce below is a version-
    // conditional write; an intent the index does not show yet is woken by the next freed
    // slot, or re-announced by the reconciler as stuck.
    let mut waiting = waiting_intents(deps, now, Some(model)).await?;
    waiting.sort_by_key(|i| (i.waiting_for_slot_since, i.created_at));
    for intent in waiting {
        let expected = intent.version;
        let mut next = intent;
        next.waiting_for_slot_since = None;
        if next.reannounce(now).is_ok() {
            if let Saved::Written(i) = save(deps, next, expected).await? {
                tracing::info!(intent_id = %i.intent_id, "woke an intent waiting for a job slot");
                return Ok(true);
            }
        }
    }
    Ok(false)
}
