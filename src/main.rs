//! `batch-orchestrator`: run the pipeline on the embedded backend (no AWS account needed).

#[cfg(not(feature = "aws"))]
use anyhow::bail;
use batch_orchestrator::embedded::EmbeddedOptions;
use clap::{Parser, Subcommand};
use shared::adapters::embedded::bedrock_emulator::fault_plan::{
    parse_faults, BedrockFault, BEDROCK_FAULTS_ENV,
};
use shared::adapters::embedded::local_model::{LocalModel, LOCAL_MODEL_ENV};
use std::path::PathBuf;

#[cfg(feature = "aws")]
mod aws_commands;
mod commands;
mod demo;

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
    /// A failure of Bedrock's for the emulator to play (repeatable; also BO_BEDROCK_FAULTS,
    /// comma-separated): completed-with-errors, expire-half, create-access-denied,
    /// create-quota-exceeded, stuck-scheduled.
    #[arg(long = "bedrock-fault", global = true, value_name = "KIND")]
    bedrock_faults: Vec<BedrockFault>,
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
        /// Let webhooks go to http:// and to this machine or a private network (a receiver of
        /// your own, under test); without it only https:// public receivers are accepted.
        #[arg(long)]
        allow_local_webhooks: bool,
    },
    /// Print every user's images, tokens and USD of one UTC day (batches created that day),
    /// and the night's total: what was paid against all-batch and all-on-demand. With --since,
    /// the summaries of the ended nights from that day to today instead (the rows /ops lists).
    #[command(group(clap::ArgGroup::new("when").required(true).args(["day", "since"])))]
    Report {
        /// The day, YYYY-MM-DD.
        #[arg(long)]
        day: Option<String>,
        /// The first night, YYYY-MM-DD.
        #[arg(long)]
        since: Option<String>,
    },
    /// Print a bearer token for `serve`, signed with the key in the data dir: a user's, or with
    /// --operator an operator's (for the operator page, /ops).
    Token {
        /// The user the token names (its `sub` claim); with --operator, the operator's name.
        #[arg(long, required_unless_present = "operator")]
        user: Option<String>,
        /// An operator's token: it opens /ops, whose data is every user's.
        #[arg(long)]
        operator: bool,
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
    opts.emulator.faults = bedrock_faults(cli, &env)?;
    let (model, note) = LocalModel::choose(env.get(LOCAL_MODEL_ENV).map(String::as_str))
        .map_err(|e| anyhow::anyhow!(e))?;
    if let Some(note) = note {
        eprintln!("{note}");
    }
    opts.emulator.local_model = model;
    opts.emulator.quotas = opts.settings.quotas.clone();
    opts.emulator.model_quotas = opts.settings.model_quotas.clone();
    opts.index_lag =
        (cli.index_lag_ms > 0).then(|| chrono::Duration::milliseconds(cli.index_lag_ms as i64));
    Ok(opts)
}

/// The emulator's fault plan: BO_BEDROCK_FAULTS, then each --bedrock-fault.
fn bedrock_faults(
    cli: &Cli,
    env: &std::collections::HashMap<String, String>,
) -> anyhow::Result<Vec<BedrockFault>> {
    let mut faults = match env.get(BEDROCK_FAULTS_ENV) {
        Some(list) => {
            parse_faults(list).map_err(|e| anyhow::anyhow!("{BEDROCK_FAULTS_ENV}: {e}"))?
        }
        None => Vec::new(),
    };
    faults.extend(cli.bedrock_faults.iter().copied());
    Ok(faults)
}

fn options(cli: &Cli) -> anyhow::Result<EmbeddedOptions> {
    options_in(cli, &cli.data_dir)
}

/// Whether `command` keeps state in the data dir (the AWS-only tools and `sample-photos` do
/// not).
fn uses_data_dir(command: &Command) -> bool {
    match command {
        Command::SamplePhotos { .. } => false,
        #[cfg(feature = "aws")]
        Command::ReplayDlq { .. } | Command::LocalAwsSetup { .. } => false,
        _ => true,
    }
}

/// `submit`'s arguments, from the command line.
async fn submit(cli: &Cli) -> anyhow::Result<()> {
    let Command::Submit {
        user,
        intent,
        images,
        day,
        model,
        wait,
    } = &cli.command
    else {
        anyhow::bail!("not a submit command");
    };
    let request = commands::SubmitArgs {
        user,
        intent,
        images,
        day: day.as_deref(),
        model: model.as_deref(),
        wait: *wait,
    };
    commands::submit(cli, request).await
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    init_tracing();
    let cli = Cli::parse();
    if uses_data_dir(&cli.command) {
        // Made private if this run makes it; refused (its mode untouched) if others may write it.
        shared::adapters::data_dir::private_dir(&cli.data_dir)?;
    }
    match &cli.command {
        Command::Demo { images } => demo::demo(&cli, *images).await,
        Command::SamplePhotos { dir } => commands::sample_photos(dir),
        Command::Upload { user, day, files } => {
            commands::upload(&cli, user, day.as_deref(), files).await
        }
        Command::Submit { .. } => submit(&cli).await,
        Command::Run => commands::run(&cli).await,
        Command::Status { id, user } => commands::status(&cli, id, user.as_deref()).await,
        Command::Dlq { action } => commands::dlq(&cli, action),
        Command::Serve {
            port,
            allow_local_webhooks,
        } => commands::serve(&cli, *port, *allow_local_webhooks).await,
        Command::Report { day: Some(day), .. } => commands::report(&cli, day).await,
        Command::Report { since, .. } => commands::nights(&cli, since.as_deref()).await,
        Command::Token {
            user,
            operator,
            ttl_secs,
        } => commands::token(&cli, user.as_deref(), *operator, *ttl_secs),
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
            let env: std::collections::HashMap<String, String> = std::env::vars().collect();
            aws_commands::bedrock_emulator(
                &cli.data_dir,
                cli.min_records.unwrap_or(100),
                bedrock_faults(&cli, &env)?,
                endpoint,
                (*port, *tick_ms),
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
