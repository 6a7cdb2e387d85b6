//! Fault injection: decorators around every port a stage uses. Each call passes two points,
//! `<port>.<op>:before` and `<port>.<op>:after`; a plan can make the n-th pass of one point
//! fail as a crash would (before: nothing happened; after: the effect happened but the caller
//! never learns). A plan with no target only records the points passed, so a test can
//! enumerate every point a clean run reaches instead of listing them by hand.

use crate::domain::bedrock::{CreateJobRequest, JobInfo, S3Uri};
use crate::domain::events::Envelope;
use crate::domain::ids::{BedrockJobArn, BucketName, IntentId, JobId, ObjectKey, RecordId};
use crate::domain::intent::BatchIntent;
use crate::domain::results::ImageResult;
use crate::domain::status::BedrockJobStatus;
use crate::ports::{
    BatchInference, Created, ErrorKind, EventBus, IntentStore, ObjectStore, PortError, ResultStore,
    SlotStore, Updated,
};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

#[derive(Debug, Default)]
struct PlanState {
    trace: Vec<String>,
    hits: HashMap<String, usize>,
    target: Option<(String, usize)>,
    fired: bool,
}

/// Where to crash, and what was passed.
#[derive(Debug, Default)]
pub struct FaultPlan {
    state: Mutex<PlanState>,
}

impl FaultPlan {
    /// Records only.
    pub fn record() -> Arc<Self> {
        Arc::new(Self::default())
    }

    /// Crashes at the `nth` (1-based) pass of `point`, once.
    pub fn crash_at(point: &str, nth: usize) -> Arc<Self> {
        let plan = Self::default();
        plan.lock().target = Some((point.to_owned(), nth));
        Arc::new(plan)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, PlanState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Every point passed, in order.
    pub fn trace(&self) -> Vec<String> {
        self.lock().trace.clone()
    }

    pub fn fired(&self) -> bool {
        self.lock().fired
    }

    fn pass(&self, point: String) -> Result<(), PortError> {
        let mut s = self.lock();
        let n = {
            let n = s.hits.entry(point.clone()).or_insert(0);
            *n += 1;
            *n
        };
        s.trace.push(point.clone());
        let hit = !s.fired
            && s.target
                .as_ref()
                .is_some_and(|(p, nth)| *p == point && *nth == n);
        if hit {
            s.fired = true;
            return Err(PortError::new(
                ErrorKind::Transient,
                format!("injected crash at {point} #{n}"),
            ));
        }
        Ok(())
    }

    async fn around<T, F>(&self, op: &str, call: F) -> Result<T, PortError>
    where
        F: std::future::Future<Output = Result<T, PortError>>,
    {
        self.pass(format!("{op}:before"))?;
        let out = call.await?;
        self.pass(format!("{op}:after"))?;
        Ok(out)
    }
}

/// The ports of a `Deps`, each behind the plan.
pub struct Faulty<T: ?Sized> {
    inner: Arc<T>,
    plan: Arc<FaultPlan>,
}

impl<T: ?Sized> Faulty<T> {
    pub fn wrap(inner: Arc<T>, plan: Arc<FaultPlan>) -> Arc<Self> {
        Arc::new(Self { inner, plan })
    }
}

#[async_trait]
impl IntentStore for Faulty<dyn IntentStore> {
    async fn create(&self, intent: &BatchIntent) -> Result<Created, PortError> {
        self.plan
            .around("store.create", self.inner.create(intent))
            .await
    }
    async fn update(
        &self,
        intent: &BatchIntent,
        expected_version: u64,
    ) -> Result<Updated, PortError> {
        self.plan
            .around("store.update", self.inner.update(intent, expected_version))
            .await
    }
    async fn get(&self, id: &IntentId) -> Result<Option<BatchIntent>, PortError> {
        self.plan.around("store.get", self.inner.get(id)).await
    }
    async fn get_by_job_id(&self, id: &JobId) -> Result<Option<BatchIntent>, PortError> {
        self.plan
            .around("store.get_by_job_id", self.inner.get_by_job_id(id))
            .await
    }
    async fn get_by_bedrock_arn(
        &self,
        arn: &BedrockJobArn,
    ) -> Result<Option<BatchIntent>, PortError> {
        self.plan
            .around(
                "store.get_by_bedrock_arn",
                self.inner.get_by_bedrock_arn(arn),
            )
            .await
    }
    async fn list_by_user(
        &self,
        user: &crate::domain::ids::UserId,
        after: Option<(DateTime<Utc>, IntentId)>,
        limit: usize,
    ) -> Result<Vec<BatchIntent>, PortError> {
        self.plan
            .around(
                "store.list_by_user",
                self.inner.list_by_user(user, after, limit),
            )
            .await
    }
    async fn list_by_status(
        &self,
        status: crate::domain::status::IntentStatus,
        updated_before: DateTime<Utc>,
        limit: usize,
    ) -> Result<Vec<BatchIntent>, PortError> {
        self.plan
            .around(
                "store.list_by_status",
                self.inner.list_by_status(status, updated_before, limit),
            )
            .await
    }
    async fn list_changed_since(
        &self,
        status: crate::domain::status::IntentStatus,
        since: DateTime<Utc>,
        limit: usize,
    ) -> Result<Vec<BatchIntent>, PortError> {
        self.plan
            .around(
                "store.list_changed_since",
                self.inner.list_changed_since(status, since, limit),
            )
            .await
    }
    async fn list_pending_outbox(
        &self,
        before: DateTime<Utc>,
        limit: usize,
    ) -> Result<Vec<BatchIntent>, PortError> {
        self.plan
            .around(
                "store.list_pending_outbox",
                self.inner.list_pending_outbox(before, limit),
            )
            .await
    }
}

#[async_trait]
impl ResultStore for Faulty<dyn ResultStore> {
    async fn put_results(
        &self,
        intent: &IntentId,
        results: &[ImageResult],
    ) -> Result<(), PortError> {
        self.plan
            .around("results.put", self.inner.put_results(intent, results))
            .await
    }
    async fn list_results(
        &self,
        intent: &IntentId,
        after: Option<&RecordId>,
        limit: usize,
    ) -> Result<Vec<ImageResult>, PortError> {
        self.plan
            .around(
                "results.list",
                self.inner.list_results(intent, after, limit),
            )
            .await
    }
}

#[async_trait]
impl SlotStore for Faulty<dyn SlotStore> {
    async fn acquire(&self, pool: &str, holder: &str, cap: u32) -> Result<bool, PortError> {
        self.plan
            .around("slots.acquire", self.inner.acquire(pool, holder, cap))
            .await
    }
    async fn release(&self, pool: &str, holder: &str, cap: u32) -> Result<(), PortError> {
        self.plan
            .around("slots.release", self.inner.release(pool, holder, cap))
            .await
    }
    async fn held(&self, pool: &str, cap: u32) -> Result<u32, PortError> {
        self.plan
            .around("slots.held", self.inner.held(pool, cap))
            .await
    }
}

#[async_trait]
impl ObjectStore for Faulty<dyn ObjectStore> {
    async fn put(&self, uri: &S3Uri, bytes: Vec<u8>) -> Result<(), PortError> {
        self.plan
            .around("objects.put", self.inner.put(uri, bytes))
            .await
    }
    async fn get(&self, uri: &S3Uri) -> Result<Vec<u8>, PortError> {
        self.plan.around("objects.get", self.inner.get(uri)).await
    }
    async fn list(&self, bucket: &BucketName, prefix: &str) -> Result<Vec<ObjectKey>, PortError> {
        self.plan
            .around("objects.list", self.inner.list(bucket, prefix))
            .await
    }
    async fn lines(&self, uri: &S3Uri) -> Result<crate::ports::LineStream, PortError> {
        self.plan.around("objects.get", self.inner.lines(uri)).await
    }
    async fn head(&self, uri: &S3Uri, n: usize) -> Result<(Vec<u8>, u64), PortError> {
        self.plan
            .around("objects.get", self.inner.head(uri, n))
            .await
    }
    async fn copy(&self, from: &S3Uri, to: &S3Uri) -> Result<(), PortError> {
        self.plan
            .around("objects.put", self.inner.copy(from, to))
            .await
    }
    async fn writer(&self, uri: &S3Uri) -> Result<Box<dyn crate::ports::ObjectWriter>, PortError> {
        // The fault point is the open; a crash mid-object is the same as one before `finish`.
        self.plan
            .around("objects.put", self.inner.writer(uri))
            .await
    }
    async fn list_range(
        &self,
        bucket: &BucketName,
        prefix: &str,
        after: Option<&str>,
        through: Option<&str>,
    ) -> Result<Vec<ObjectKey>, PortError> {
        self.plan
            .around(
                "objects.list",
                self.inner.list_range(bucket, prefix, after, through),
            )
            .await
    }
}

#[async_trait]
impl EventBus for Faulty<dyn EventBus> {
    async fn publish(&self, events: &[Envelope]) -> Result<(), PortError> {
        self.plan
            .around("bus.publish", self.inner.publish(events))
            .await
    }
}

#[async_trait]
impl BatchInference for Faulty<dyn BatchInference> {
    async fn create_job(&self, req: &CreateJobRequest) -> Result<BedrockJobArn, PortError> {
        self.plan
            .around("bedrock.create_job", self.inner.create_job(req))
            .await
    }
    async fn get_job(&self, arn: &BedrockJobArn) -> Result<JobInfo, PortError> {
        self.plan
            .around("bedrock.get_job", self.inner.get_job(arn))
            .await
    }
    async fn stop_job(&self, arn: &BedrockJobArn) -> Result<(), PortError> {
        self.plan
            .around("bedrock.stop_job", self.inner.stop_job(arn))
            .await
    }
    async fn list_jobs(&self, status: Option<BedrockJobStatus>) -> Result<Vec<JobInfo>, PortError> {
        self.plan
            .around("bedrock.list_jobs", self.inner.list_jobs(status))
            .await
    }
    async fn find_job(&self, name: &str) -> Result<Option<JobInfo>, PortError> {
        self.plan
            .around("bedrock.find_job", self.inner.find_job(name))
            .await
    }
}

/// `deps` with every port behind `plan`.
pub fn wrap_deps(deps: &crate::app::Deps, plan: &Arc<FaultPlan>) -> crate::app::Deps {
    crate::app::Deps {
        store: Faulty::wrap(deps.store.clone(), plan.clone()),
        results: Faulty::wrap(deps.results.clone(), plan.clone()),
        slots: Faulty::wrap(deps.slots.clone(), plan.clone()),
        allowances: deps.allowances.clone(),
        rates: deps.rates.clone(),
        leases: deps.leases.clone(),
        history: deps.history.clone(),
        duplicates: deps.duplicates.clone(),
        nights: deps.nights.clone(),
        webhooks: deps.webhooks.clone(),
        objects: Faulty::wrap(deps.objects.clone(), plan.clone()),
        bus: Faulty::wrap(deps.bus.clone(), plan.clone()),
        bedrock: Faulty::wrap(deps.bedrock.clone(), plan.clone()),
        on_demand: deps.on_demand.clone(),
        uploads: deps.uploads.clone(),
        clock: deps.clock.clone(),
        settings: deps.settings.clone(),
    }
}
