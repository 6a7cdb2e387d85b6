//! Pools: intents below Bedrock's minimum records per job wait here (status POOLED), per model
//! and prompt, until a pass of the reconciler seals them:
//! - **by size**: the waiting intents, oldest first, are packed into as few shared jobs as
//!   the caps allow (a job's records; 1,000 intents, which its intent lists), each sealed once
//!   it holds the minimum; a shared job is an internal intent owned by `system.pool`, and
//!   its records are listed in a record map in S3;
//! - **by deadline**: what is left when the oldest has waited `pool_deadline_secs` follows the
//!   below-minimum policy: `wait` (stay for the next window), `pad` (a shared job padded to
//!   the minimum with tiny text records) or `on_demand` (InvokeModel record by record).
//!
//! A pool is per model, prompt **and deadline**: only intents with the same deadline (none,
//! or the same instant, as every nightly intent of one night has) share a job. So no member's
//! deadline seals, stops or redrives another member's records: a client that posts one image
//! due in 15 minutes waits in a pool of its own, and its early seal (or its job's cut-off)
//! moves only its own records to on-demand, at its own price (docs/architecture.md, "Pools").
//!
//! A shared job's record ids are its members' own, so every output line maps back to exactly
//! one (member intentId, image); when it ends, each member gets its own results, counts and
//! terminal status (see `finish_members`).
//!
//! Replay and races: the shared job's intent is written first (planned members, not yet
//! announced), then each member is claimed with a version-conditional write naming it, so no
//! member is ever in two jobs or in a job and on-demand; then the job is announced. A sealer
//! that dies part-way leaves unclaimed members in the pool (sealed again later, into a job
//! with a new id: the id hashes the sealing time) and an unannounced job, which the next pass
//! (or the outbox sweep) announces; its manifest takes only the members it holds. A member
//! on-demand resumes where it stopped: records with a success are not run again.

use crate::app::on_demand::{self, Pending};
use crate::app::outbox::{publish_owned, save, take_over, Saved};
use crate::app::{cas_loop, Cas, Deps, StageError};
use crate::domain::ids::{IntentId, JobId, RecordId};
use crate::domain::intent::{pool_intent_id, BatchIntent, ImageSelection, PoolMember, Refused};
use crate::domain::manifest::image_index_of;
use crate::domain::pool::Waiting;
use crate::domain::results::{ImageResult, ResultStatus};
use crate::domain::settings::BelowMinimum;
use crate::domain::status::IntentStatus;
use crate::ports::Created;
use chrono::Duration;
use std::collections::{BTreeMap, HashMap};

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct PoolReport {
    pub sealed_by_size: usize,
    pub sealed_by_deadline: usize,
    /// Part-full jobs sealed because their model had an idle slot.
    pub sealed_idle: usize,
    pub on_demand_intents: usize,
    pub waiting: usize,
    pub resumed: usize,
    /// Pools or members a step failed for; the next pass tries them again.
    pub failed: usize,
}

impl PoolReport {
    pub fn add(&mut self, other: &PoolReport) {
        self.sealed_by_size += other.sealed_by_size;
        self.sealed_by_deadline += other.sealed_by_deadline;
        self.sealed_idle += other.sealed_idle;
        self.on_demand_intents += other.on_demand_intents;
        self.waiting = other.waiting;
        self.resumed += other.resumed;
        self.failed += other.failed;
    }
}

mod members;
use members::finish_member;
pub use members::finish_members;

/// One pass over every pooled intent (oldest first, at most `limit`). `idle_seals`: whether
/// this pass may seal a part-full rest on an idle slot (the reconciler allows it in its first
/// round only, so one pass seals at most one such job per pool: shared jobs sealed earlier in
/// the pass hold no slot yet).
pub async fn pool_pass(
    deps: &Deps,
    limit: usize,
    idle_seals: bool,
) -> Result<PoolReport, StageError> {
    let now = deps.clock.now();
    let mut report = PoolReport::default();
    // Index read (byStatusUpdated, may lag). Safe: every intent named is re-read and kept only
    // while still POOLED, sealing claims members with version-conditional writes, and an
    // intent the index does not show yet is sealed by a later pass (pools wait for hours).
    let pooled = deps
        .store
        .list_by_status(IntentStatus::Pooled, now, limit)
        .await?;
    // A full window may not be the whole pool: its rest is then no pool's real rest.
    let whole_pool = idle_seals && pooled.len() < limit;
    let (claimed, waiting) = sort_pooled(deps, pooled, &mut report).await;
    resume_claimed(deps, claimed, &mut report).await;
    for (key, members) in waiting {
        seal_pool(deps, &key.model, members, whole_pool, &mut report).await?;
    }
    Ok(report)
}

/// Members claimed into a shared job, by the job's intent id.
type Claimed = BTreeMap<IntentId, Vec<BatchIntent>>;
/// Members waiting for a shared job, by their pool's key, oldest first.
type WaitingMembers = BTreeMap<PoolKey, Vec<BatchIntent>>;

/// What members must have in common to share a job: the model, the prompt version and the
/// deadline (see the module doc: one member's deadline never steers another's records).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct PoolKey {
    model: String,
    prompt_version: String,
    deadline: Option<chrono::DateTime<chrono::Utc>>,
}

impl PoolKey {
    fn of(m: &BatchIntent) -> Self {
        PoolKey {
            model: m.model_id.to_string(),
            prompt_version: m.prompt_version.clone(),
            deadline: m.deadline,
        }
    }
}

/// Sorts the pooled intents: claimed ones (their shared job may not exist, if a sealer died,
/// or may have ended, if a watcher died before finishing them) and waiting ones; on-demand
/// runs a crash interrupted are resumed here.
async fn sort_pooled(
    deps: &Deps,
    pooled: Vec<BatchIntent>,
    report: &mut PoolReport,
) -> (Claimed, WaitingMembers) {
    let mut claimed = Claimed::new();
    let mut waiting = WaitingMembers::new();
    for m in pooled {
        let Some(state) = m.pool.clone() else {
            continue;
        };
        if let Some(p) = state.sealed_into {
            claimed.entry(p).or_default().push(m);
        } else if state.on_demand {
            let id = m.intent_id.clone();
            match run_member_on_demand(deps, m).await {
                Ok(()) => report.resumed += 1,
                Err(e) => {
                    report.failed += 1;
                    tracing::warn!(intent_id = %id, error = %e, "on-demand run failed; the next pass resumes it");
                }
            }
        } else {
            waiting.entry(PoolKey::of(&m)).or_default().push(m);
        }
    }
    (claimed, waiting)
}

/// Finishes what a dead sealer or watcher left: creates a missing shared job, ends the
/// members of an ended one, or takes over an orphaned outbox.
async fn resume_claimed(deps: &Deps, claimed: Claimed, report: &mut PoolReport) {
    for (pool_id, members) in claimed {
        let outcome = match deps.store.get(&pool_id).await {
            // Claimed into a job that is not there: only an intent lost from the store.
            Ok(None) => {
                let pad_to = pad_target(deps, &members);
                create_shared(deps, pool_id.clone(), &members, pad_to)
                    .await
                    .map(|()| true)
            }
            // Its watcher died before ending every member.
            Ok(Some(p)) if p.status.is_terminal() => finish_members(deps, &p).await.map(|()| true),
            // A running shared job: only an orphaned outbox is work to resume.
            Ok(Some(p)) => take_over(deps, &p).await,
            Err(e) => Err(e.into()),
        };
        match outcome {
            Ok(true) => report.resumed += 1,
            Ok(false) => {}
            Err(e) => {
                report.failed += 1;
                tracing::warn!(pool_intent = %pool_id, error = %e, "pool pass could not resume a shared job");
            }
        }
    }
}

/// One model's waiting members, oldest first: every full job is sealed now; the rest is
/// sealed on an idle slot or at the deadline, or waits to fill (see `domain::pool` for the
/// rule and its figures).
async fn seal_pool(
    deps: &Deps,
    model: &str,
    mut members: Vec<BatchIntent>,
    whole_pool: bool,
    report: &mut PoolReport,
) -> Result<(), StageError> {
    let settings = &deps.settings;
    let Some(model_id) = members.first().map(|m| m.model_id.clone()) else {
        return Ok(());
    };
    let model_id = &model_id;
    let quotas = settings.quotas_for(model_id);
    let (min, cap) = (quotas.min_records_per_job, quotas.max_concurrent_jobs);
    let counts: Vec<Waiting> = members
        .iter()
        .map(|m| {
            let p = m.pool.as_ref();
            Waiting {
                records: p.map_or(0, |p| p.records),
                bytes: p.map_or(0, |p| p.bytes),
            }
        })
        .collect();
    let (groups, rest) = crate::domain::pool::pack(&counts, settings.pool_capacity(model_id));
    let group: Vec<BatchIntent> = members.split_off(rest);
    let records: u64 = counts[rest..].iter().map(|w| w.records).sum();
    let sealed_now = groups.len() as u32;
    for range in groups.into_iter().rev() {
        let sealed = members.split_off(range.start);
        seal(deps, sealed, 0).await?;
        report.sealed_by_size += 1;
        crate::metrics::sealed("size");
    }
    if group.is_empty() {
        return Ok(());
    }
    // An idle slot: a job that starts now delays nothing, so the rest need not wait.
    if whole_pool && records >= min && slots_taken(deps, model).await? + sealed_now < cap {
        seal(deps, group, 0).await?;
        report.sealed_idle += 1;
        crate::metrics::sealed("idle_slot");
        return Ok(());
    }
    let now = deps.clock.now();
    let oldest = group
        .iter()
        .filter_map(|m| m.pool.as_ref().map(|p| p.since))
        .min()
        .unwrap_or(now);
    let due = crate::app::deadline::pool_due(deps, model_id, &group, records).await;
    if now - oldest < Duration::seconds(settings.pool_deadline_secs) && !due {
        report.waiting += group.len();
        return Ok(());
    }
    if records >= min {
        seal(deps, group, 0).await?;
        report.sealed_by_deadline += 1;
        crate::metrics::sealed("deadline");
        return Ok(());
    }
    below_minimum_at_deadline(deps, group, records, report).await
}

/// A rest under the job minimum at its deadline, as the below-minimum policy says: wait for
/// the next window, pad a shared job to the minimum, or run each record on-demand.
async fn below_minimum_at_deadline(
    deps: &Deps,
    group: Vec<BatchIntent>,
    records: u64,
    report: &mut PoolReport,
) -> Result<(), StageError> {
    let Some(model) = group.first().map(|m| m.model_id.clone()) else {
        return Ok(());
    };
    let min = deps.settings.quotas_for(&model).min_records_per_job;
    match deps.settings.below_minimum {
        BelowMinimum::Wait => {
            report.waiting += group.len();
            tracing::info!(
                intents = group.len(),
                records,
                min,
                "pool below the minimum at its deadline; waiting for the next window (policy wait)"
            );
        }
        BelowMinimum::Pad => {
            seal(deps, group, min).await?;
            report.sealed_by_deadline += 1;
            crate::metrics::sealed("deadline");
        }
        BelowMinimum::OnDemand => {
            for m in group {
                let id = m.intent_id.clone();
                let run = async {
                    match claim_on_demand(deps, m).await? {
                        Some(m) => run_member_on_demand(deps, m).await.map(|()| true),
                        None => Ok(false),
                    }
                };
                match run.await {
                    Ok(true) => report.on_demand_intents += 1,
                    Ok(false) => {}
                    Err(e) => {
                        report.failed += 1;
                        tracing::warn!(intent_id = %id, error = %e, "on-demand run failed; the next pass resumes it");
                    }
                }
            }
        }
    }
    Ok(())
}

/// What a resumed shared job is padded to: the minimum under policy `pad`, else nothing.
fn pad_target(deps: &Deps, members: &[BatchIntent]) -> u64 {
    let records: u64 = members
        .iter()
        .filter_map(|m| m.pool.as_ref())
        .map(|p| p.records)
        .sum();
    let min = members.first().map_or(0, |m| {
        deps.settings.quotas_for(&m.model_id).min_records_per_job
    });
    if records < min && deps.settings.below_minimum == BelowMinimum::Pad {
        min
    } else {
        0
    }
}

/// Seals `group` into one shared job: its intent is written first (with the planned members,
/// not yet announced), then each member is claimed for it, then it is announced. A crash
/// between leaves members unclaimed (they stay in the pool and are sealed again) or claimed
/// into a job that exists; the job's manifest takes only the members it holds.
async fn seal(deps: &Deps, group: Vec<BatchIntent>, pad_to: u64) -> Result<(), StageError> {
    let Some(first) = group.first() else {
        return Ok(());
    };
    let planned: Vec<PoolMember> = group.iter().map(member_of).collect();
    let pool_id = pool_intent_id(&first.model_id, &planned, deps.clock.now());
    let created = write_shared(deps, &pool_id, &group, pad_to).await?;
    let mut claimed = 0;
    for m in group {
        if claim(deps, m, &pool_id).await?.is_some() {
            claimed += 1;
        }
    }
    tracing::info!(pool_intent = %pool_id, members = claimed, pad_to, "shared job sealed");
    announce(deps, &pool_id, created).await
}

/// Writes a shared job's intent over `members` (conditional create); the intent if this call
/// wrote it, None if it was there already.
async fn write_shared(
    deps: &Deps,
    pool_id: &IntentId,
    members: &[BatchIntent],
    pad_to: u64,
) -> Result<Option<BatchIntent>, StageError> {
    let Some(first) = members.first() else {
        return Ok(None);
    };
    let listed: Vec<PoolMember> = members.iter().map(member_of).collect();
    let records = listed.iter().map(|m| m.records).sum();
    let member_count = listed.len();
    // Its members' one deadline (a pool's key holds it): the shared job is cut off for it.
    // A job resumed from members of an older pool keyed without it keeps the earliest.
    let deadline = members.iter().filter_map(|m| m.deadline).min();
    // Past INLINE_LIST members, the list goes to S3 first (its key is the shared job's).
    let (members, member_list) = if member_count > crate::domain::intent::INLINE_LIST {
        let uri = crate::app::lists::list_uri(deps, &JobId::for_intent(pool_id), "members");
        crate::app::lists::put(deps, &uri, &listed).await?;
        (Vec::new(), Some(uri))
    } else {
        (listed, None)
    };
    let shared = BatchIntent::new_pool(
        pool_id.clone(),
        first.model_id.clone(),
        first.prompt_version.clone(),
        ImageSelection::Pool {
            members,
            pad_to,
            member_list,
            records,
            member_count,
        },
        deadline,
        deps.clock.now(),
        deps.settings.intent_ttl_days,
    );
    Ok(match deps.store.create(&shared).await? {
        Created::New => Some(shared),
        Created::Existing(_) => None,
    })
}

/// Publishes a shared job's BATCH_REQUESTED: the writer publishes what it wrote; otherwise an
/// orphaned outbox is taken over (a young one belongs to its writer).
async fn announce(
    deps: &Deps,
    pool_id: &IntentId,
    created: Option<BatchIntent>,
) -> Result<(), StageError> {
    match created {
        Some(shared) => {
            publish_owned(deps, shared).await?;
        }
        None => {
            if let Some(old) = deps.store.get(pool_id).await? {
                take_over(deps, &old).await?;
            }
        }
    }
    Ok(())
}

fn member_of(m: &BatchIntent) -> PoolMember {
    PoolMember {
        intent_id: m.intent_id.clone(),
        job_id: m.job_id.clone(),
        records: m.pool.as_ref().map_or(0, |p| p.records),
    }
}

/// Version-conditional claim of one member for `pool`; None if it left (cancelled, or taken
/// by another path) meanwhile.
async fn claim(
    deps: &Deps,
    m: BatchIntent,
    pool: &IntentId,
) -> Result<Option<BatchIntent>, StageError> {
    claim_with(deps, m, |next, now| next.seal_into(pool, now)).await
}

/// Version-conditional claim of one member for the on-demand path.
async fn claim_on_demand(deps: &Deps, m: BatchIntent) -> Result<Option<BatchIntent>, StageError> {
    claim_with(deps, m, |next, now| next.take_on_demand(now)).await
}

/// Applies `take` (Ok(true): changed, Ok(false): already so, Err: refused) and saves it with a
/// version check, re-reading on a lost race. The member as stored after, or None if refused.
async fn claim_with(
    deps: &Deps,
    m: BatchIntent,
    take: impl Fn(&mut BatchIntent, chrono::DateTime<chrono::Utc>) -> Result<bool, Refused>,
) -> Result<Option<BatchIntent>, StageError> {
    let take = &take;
    let claimed = cas_loop(m, move |m: BatchIntent| async move {
        let expected = m.version;
        let mut next = m.clone();
        match take(&mut next, deps.clock.now()) {
            Ok(false) => return Ok(Cas::Done(Some(m))),
            Ok(true) => match save(deps, next, expected).await? {
                Saved::Written(i) => return Ok(Cas::Done(Some(*i))),
                Saved::Stale(_) => {}
            },
            Err(_) => return Ok(Cas::Done(None)),
        }
        match deps.store.get(&m.intent_id).await? {
            Some(fresh) => Ok(Cas::Again(fresh)),
            None => Ok(Cas::Done(None)),
        }
    })
    .await?;
    // Every attempt lost its race: not claimed this time (the next pass tries again).
    Ok(claimed.flatten())
}

/// Creates (conditionally) the shared job's intent and announces it; it then runs through the
/// same stages as any intent.
async fn create_shared(
    deps: &Deps,
    pool_id: IntentId,
    members: &[BatchIntent],
    pad_to: u64,
) -> Result<(), StageError> {
    let created = write_shared(deps, &pool_id, members, pad_to).await?;
    announce(deps, &pool_id, created).await
}

/// Runs a member's records on-demand (skipping any that already succeeded), stores their
/// results and ends the member, holding the member's lease (`app::lease`): an overlapping pass
/// finds it held and leaves the member to its holder.
async fn run_member_on_demand(deps: &Deps, m: BatchIntent) -> Result<(), StageError> {
    let key = format!("on-demand-member#{}", m.intent_id);
    let Some(lease) = crate::app::lease::Lease::take(deps, key).await? else {
        tracing::info!(intent_id = %m.intent_id, "another runner holds this member's on-demand run");
        return Ok(());
    };
    let ran = run_member_held(deps, m, &lease).await;
    lease.release(deps).await;
    ran
}

async fn run_member_held(
    deps: &Deps,
    m: BatchIntent,
    lease: &crate::app::lease::Lease,
) -> Result<(), StageError> {
    let limits = on_demand::Limits::for_call(deps, &m);
    let done = crate::app::results::all_results(deps, &m.intent_id).await?;
    let succeeded: HashMap<RecordId, ImageResult> = done
        .into_iter()
        .filter(|r| r.status == ResultStatus::Succeeded)
        .map(|r| (r.record_id.clone(), r))
        .collect();
    let images = crate::app::lists::images(deps, &m).await?;
    // A member's own part: its lines carry `REC{image index}` (parts written before
    // Bedrock-format record ids carry the record id itself).
    let image_of = |rid: &str| match image_index_of(rid) {
        Some(index) => images.get(index).filter(|i| i.index == index),
        None => RecordId::parse(rid)
            .ok()
            .and_then(|r| images.iter().find(|i| i.record_id == r)),
    };
    let wanted = |rid: &str| image_of(rid).is_some_and(|i| !succeeded.contains_key(&i.record_id));
    let take = |rid: String, input| {
        let image = image_of(&rid)?;
        Some(Pending {
            record_id: image.record_id.clone(),
            index: image.index,
            key: image.key.clone(),
            model_input: input,
            attempts: 0,
        })
    };
    let parts = m
        .jobs
        .iter()
        .flat_map(crate::domain::intent::BatchJob::part_uris);
    let mut inputs = on_demand::PartInputs::new(parts.collect());
    loop {
        let mut chunk = inputs.next_chunk(deps, wanted, take).await?;
        let last = chunk.len() < on_demand::CHUNK;
        if !lease.renew(deps).await? || !run_chunk(deps, &m, &mut chunk, &limits).await? {
            return Ok(()); // cancelled meanwhile
        }
        if last {
            break;
        }
    }
    finish_member(deps, &m.intent_id, None).await
}

/// Runs and stores one chunk of a member's records; false if the member was cancelled while
/// it ran (its answers are dropped, as its status says).
async fn run_chunk(
    deps: &Deps,
    m: &BatchIntent,
    pending: &mut Vec<Pending>,
    limits: &on_demand::Limits,
) -> Result<bool, StageError> {
    let asked = pending.len();
    let records = std::mem::take(pending);
    let mut results = on_demand::run(deps, &m.model_id, records, limits).await;
    let owner = |_: &RecordId| m.intent_id.clone();
    crate::app::reask::reask_flagged(deps, m, &mut results, (owner, limits.until)).await?;
    let live = deps
        .store
        .get(&m.intent_id)
        .await?
        .is_some_and(|i| i.status == IntentStatus::Pooled);
    if live && !results.is_empty() {
        crate::app::results::put_own(deps, &m.intent_id, &results).await?;
    }
    if live && results.len() < asked {
        // Bedrock refused some past the call's budget: the next pass resumes the member.
        return Err(StageError::Retryable(crate::ports::PortError::new(
            crate::ports::ErrorKind::Throttled,
            format!("{} records still refused on-demand", asked - results.len()),
        )));
    }
    Ok(live)
}

/// Slots of the model named `model` in use now (`app::slots`).
async fn slots_taken(deps: &Deps, model: &str) -> Result<u32, StageError> {
    let model = crate::domain::ids::ModelId::parse(model)
        .map_err(|e| StageError::Permanent(format!("pool model: {e}")))?;
    Ok(crate::app::slots::held(deps, &model).await?.0)
}
