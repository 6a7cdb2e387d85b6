//! The pool side of an intent: a small intent waiting for a shared job, claimed into one or
//! run on-demand, and the shared job's own intent.

use crate::domain::intent::*;
use chrono::{DateTime, Utc};

/// `pool-` and 24 hex digits of sha256(model, the sealing time, member intent ids in order):
/// the same set sealed again later (its first job failed to take its members) is a new job.
pub fn pool_intent_id(
    model: &ModelId,
    members: &[PoolMember],
    sealed_at: DateTime<Utc>,
) -> IntentId {
    let mut h = Sha256::new();
    h.update(model.as_str().as_bytes());
    h.update(sealed_at.timestamp_micros().to_be_bytes());
    for m in members {
        h.update([0]);
        h.update(m.intent_id.as_str().as_bytes());
    }
    let hex = hex::encode(h.finalize());
    IntentId::parse(&format!("pool-{}", &hex[..24]))
        .unwrap_or_else(|e| unreachable!("a hex pool id is valid: {e}"))
}

impl BatchIntent {
    /// Whether this member still takes the results of shared job `shared`: pooled and sealed
    /// into it (a member cancelled meanwhile keeps its `canceled` results).
    pub fn is_live_member_of(&self, shared: &IntentId) -> bool {
        self.status == IntentStatus::Pooled
            && self
                .pool
                .as_ref()
                .is_some_and(|p| p.sealed_into.as_ref() == Some(shared))
    }

    /// The intent of a shared job sealed from `members` (at least one). Its id comes from
    /// [`pool_intent_id`] over the members the sealer chose, so two sealers of the same set
    /// make one intent; `members` are the ones it could claim.
    pub fn new_pool(
        id: IntentId,
        model_id: ModelId,
        prompt_version: String,
        selection: ImageSelection,
        deadline: Option<DateTime<Utc>>,
        now: DateTime<Utc>,
        ttl_days: i64,
    ) -> Self {
        let trace_id = TraceId::parse(&format!("pool-{}", &id.as_str()[5..]))
            .unwrap_or_else(|e| unreachable!("a hex trace id is valid: {e}"));
        let user_id = UserId::parse(POOL_USER)
            .unwrap_or_else(|e| unreachable!("the pool user is a valid user id: {e}"));
        Self::new(
            NewIntent {
                intent_id: id,
                client_intent_id: None,
                user_id,
                selection,
                model_id,
                prompt_version,
                trace_id,
                deadline,
                webhook: None,
            },
            now,
            ttl_days,
        )
    }

    /// REQUESTED -> POOLED: too few records for a job of its own. `jobs` holds the planned
    /// (never submitted) job whose parts the shared job or the on-demand path reads.
    pub fn record_pooled(
        &mut self,
        images: Vec<ImageEntry>,
        jobs: Vec<BatchJob>,
        now: DateTime<Utc>,
    ) -> Result<(), Refused> {
        self.require(IntentStatus::Requested)?;
        let records = jobs.iter().map(BatchJob::records).sum();
        let bytes = jobs
            .iter()
            .flat_map(|j| j.parts.iter())
            .map(|p| p.bytes)
            .sum();
        self.images = images;
        self.jobs = jobs;
        self.pool = Some(PoolState {
            since: now,
            records,
            bytes,
            sealed_into: None,
            on_demand: false,
        });
        self.advance(IntentStatus::Pooled, now)
    }

    /// Claims a waiting member for shared job `pool`. Claiming it again for the same pool
    /// is a no-op; a member claimed elsewhere (or taken on-demand) is refused.
    pub fn seal_into(&mut self, pool: &IntentId, now: DateTime<Utc>) -> Result<bool, Refused> {
        self.require(IntentStatus::Pooled)?;
        let state = self.pool.as_mut().ok_or(Refused::NotPooled)?;
        match &state.sealed_into {
            Some(p) if p == pool => Ok(false),
            Some(_) => Err(Refused::NotPooled),
            None if state.on_demand => Err(Refused::NotPooled),
            None => {
                state.sealed_into = Some(pool.clone());
                self.updated_at = now;
                Ok(true)
            }
        }
    }

    /// Claims a waiting member for the on-demand path (below-minimum policy).
    pub fn take_on_demand(&mut self, now: DateTime<Utc>) -> Result<bool, Refused> {
        self.require(IntentStatus::Pooled)?;
        let state = self.pool.as_mut().ok_or(Refused::NotPooled)?;
        match (&state.sealed_into, state.on_demand) {
            (None, true) => Ok(false),
            (None, false) => {
                state.on_demand = true;
                self.updated_at = now;
                Ok(true)
            }
            (Some(_), _) => Err(Refused::NotPooled),
        }
    }

    /// POOLED -> its end, once its shared job ended or its on-demand run finished: the counts
    /// are its own records' (plus its rejected images as errors are not counted here).
    pub fn finish_pooled(
        &mut self,
        status: IntentStatus,
        counts: ManifestSummary,
        failure_message: Option<String>,
        now: DateTime<Utc>,
    ) -> Result<(), Refused> {
        self.require(IntentStatus::Pooled)?;
        self.counts = Some(counts);
        self.failure_message = failure_message;
        self.advance(status, now)?;
        match status {
            IntentStatus::Completed | IntentStatus::PartiallyCompleted => {
                self.stage(EventKind::BatchCompleted, now)
            }
            _ => self.stage(EventKind::BatchFailed, now),
        }
        Ok(())
    }
}
