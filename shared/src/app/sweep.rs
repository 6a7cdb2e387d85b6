//! The outbox sweep: a scheduled pass that publishes the events of intents whose writer
//! crashed or failed to publish (for example an intake whose emit failed and whose client
//! never retried). Replay: it claims each outbox with a conditional write, so two sweeps (or a
//! sweep and a replayed message) never publish the same outbox twice.

use super::outbox::take_over;
use super::{Deps, StageError};
use chrono::Duration;

/// Publishes every orphaned outbox, at most `limit`. Returns how many it published.
pub async fn sweep_outboxes(deps: &Deps, limit: usize) -> Result<usize, StageError> {
    let before = deps.clock.now() - Duration::seconds(deps.settings.outbox_grace_secs);
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
