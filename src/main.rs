//! `batch-orchestrator`: run the pipeline on the embedded backend (no AWS account needed).

use anyhow::{bail, Context as _};
use batch_orchestrator::embedded::{Embedded, EmbeddedOptions};
use batch_orchestrator::{progress, report, samples};
use clap::{Parser, Subcommand};
use serde_json::json;
use shared::domain::ids::{IntentId, JobId, UserId};
use shared::domain::intent::{user_upload_prefix, BatchIntent};
use shared::domain::status::IntentStatus;
use shared::topology::Queue;
use std::path::PathBuf;

#[cfg(feature = "aws")]
mod aws_commands;

#[derive(Parser)]
#[command(
    name = "batch-orchestrator",
    version,
    about = "Receipt images -> Amazon Bedrock batch inference jobs, idempotently"
)]
struct Cli {
    /// Where the embedded backend keeps its database, emulator state and objects.
    #[arg(
        long,
        global = true,
        env = "BATCH_ORCHESTRATOR_DATA_DIR",
        default_value = ".batch-orchestrator"
    )]
    data_dir: PathBuf,
    /// Minimum records per Bedrock job, which the emulator enforces too (overrides
    /// MIN_RECORDS_PER_JOB; Bedrock's default quota is 100).
    #[arg(long, global = true)]
    min_records: Option<u64>,
    /// Seconds a batch below the minimum waits in its pool before the policy applies
    /// (overrides POOL_DEADLINE_SECS; the default is the service's, 6 hours).
    #[arg(long, global = true)]
    pool_deadline_secs: Option<i64>,
    /// What a pool below the minimum does at its deadline: wait, pad or on_demand (overrides
    /// BELOW_MINIMUM_POLICY).
    #[arg(long, global = true)]
    below_minimum: Option<shared::domain::settings::BelowMinimum>,
    /// Make the store's secondary indexes (a user's list, intents by status, owed outboxes) see
    /// each write this many milliseconds late, as DynamoDB's GSIs may. 0: at once.
    #[arg(long, global = true, env = "BO_INDEX_LAG_MS", default_value_t = 0)]
    index_lag_ms: u64,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the whole pipeline over generated sample receipts and print each image's result.
    Demo {
        /// How many sample receipts to generate.
        #[arg(long, default_value_t = 12)]
        images: usize,
    },
    /// Write phone-like sample photos to a folder, to try normalization with: a 12 MP JPEG
    /// stored sideways (EXIF orientation 6), a 50 MP JPEG, a screenshot PNG, a 12 MP WebP, and
    /// two bad files (a PNG whose header claims 60000x60000, a truncated JPEG).
    SamplePhotos {
        /// The folder to write them to (made if missing).
        dir: PathBuf,
    },
    /// Store image files (or every file of a folder) in the uploads bucket under
    /// uploads/{user}/{day}/.
    Upload {
        #[arg(long)]
        user: String,
        /// YYYY-MM-DD; defaults to today.
        #[arg(long)]
        day: Option<String>,
        /// Image files, or folders whose files (directly inside) are uploaded.
        files: Vec<PathBuf>,
    },
    /// Record a batch intent (as a trusted direct invoke) and print the 202 answer.
    Submit {
        #[arg(long)]
        user: String,
        #[arg(long)]
        intent: String,
        /// Object keys in the uploads bucket (repeat); or use --day.
        #[arg(long = "image")]
        images: Vec<String>,
        #[arg(long)]
        day: Option<String>,
        #[arg(long)]
        model: Option<String>,
        /// Also run the pipeline until it is idle.
        #[arg(long)]
        wait: bool,
    },
    /// Deliver queued messages and advance Bedrock jobs until nothing is left to do.
    Run,
    /// Show an intent (by jobId, or by intentId with the user who sent it) and its per-image
    /// results.
    Status {
        id: String,
        /// The user whose intentId `id` is (intentIds are scoped per user).
        #[arg(long)]
        user: Option<String>,
    },
    /// Serve the HTTP API (`/api/batch/jobs…`) on localhost over the embedded backend, and run
    /// the pipeline in the background. Callers send `Authorization: Bearer <token>` (see
    /// `token`), verified as API Gateway's JWT authorizer would.
    Serve {
        #[arg(long, default_value_t = 8080)]
        port: u16,
    },
    /// Print a bearer token for `serve`, signed with the key in the data dir.
    Token {
        /// The user the token names (its `sub` claim).
        #[arg(long)]
        user: String,
        /// Seconds until it expires.
        #[arg(long, default_value_t = 86_400)]
        ttl_secs: u64,
    },
    /// Inspect or replay the embedded backend's dead-letter queues.
    Dlq {
        #[command(subcommand)]
        action: DlqAction,
    },
    /// Move messages from an SQS dead-letter queue back to its source queue (AWS, or any
    /// endpoint in AWS_ENDPOINT_URL). Each message is deleted only after its send succeeded.
    ReplayDlq {
        /// The DLQ, by name or URL.
        #[arg(long)]
        dlq: String,
        /// The source queue, by name or URL.
        #[arg(long)]
        to: String,
        /// At most this many messages.
        #[arg(long, default_value_t = 100)]
        limit: usize,
        /// Show what would move; move nothing.
        #[arg(long)]
        dry_run: bool,
    },
    /// Create the stack's tables, buckets, queues, bus and rules on a local AWS emulator
    /// (moto server) and print the functions' environment.
    LocalAwsSetup {
        /// The emulator's endpoint, e.g. http://127.0.0.1:5000.
        #[arg(long)]
        endpoint: String,
        #[arg(long, default_value = "bo-local")]
        prefix: String,
        #[arg(long, default_value_t = 5)]
        max_receive_count: u32,
        #[arg(long, default_value_t = 60)]
        visibility_secs: u32,
    },
    /// Serve the Bedrock batch control plane (Create/Get/List/Stop model invocation job) over
    /// HTTP, reading manifests from and writing outputs to S3 at --endpoint and publishing
    /// state changes to its default event bus.
    BedrockEmulator {
        /// The S3/EventBridge endpoint (moto server).
        #[arg(long)]
        endpoint: String,
        #[arg(long, default_value_t = 4599)]
        port: u16,
        /// Milliseconds between job steps.
        #[arg(long, default_value_t = 1000)]
        tick_ms: u64,
    },
}

#[derive(Subcommand)]
enum DlqAction {
    /// List dead letters, optionally of one queue.
    List {
        #[arg(long)]
        queue: Option<String>,
    },
    /// Move dead letters back to their queue.
    Replay {
        #[arg(long)]
        queue: String,
        #[arg(long, default_value_t = 100)]
        limit: usize,
        /// Show what would move, move nothing.
        #[arg(long)]
        dry_run: bool,
    },
}

fn init_tracing() {
    let filter =
        tracing_subscriber::EnvFilter::try_from_env("RUST_LOG").unwrap_or_else(|_| "warn".into());
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
}

/// The embedded backend's options in `dir`: the local settings, then the environment the
/// Lambdas read (ALLOWED_MODEL_IDS, the quotas, the pool, prices, …; the same variables and
/// defaults), then the flags given.
fn options_in(cli: &Cli, dir: &std::path::Path) -> anyhow::Result<EmbeddedOptions> {
    // One settings path: the Lambdas' defaults, then the same environment variables they
    // read (shared::config), then the flags given.
    let mut opts = EmbeddedOptions::new(dir);
    let env: std::collections::HashMap<String, String> = std::env::vars().collect();
    opts.settings = shared::config::settings_from_map(&env, opts.settings)?;
    if let Some(min) = cli.min_records {
        opts.settings.quotas.min_records_per_job = min;
    }
    if let Some(secs) = cli.pool_deadline_secs {
        opts.settings.pool_deadline_secs = secs;
    }
    if let Some(policy) = cli.below_minimum {
        opts.settings.below_minimum = policy;
    }
    opts.emulator.quotas = opts.settings.quotas.clone();
    opts.index_lag =
        (cli.index_lag_ms > 0).then(|| chrono::Duration::milliseconds(cli.index_lag_ms as i64));
    Ok(opts)
}

fn options(cli: &Cli) -> anyhow::Result<EmbeddedOptions> {
    options_in(cli, &cli.data_dir)
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    init_tracing();
    let cli = Cli::parse();
    match &cli.command {
        Command::Demo { images } => demo(&cli, *images).await,
        Command::SamplePhotos { dir } => {
            for path in batch_orchestrator::samples::write_phone_samples(dir)? {
                println!("{}", path.display());
            }
            Ok(())
        }
        Command::Upload { user, day, files } => {
            let app = Embedded::open(options(&cli)?)?;
            let user = UserId::parse(user).map_err(|e| anyhow::anyhow!("--user: {e}"))?;
            let day = day
                .clone()
                .unwrap_or_else(|| chrono::Utc::now().format("%Y-%m-%d").to_string());
            let files = expand_folders(files)?;
            let bar = progress::bar(files.len() as u64, "uploading");
            for file in &files {
                let bytes = std::fs::read(file)
                    .with_context(|| format!("cannot read {}", file.display()))?;
                let name = file
                    .file_name()
                    .and_then(|n| n.to_str())
                    .context("file name is not UTF-8")?;
                let key = app
                    .upload(&format!("{}{day}/{name}", user_upload_prefix(&user)), bytes)
                    .await?;
                bar.suspend(|| println!("{key}"));
                bar.inc(1);
            }
            bar.finish_and_clear();
            Ok(())
        }
        Command::Submit {
            user,
            intent,
            images,
            day,
            model,
            wait,
        } => {
            let app = Embedded::open(options(&cli)?)?;
            let mut payload = json!({"intentId": intent, "userId": user});
            if !images.is_empty() {
                payload["images"] = json!(images);
            }
            if let Some(day) = day {
                payload["day"] = json!(day);
            }
            if let Some(model) = model {
                payload["modelId"] = json!(model);
            }
            let answer = app.intake(payload).await;
            println!("{}", serde_json::to_string_pretty(&answer)?);
            if answer["statusCode"] != 202 {
                bail!("intake refused the request");
            }
            if *wait {
                app.run_until_idle(100_000, |_| {}).await?;
                let id = IntentId::parse(intent).map_err(|e| anyhow::anyhow!("{e}"))?;
                show(
                    &app,
                    app.deps.store.get(&id).await?.context("intent vanished")?,
                )
                .await?;
            }
            Ok(())
        }
        Command::Run => {
            let app = Embedded::open(options(&cli)?)?;
            let spinner = progress::spinner();
            let mut totals = progress::PipelineTotals::default();
            let steps = app
                .run_until_idle(100_000, |step| {
                    totals.add(step);
                    spinner.set_message(totals.line());
                })
                .await?;
            spinner.finish_and_clear();
            println!("idle after {steps} steps");
            Ok(())
        }
        Command::Status { id, user } => {
            let app = Embedded::open(options(&cli)?)?;
            let intent = match JobId::parse(id) {
                Ok(job) => app.deps.store.get_by_job_id(&job).await?,
                Err(_) => {
                    let mut intent = IntentId::parse(id)
                        .map_err(|e| anyhow::anyhow!("not a jobId or intentId: {e}"))?;
                    if let Some(user) = user {
                        let user =
                            UserId::parse(user).map_err(|e| anyhow::anyhow!("--user: {e}"))?;
                        intent = IntentId::scoped(&user, &intent);
                    }
                    app.deps.store.get(&intent).await?
                }
            };
            show(
                &app,
                intent.with_context(|| format!("no intent or job {id}"))?,
            )
            .await
        }
        Command::Dlq { action } => dlq(&cli, action),
        Command::Serve { port } => serve(&cli, *port).await,
        Command::Token { user, ttl_secs } => {
            let user = shared::domain::ids::UserId::parse(user)
                .map_err(|e| anyhow::anyhow!("--user: {e}"))?;
            let key = intake::LocalKey::load_or_create(&cli.data_dir)?;
            println!("{}", key.sign(&user, *ttl_secs)?);
            Ok(())
        }
        #[cfg(feature = "aws")]
        Command::ReplayDlq {
            dlq,
            to,
            limit,
            dry_run,
        } => aws_commands::replay_dlq(dlq, to, *limit, *dry_run).await,
        #[cfg(feature = "aws")]
        Command::LocalAwsSetup {
            endpoint,
            prefix,
            max_receive_count,
            visibility_secs,
        } => {
            aws_commands::local_aws_setup(endpoint, prefix, *max_receive_count, *visibility_secs)
                .await
        }
        #[cfg(feature = "aws")]
        Command::BedrockEmulator {
            endpoint,
            port,
            tick_ms,
        } => {
            aws_commands::bedrock_emulator(
                &cli.data_dir,
                cli.min_records.unwrap_or(100),
                endpoint,
                *port,
                *tick_ms,
            )
            .await
        }
        #[cfg(not(feature = "aws"))]
        Command::ReplayDlq { .. }
        | Command::LocalAwsSetup { .. }
        | Command::BedrockEmulator { .. } => {
            bail!(
                "this command talks to AWS, and this build left the AWS SDK out (the demo and the \
                 embedded commands need none of it). Build it in: \
                 cargo run --features aws -- <command> ..."
            )
        }
    }
}

async fn show(app: &Embedded, intent: BatchIntent) -> anyhow::Result<()> {
    let shared = match intent.pool.as_ref().and_then(|p| p.sealed_into.as_ref()) {
        Some(id) => app.deps.store.get(id).await?,
        None => None,
    };
    println!("{}", report::intent_summary(&intent, shared.as_ref()));
    let results = app
        .deps
        .results
        .list_results(&intent.intent_id, None, 100_000)
        .await?;
    if !results.is_empty() {
        println!("{}", report::results_table(&results));
    }
    Ok(())
}

fn parse_queue(name: &str) -> anyhow::Result<Queue> {
    Queue::parse(name).with_context(|| {
        let names: Vec<_> = Queue::ALL.iter().map(|q| q.name()).collect();
        format!("unknown queue {name:?}; queues: {}", names.join(", "))
    })
}

fn dlq(cli: &Cli, action: &DlqAction) -> anyhow::Result<()> {
    let app = Embedded::open(options(cli)?)?;
    match action {
        DlqAction::List { queue } => {
            let queue = queue.as_deref().map(parse_queue).transpose()?;
            let dead = app.bus.dead_letters(queue)?;
            for d in &dead {
                println!(
                    "{}\t{}\treceives={}\terror={}\t{}",
                    d.queue.name(),
                    d.message_id,
                    d.receive_count,
                    d.last_error.as_deref().unwrap_or("-"),
                    d.body
                );
            }
            println!("{} dead letter(s)", dead.len());
        }
        DlqAction::Replay {
            queue,
            limit,
            dry_run,
        } => {
            let queue = parse_queue(queue)?;
            if *dry_run {
                let dead = app.bus.dead_letters(Some(queue))?;
                for d in dead.iter().take(*limit) {
                    println!("would move {} back to {}", d.message_id, queue.name());
                }
                println!("dry run: {} message(s) would move", dead.len().min(*limit));
            } else {
                let moved = app.bus.replay_dead_letters(queue, *limit)?;
                println!("moved {moved} message(s) back to {}", queue.name());
            }
        }
    }
    Ok(())
}

async fn demo(cli: &Cli, images: usize) -> anyhow::Result<()> {
    if images == 0 {
        bail!("--images must be at least 1");
    }
    // A fresh demo every time: the data dir is the demo's own.
    let dir = cli.data_dir.join("demo");
    if dir.exists() {
        std::fs::remove_dir_all(&dir).with_context(|| format!("cannot reset {}", dir.display()))?;
    }
    let mut opts = options_in(cli, &dir)?;
    // Bedrock refuses jobs under its minimum (100 by default). The demo's handful of receipts
    // is pooled like any small batch; it does not wait hours for the pool's deadline, and
    // takes the `pad` policy so it still shows a batch job end to end.
    let min = opts.settings.quotas.min_records_per_job;
    let pooled = (images as u64) < min;
    if pooled {
        opts.settings.pool_deadline_secs = 0;
        opts.settings.below_minimum = shared::domain::settings::BelowMinimum::Pad;
    }
    let app = Embedded::open(opts)?;

    println!("batch-orchestrator demo (embedded backend: SQLite + local files + Bedrock emulator)");
    println!("data: {}", dir.display());
    if pooled {
        println!(
            "note: {images} receipts are below Bedrock's minimum of {min} records per job, so they are \
             pooled; the demo's pool deadline is now and its policy `pad`: one shared batch job \
             padded to {min} records"
        );
    }
    let user = "demo-user";
    let day = chrono::Utc::now().format("%Y-%m-%d").to_string();
    let mut keys = Vec::with_capacity(images);
    for i in 1..=images {
        let key = app
            .upload(
                &format!("uploads/{user}/{day}/receipt-{i:03}.png"),
                samples::receipt_png(i),
            )
            .await?;
        keys.push(key.to_string());
    }
    println!("uploaded {images} sample receipts to uploads/{user}/{day}/");

    let intent_id = format!("demo-{}", uuid_like());
    let request = json!({
        "version": "2.0",
        "routeKey": "POST /api/batch/jobs",
        "rawPath": "/api/batch/jobs",
        "headers": {"content-type": "application/json"},
        "requestContext": {
            "http": {"method": "POST", "path": "/api/batch/jobs", "protocol": "HTTP/1.1", "sourceIp": "127.0.0.1", "userAgent": "demo"},
            "authorizer": {"jwt": {"claims": {"sub": user}, "scopes": null}},
            "requestId": "demo-request", "routeKey": "POST /api/batch/jobs", "stage": "$default", "timeEpoch": 0
        },
        "body": json!({"intentId": intent_id, "images": keys}).to_string(),
        "isBase64Encoded": false
    });
    let answer = app.intake(request.clone()).await;
    println!(
        "POST /api/batch/jobs -> {} {}",
        answer["statusCode"],
        answer["body"].as_str().unwrap_or("")
    );
    let again = app.intake(request).await;
    println!(
        "retry with the same intentId -> {} {}",
        again["statusCode"],
        again["body"].as_str().unwrap_or("")
    );

    let id = IntentId::scoped(
        &UserId::parse(user).map_err(|e| anyhow::anyhow!("{e}"))?,
        &IntentId::parse(&intent_id).map_err(|e| anyhow::anyhow!("{e}"))?,
    );
    let mut seen = 0;
    let mut step_no = 0;
    let mut progress = Vec::new();
    let steps = {
        let bus = app.bus.clone();
        app.run_until_idle(10_000, |step| {
            step_no += 1;
            let archive = bus.archive().unwrap_or_default();
            for (source, detail_type, body) in archive.iter().skip(seen) {
                let detail: serde_json::Value = serde_json::from_str(body).unwrap_or_default();
                let line = if source == "aws.bedrock" {
                    format!(
                        "bedrock  job {}",
                        detail["detail"]["status"].as_str().unwrap_or("?")
                    )
                } else {
                    let whose = if detail["detail"]["intentId"]
                        .as_str()
                        .is_some_and(|i| i.starts_with("pool-"))
                    {
                        "shared job"
                    } else {
                        "intent"
                    };
                    format!(
                        "event    {detail_type:<21} {whose} {}",
                        detail["detail"]["status"].as_str().unwrap_or("?")
                    )
                };
                progress.push(format!(
                    "step {step_no:>2}  {line}  ({} message(s) handled)",
                    step.delivered
                ));
            }
            seen = archive.len();
        })
        .await?
    };
    for line in &progress {
        println!("  {line}");
    }
    println!("pipeline idle after {steps} steps");
    let intent = app.deps.store.get(&id).await?.context("intent vanished")?;
    show(&app, intent.clone()).await?;
    println!(
        "Bedrock jobs created: {} | events published: {} | dead letters: {}",
        app.emulator.job_count()?,
        app.bus.archive()?.len(),
        app.bus.dead_letters(None)?.len()
    );
    if intent.status != IntentStatus::Completed {
        bail!("demo ended {} instead of COMPLETED", intent.status);
    }
    Ok(())
}

fn uuid_like() -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or_default();
    format!("{nanos:x}")
}

async fn serve(cli: &Cli, port: u16) -> anyhow::Result<()> {
    let mut opts = options(cli)?;
    opts.settings.api_base_url = format!("http://127.0.0.1:{port}");
    batch_orchestrator::serve::serve(opts, port).await
}

/// The files to upload: each file named, and the files directly inside each folder named (in
/// name order; hidden files and subfolders are left out).
fn expand_folders(paths: &[PathBuf]) -> anyhow::Result<Vec<PathBuf>> {
    let mut files = Vec::new();
    for path in paths {
        if !path.is_dir() {
            files.push(path.clone());
            continue;
        }
        let mut inside: Vec<PathBuf> = std::fs::read_dir(path)
            .with_context(|| format!("cannot read folder {}", path.display()))?
            .filter_map(|entry| entry.ok().map(|e| e.path()))
            .filter(|p| p.is_file())
            .filter(|p| {
                p.file_name()
                    .and_then(|n| n.to_str())
                    .is_some_and(|n| !n.starts_with('.'))
            })
            .collect();
        inside.sort();
        files.extend(inside);
    }
    Ok(files)
}
