//! The transactional outbox. A stage writes its state change and the events it owes in one
//! conditional write, then publishes, then clears what it published. A crash or a failed
//! publish leaves the events in the store; after a grace period any replay (or the sweep)
//! takes them over, so no intent is stranded and no event is published by two racers.

use crate::app::{Deps, StageError};
use crate::domain::intent::BatchIntent;
use crate::ports::Updated;
use chrono::{DateTime, Utc};

/// Result of a conditional save.
#[derive(Debug)]
pub enum Saved {
    /// Written (and its outbox published, unless publishing failed and was left for later).
    Written(Box<BatchIntent>),
    /// Someone else wrote first: the caller re-reads this and decides again.
    Stale(Box<BatchIntent>),
}

/// Writes `next` if the stored version is still `expected`, then publishes its outbox.
pub async fn save(deps: &Deps, mut next: BatchIntent, expected: u64) -> Result<Saved, StageError> {
    next.version = expected + 1;
    match deps.store.update(&next, expected).await? {
        Updated::Stale(current) => Ok(Saved::Stale(current)),
        Updated::Written => {
            close_ended(deps, &next).await;
            Ok(Saved::Written(Box::new(publish_owned(deps, next).await?)))
        }
    }
}

/// An intent that ended frees its user's open place (`app::intake::limits` counts them):
/// idempotent, best effort, healed by the next refusal otherwise.
async fn close_ended(deps: &Deps, intent: &BatchIntent) {
    if !intent.status.is_terminal() || intent.client_intent_id.is_none() {
        return;
    }
    if let Err(e) = deps
        .allowances
        .close(&intent.user_id, &intent.intent_id)
        .await
    {
        tracing::warn!(intent_id = %intent.intent_id, error = %e, "could not free an ended intent's place; the next refusal heals it");
    }
}

/// Publishes the outbox of an intent this caller just wrote, then clears it. If publishing
/// fails, the outbox is released (its stamp set to the epoch) so the next replay takes it
/// over at once, and the error is returned so the message is retried.
pub async fn publish_owned(deps: &Deps, intent: BatchIntent) -> Result<BatchIntent, StageError> {
    let Some(outbox) = intent.outbox.clone() else {
        return Ok(intent);
    };
    let envelopes: Vec<_> = outbox.events.iter().map(|e| e.to_envelope()).collect();
    if let Err(err) = deps.bus.publish(&envelopes).await {
        tracing::warn!(intent_id = %intent.intent_id, error = %err, "publish failed; outbox released for a retry");
        release(deps, intent).await;
        return Err(StageError::Retryable(err));
    }
    let published: Vec<String> = outbox
        .events
        .iter()
        .map(|e| e.detail.event_id.clone())
        .collect();
    clear(deps, intent, &published).await
}

/// Takes over an outbox whose writer is gone (older than the grace period): claims it with a
/// conditional write so only one taker publishes, then publishes and clears. Returns whether
/// this call published.
pub async fn take_over(deps: &Deps, intent: &BatchIntent) -> Result<bool, StageError> {
    let now = deps.clock.now();
    if !intent.outbox_is_orphaned(now, deps.settings.outbox_grace_secs) {
        return Ok(false);
    }
    let mut claimed = intent.clone();
    if let Some(outbox) = claimed.outbox.as_mut() {
        outbox.staged_at = now;
    }
    claimed.version = intent.version + 1;
    match deps.store.update(&claimed, intent.version).await? {
        Updated::Stale(_) => Ok(false),
        Updated::Written => {
            tracing::info!(intent_id = %intent.intent_id, "took over an orphaned outbox");
            publish_owned(deps, claimed).await?;
            Ok(true)
        }
    }
}

async fn release(deps: &Deps, mut intent: BatchIntent) {
    let expected = intent.version;
    if let Some(outbox) = intent.outbox.as_mut() {
        outbox.staged_at = DateTime::<Utc>::UNIX_EPOCH;
    }
    intent.version += 1;
    if let Err(e) = deps.store.update(&intent, expected).await {
        // The sweep finds it after the grace period anyway.
        tracing::warn!(intent_id = %intent.intent_id, error = %e, "could not release outbox");
    }
}

/// Removes the published events from the stored outbox, re-reading on a lost race so events
/// staged meanwhile by someone else stay.
async fn clear(
    deps: &Deps,
    intent: BatchIntent,
    published: &[String],
) -> Result<BatchIntent, StageError> {
    crate::app::cas_loop(intent, move |mut intent: BatchIntent| async move {
        let expected = intent.version;
        let Some(outbox) = intent.outbox.as_mut() else {
            return Ok(crate::app::Cas::Done(intent));
        };
        outbox
            .events
            .retain(|e| !published.contains(&e.detail.event_id));
        if outbox.events.is_empty() {
            intent.outbox = None;
        }
        intent.version = expected + 1;
        match deps.store.update(&intent, expected).await? {
            Updated::Written => Ok(crate::app::Cas::Done(intent)),
            // The item as the race left it: decide again on that, without a re-read.
            Updated::Stale(current) => Ok(crate::app::Cas::Again(*current)),
        }
    })
    .await?
    .ok_or_else(|| crate::app::lost_races("outbox clear"))
}

/// The outbox sweep, a scheduled pass: publishes the events of intents whose writer crashed
/// or failed to publish (for example an intake whose emit failed and whose client never
/// retried). Replay: it claims each outbox with a conditional write ([`take_over`]), so two
/// sweeps (or a sweep and a replayed message) never publish the same outbox twice.
/// At most `limit`; returns how many it published.
pub async fn sweep_outboxes(deps: &Deps, limit: usize) -> Result<usize, StageError> {
    let before = deps.clock.now() - chrono::Duration::seconds(deps.settings.outbox_grace_secs);
    // Index read (byOutbox, may lag). Safe: each intent named is re-read and kept only if its
    // outbox is still owed, the take-over is version-conditional, and an outbox the index does
    // not show yet is swept on a later pass (its writer normally publishes it first anyway).
    let stuck = deps.store.list_pending_outbox(before, limit).await?;
    let mut published = 0;
    for intent in &stuck {
        if take_over(deps, intent).await? {
            published += 1;
        }
    }
    if published > 0 {
        tracing::info!(published, "sweep re-announced stranded intents");
    }
    Ok(published)
}
