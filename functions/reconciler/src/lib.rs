//! reconciler: a scheduled pass (EventBridge schedule) that repairs what best-effort events
//! miss: it asks Bedrock about every open job, re-announces intents stuck before submission,
//! publishes owed events, and seals the pools of intents below the job minimum (see
//! `shared::app::reconcile` and `shared::app::pool`). Run it with a reserved concurrency of
//! one: it is the pools' single sealer. The schedule event's content is
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
        pools_sealed_by_size = r.pools.sealed_by_size,
        pools_sealed_by_deadline = r.pools.sealed_by_deadline,
        pools_sealed_idle_slot = r.pools.sealed_idle,
        pooled_on_demand = r.pools.on_demand_intents,
        pooled_waiting = r.pools.waiting,
        deadline_at_risk = r.deadline.at_risk,
        deadline_stopped = r.deadline.stopped,
        deadline_moved_on_demand = r.deadline.moved_on_demand,
        night_points = r.nights.points,
        night_summaries = r.nights.summaries,
        "reconcile pass done"
    );
    Ok(json!({
        "jobsChecked": r.jobs_checked,
        "applied": r.applied,
        "reannounced": r.reannounced,
        "swept": r.swept,
        "failed": r.failed,
        "poolsSealed": r.pools.sealed_by_size + r.pools.sealed_by_deadline + r.pools.sealed_idle,
        "pooledOnDemand": r.pools.on_demand_intents,
        "pooledResumed": r.pools.resumed,
        "pooledWaiting": r.pools.waiting,
        "deadlineAtRisk": r.deadline.at_risk,
        "deadlineStopped": r.deadline.stopped,
        "deadlineMovedOnDemand": r.deadline.moved_on_demand,
        "nightPoints": r.nights.points,
        "nightSummaries": r.nights.summaries,
    }))
}
