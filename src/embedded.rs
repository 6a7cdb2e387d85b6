//! The embedded runtime: wires the embedded adapters into `Deps` and plays the part of
//! EventBridge rules, SQS event source mappings and Lambda. Each queue's messages are handed
//! to the same handler the Lambda runs, as a real `SqsEvent`; only the messages not reported
//! in `batchItemFailures` are deleted.

use anyhow::Context as _;
use chrono::Duration;
use sha2::Digest as _;
use shared::adapters::clock::{ManualClock, SystemClock};
use shared::adapters::embedded::bedrock_emulator::{BedrockEmulator, EmulatorOptions};
use shared::adapters::embedded::bus::{BusOptions, SqliteBus};
use shared::adapters::embedded::db::Db;
use shared::adapters::embedded::faults::{wrap_deps, FaultPlan};
use shared::adapters::embedded::objects::FsObjectStore;
use shared::adapters::embedded::runtime_emulator::RuntimeEmulator;
use shared::adapters::embedded::store::SqliteStore;
use shared::app::outbox::sweep_outboxes;
use shared::app::Deps;
use shared::domain::bedrock::S3Uri;
use shared::domain::ids::ObjectKey;
use shared::domain::settings::Settings;
use shared::ports::{Clock, IntentStore as _, ObjectStore as _};
use shared::topology::Queue;
use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// SQS's largest batch for a Lambda event source mapping without a batching window.
const BATCH_SIZE: usize = 10;

#[derive(Debug, Clone)]
pub struct EmbeddedOptions {
    pub data_dir: PathBuf,
    pub settings: Settings,
    pub bus: BusOptions,
    pub emulator: EmulatorOptions,
    /// A manual clock that the runner moves forward instead of sleeping (tests).
    pub manual_clock: bool,
    /// Where the manual clock starts (None: now), e.g. nights ago (tests).
    pub clock_start: Option<chrono::DateTime<chrono::Utc>>,
    /// Put every port the stages use behind this fault plan (tests).
    pub faults: Option<Arc<FaultPlan>>,
    /// Run the reconciler whenever the pipeline is otherwise idle, as its schedule would.
    pub reconcile_when_idle: bool,
    /// Make the store's secondary indexes see each write this much later, as DynamoDB's
    /// eventually consistent GSIs may (`--index-lag-ms`; tests).
    pub index_lag: Option<Duration>,
}

impl EmbeddedOptions {
    pub fn new(data_dir: impl Into<PathBuf>) -> Self {
        let mut settings = Settings::local("local");
        // The emulator's own pace is the default a local run plans deadlines on, as a deploy
        // plans on its jobs' history: a job moves one status a step, several steps a second
        // (seconds from create to end), and the runtime emulator answers at once.
        settings.estimate_overhead_secs = 10;
        settings.estimate_secs_per_image = 0.01;
        settings.deadline_margin_secs = 10;
        // Local receivers: http and this machine's addresses (never when deployed).
        settings.webhook_local = true;
        settings.on_demand_rate = shared::domain::deadline::OnDemandRate {
            requests_per_minute: 6_000.0,
            tokens_per_minute: 100_000_000.0,
        };
        let emulator = EmulatorOptions::new(settings.quotas.clone());
        Self {
            data_dir: data_dir.into(),
            settings,
            bus: BusOptions::default(),
            emulator,
            manual_clock: false,
            clock_start: None,
            faults: None,
            reconcile_when_idle: true,
            index_lag: None,
        }
    }
}

/// The event S3 sends to EventBridge when an object is stored.
pub fn object_created_event(
    bucket: &str,
    key: &str,
    size: u64,
    etag: &str,
    time: chrono::DateTime<chrono::Utc>,
) -> serde_json::Value {
    serde_json::json!({
        "version": "0",
        "id": uuid::Uuid::new_v4().to_string(),
        "detail-type": "Object Created",
        "source": "aws.s3",
        "account": "123456789012",
        "time": time.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        "region": "us-east-1",
        "resources": [format!("arn:aws:s3:::{bucket}")],
        "detail": {
            "version": "0",
            "bucket": {"name": bucket},
            "object": {"key": key, "size": size, "etag": etag, "sequencer": "00"},
            "request-id": "EMBEDDED",
            "requester": "123456789012",
            "reason": "PutObject"
        }
    })
}

enum RunClock {
    System,
    Manual(Arc<ManualClock>),
}

/// The whole pipeline on one machine.
pub struct Embedded {
    pub deps: Deps,
    pub store: Arc<SqliteStore>,
    pub bus: Arc<SqliteBus>,
    pub emulator: Arc<BedrockEmulator>,
    /// InvokeModel, for the on-demand path.
    pub runtime: Arc<RuntimeEmulator>,
    pub objects: Arc<FsObjectStore>,
    clock: RunClock,
    reconcile_when_idle: bool,
}

impl std::fmt::Debug for Embedded {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Embedded")
    }
}

/// What one pass of the runner did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Step {
    pub delivered: usize,
    pub failed: usize,
    pub jobs_ticked: usize,
    pub swept: usize,
}

impl Step {
    fn did_work(&self) -> bool {
        self.delivered + self.jobs_ticked + self.swept > 0
    }
}

/// The run's clock: a manual one the runner moves (tests), else the system's.
fn clocks(opts: &EmbeddedOptions) -> (Arc<dyn Clock>, RunClock) {
    if opts.manual_clock {
        let c = Arc::new(ManualClock::new(
            opts.clock_start.unwrap_or_else(chrono::Utc::now),
        ));
        (c.clone(), RunClock::Manual(c))
    } else {
        (Arc::new(SystemClock), RunClock::System)
    }
}

/// The InvokeModel emulator: under `on-demand-throttle` it keeps the configured requests a
/// minute.
fn runtime_of(opts: &EmbeddedOptions, clock: Arc<dyn Clock>) -> RuntimeEmulator {
    use shared::adapters::embedded::bedrock_emulator::fault_plan::BedrockFault;
    let throttle = opts
        .emulator
        .faults
        .contains(&BedrockFault::OnDemandThrottle)
        .then_some(opts.settings.on_demand_rate.requests_per_minute as usize);
    match throttle {
        Some(per_minute) => RuntimeEmulator::throttled(per_minute, clock),
        None => RuntimeEmulator::new(),
    }
    .with_local_model(opts.emulator.local_model)
}

impl Embedded {
    pub fn open(opts: EmbeddedOptions) -> anyhow::Result<Self> {
        shared::adapters::data_dir::private_dir(&opts.data_dir)
            .with_context(|| format!("cannot create data dir {}", opts.data_dir.display()))?;
        shared::adapters::data_dir::require_case_sensitive(&opts.data_dir)?;
        let (clock, run_clock) = clocks(&opts);
        let db = Db::open(&opts.data_dir.join("state.db"))?;
        let store = Arc::new(match opts.index_lag {
            Some(lag) => SqliteStore::with_index_lag(db.clone(), lag, clock.clone())?,
            None => SqliteStore::new(db.clone())?,
        });
        let history = Arc::new(shared::adapters::embedded::history::SqliteHistory::new(
            db.clone(),
        )?);
        let duplicates =
            Arc::new(shared::adapters::embedded::duplicates::SqliteDuplicates::new(db.clone())?);
        let nights = Arc::new(shared::adapters::embedded::nights::SqliteNights::new(
            db.clone(),
        )?);
        let bus = Arc::new(SqliteBus::new(db, clock.clone(), opts.bus.clone())?);
        let objects = Arc::new(FsObjectStore::new(opts.data_dir.join("s3")));
        let emulator = Arc::new(BedrockEmulator::new(
            Db::open(&opts.data_dir.join("bedrock-emulator.db"))?,
            objects.clone(),
            bus.clone(),
            clock.clone(),
            opts.emulator.clone(),
        )?);
        let runtime = Arc::new(runtime_of(&opts, clock.clone()));
        let mut deps = Deps {
            store: store.clone(),
            results: store.clone(),
            slots: store.clone(),
            allowances: store.clone(),
            rates: store.clone(),
            leases: store.clone(),
            history,
            duplicates,
            nights,
            webhooks: Arc::new(shared::adapters::webhook_http::HttpWebhooks),
            objects: objects.clone(),
            bus: bus.clone(),
            bedrock: emulator.clone(),
            on_demand: runtime.clone(),
            uploads: store.clone(),
            clock,
            settings: Arc::new(opts.settings),
        };
        if let Some(plan) = &opts.faults {
            deps = wrap_deps(&deps, plan);
        }
        Ok(Self {
            deps,
            store,
            bus,
            emulator,
            runtime,
            objects,
            clock: run_clock,
            reconcile_when_idle: opts.reconcile_when_idle,
        })
    }

    pub fn data_dir_files(dir: &Path) -> [PathBuf; 3] {
        [
            dir.join("state.db"),
            dir.join("bedrock-emulator.db"),
            dir.join("s3"),
        ]
    }

    /// Stores an image in the uploads bucket, as the upload pipeline would, and delivers the
    /// S3 "Object Created" event to intake, as S3's EventBridge notification would (which
    /// fills the uploads index).
    pub async fn upload(&self, key: &str, bytes: Vec<u8>) -> anyhow::Result<ObjectKey> {
        let key = ObjectKey::parse(key).map_err(|e| anyhow::anyhow!("bad key {key:?}: {e}"))?;
        let etag = hex::encode(&sha2::Sha256::digest(&bytes)[..16]);
        let size = bytes.len() as u64;
        self.objects
            .put(
                &S3Uri::object(&self.deps.settings.uploads_bucket, &key),
                bytes,
            )
            .await?;
        let event = object_created_event(
            self.deps.settings.uploads_bucket.as_str(),
            key.as_str(),
            size,
            &etag,
            self.deps.clock.now(),
        );
        let answer = self.intake(event).await;
        anyhow::ensure!(
            answer["statusCode"] == 200,
            "indexing {key} failed: {answer}"
        );
        Ok(key)
    }

    /// Intake's HTTP API over this backend's ports, as the `intake` Lambda builds it.
    fn intake_app(&self) -> axum::Router {
        intake::router(self.deps.clone(), intake::Auth::Authorizer)
    }

    /// Delivers an event to intake as deployed: an API Gateway event (it has a
    /// `requestContext`) to the HTTP Lambda, anything else to `intake-events`. An API event the
    /// runtime cannot type fails that invocation, which API Gateway answers 500.
    pub async fn intake(&self, event: serde_json::Value) -> serde_json::Value {
        if event.get("requestContext").is_none() {
            return intake::events::handle(&self.deps, event).await;
        }
        let answer = match serde_json::from_value(event) {
            Ok(request) => {
                serde_json::to_value(intake::http::answer(&self.intake_app(), request).await)
            }
            Err(e) => Err(e),
        };
        answer.unwrap_or_else(|e| {
            tracing::error!(error = %e, "the API event failed its invocation");
            serde_json::json!({"statusCode": 500, "body": r#"{"message":"Internal Server Error"}"#})
        })
    }

    /// Delivers one batch from every queue to its handler and ticks the emulator once.
    pub async fn step(&self) -> anyhow::Result<Step> {
        let mut step = Step::default();
        for queue in Queue::ALL {
            let (delivered, failed) = self.deliver(queue).await?;
            step.delivered += delivered;
            step.failed += failed;
        }
        step.jobs_ticked = self.emulator.tick().await?;
        Ok(step)
    }

    /// Hands up to one batch of `queue` to its handler. Returns (delivered, failed).
    pub async fn deliver(&self, queue: Queue) -> anyhow::Result<(usize, usize)> {
        let messages = self.bus.receive(queue, BATCH_SIZE)?;
        if messages.is_empty() {
            return Ok((0, 0));
        }
        let event = shared::adapters::sqs_edge::sqs_event(
            messages
                .iter()
                .map(|m| (Some(m.message_id.clone()), None, Some(m.body.clone()))),
        );
        let response = match queue {
            Queue::ManifestBuilder => manifest_builder::handle(&self.deps, event).await,
            Queue::Submitter => submitter::handle(&self.deps, event).await,
            Queue::StatusWatcher => status_watcher::handle(&self.deps, event).await,
            Queue::Webhooks => webhook_sender::handle(&self.deps, event).await,
        };
        let failed: HashSet<String> = response
            .batch_item_failures
            .into_iter()
            .map(|f| f.item_identifier)
            .collect();
        for m in &messages {
            if failed.contains(&m.message_id) {
                self.bus
                    .nack(m.seq, m.receive_count, "reported in batchItemFailures")?;
            } else {
                self.bus.ack(m.seq)?;
            }
        }
        Ok((messages.len(), failed.len()))
    }

    /// When something waits to be done later (a delayed retry, an owed outbox, a lagging index,
    /// a backoff, a cut-off, the emulator's held-back output), if anything does.
    async fn next_wake(
        &self,
        now: chrono::DateTime<chrono::Utc>,
    ) -> anyhow::Result<Option<chrono::DateTime<chrono::Utc>>> {
        let retry_at = self.bus.next_visible_at()?;
        let grace = Duration::seconds(self.deps.settings.outbox_grace_secs);
        // The earliest owed outbox, however far ahead (a webhook's next try is staged for
        // its time on the schedule, up to a day ahead).
        let outbox_at = self
            .store
            .list_pending_outbox(now + Duration::days(7), 1)
            .await?
            .first()
            .and_then(|i| i.outbox.as_ref().map(|o| o.staged_at + grace));
        // A lagging index shows what it hides now at this time: a later pass sees it.
        let index_at = self.store.index_catches_up_at()?;
        // An intent Bedrock told "not now" waits out its backoff; the reconciler wakes it.
        let backoff_at = match shared::app::slots::next_backoff_end(&self.deps).await {
            Ok(at) => at,
            Err(e) => {
                // Like a failed scheduled pass: look again a moment later.
                tracing::warn!(error = %e, "reading backoffs failed");
                Some(now + Duration::seconds(1))
            }
        };
        // A job that must be stopped at its deadline's cut-off.
        let cutoff_at = match shared::app::deadline::next_cutoff(&self.deps).await {
            Ok(at) => at,
            Err(e) => {
                tracing::warn!(error = %e, "reading cut-offs failed");
                Some(now + Duration::seconds(1))
            }
        };
        // Output the emulator holds back (`late-output`) lands then; the next pass polls.
        let emulator_at = self.emulator.next_event_at();
        Ok([
            retry_at,
            outbox_at,
            index_at,
            backoff_at,
            cutoff_at,
            emulator_at,
        ]
        .into_iter()
        .flatten()
        .min())
    }

    /// Runs until nothing is left to do: every queue drained (or dead-lettered), every job
    /// terminal, every outbox published. Waits for delayed retries by moving the manual
    /// clock, or by sleeping on the system clock. `on_step` sees each pass.
    pub async fn run_until_idle(
        &self,
        max_steps: usize,
        mut on_step: impl FnMut(&Step),
    ) -> anyhow::Result<usize> {
        for n in 0..max_steps {
            let mut step = self.step().await?;
            if !step.did_work() {
                // The scheduled passes. A failed pass is tried again on the next one, as a
                // scheduled Lambda would be.
                step.swept = if self.reconcile_when_idle {
                    // The reconciler Lambda's own handler, as its schedule would invoke it.
                    match reconciler::handle(&self.deps, serde_json::json!({})).await {
                        Ok(r) => [
                            "applied",
                            "reannounced",
                            "swept",
                            "poolsSealed",
                            "pooledOnDemand",
                            "pooledResumed",
                            "deadlineStopped",
                            "deadlineMovedOnDemand",
                            // Work a pass left for the next one (a member's on-demand run out
                            // of its call's time): the next scheduled pass takes it.
                            "failed",
                        ]
                        .iter()
                        .map(|k| r[*k].as_u64().unwrap_or(0) as usize)
                        .sum(),
                        Err(e) => {
                            tracing::warn!(error = %e, "reconcile pass failed");
                            1
                        }
                    }
                } else {
                    match sweep_outboxes(&self.deps, 100).await {
                        Ok(n) => n,
                        Err(e) => {
                            tracing::warn!(error = %e, "sweep pass failed");
                            1
                        }
                    }
                };
            }
            on_step(&step);
            if step.did_work() {
                continue;
            }
            // Nothing ready now: is anything waiting for later?
            let now = self.deps.clock.now();
            let Some(wake) = self.next_wake(now).await? else {
                return Ok(n + 1);
            };
            match &self.clock {
                RunClock::Manual(c) => c.advance_to(wake),
                RunClock::System => {
                    let wait = (wake - now).to_std().unwrap_or_default();
                    tokio::time::sleep(wait.min(std::time::Duration::from_secs(5))).await;
                }
            }
        }
        anyhow::bail!("pipeline still busy after {max_steps} steps")
    }

    /// The manual clock, when the runtime was opened with one.
    pub fn manual_clock(&self) -> Option<&ManualClock> {
        match &self.clock {
            RunClock::Manual(c) => Some(c),
            RunClock::System => None,
        }
    }
}
