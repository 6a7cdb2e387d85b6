//! reconciler: a scheduled pass (EventBridge schedule) that repairs what best-effort events
//! miss: it asks Bedrock about every open job, re-announces intents stuck before submission,
//! and publishes owed events (see `shared::app::reconcile`). The schedule event's content is
//! not used; any invocation runs one pass.

use serde_json::{json, Value};
use shared::app::reconcile::reconcile;
use shared::app::Deps;

/// Intents examined per status per pass.
pub const PASS_LIMIT: usize = 200;

/// One pass. A failure is returned so Lambda records it; the next scheduled pass retries.
pub async fn handle(deps: &Deps, _event: Value) -> Result<Value, shared::app::StageError> {
    let r = reconcile(deps, PASS_LIMIT).await?;
    tracing::info!(
        jobs_checked = r.jobs_checked,
        applied = r.applied,
        reannounced = r.reannounced,
        swept = r.swept,
        failed = r.failed,
        "reconcile pass done"
    );
    Ok(json!({
        "jobsChecked": r.jobs_checked,
        "applied": r.applied,
        "reannounced": r.reannounced,
        "swept": r.swept,
        "failed": r.failed,
    }))
}
