//! The embedded backend's commands: upload, submit, run, status, the dead-letter queues,
//! `serve` and its tokens. `main.rs` parses the command line and calls one of these.

use crate::{options, Cli, DlqAction};
use anyhow::{bail, Context as _};
use batch_orchestrator::embedded::Embedded;
use batch_orchestrator::{progress, report};
use serde_json::json;
use shared::domain::ids::{IntentId, JobId, UserId};
use shared::domain::intent::{user_upload_prefix, BatchIntent};
use shared::topology::Queue;
use std::path::{Path, PathBuf};

fn user_id(raw: &str) -> anyhow::Result<UserId> {
    UserId::parse(raw).map_err(|e| anyhow::anyhow!("--user: {e}"))
}

pub fn sample_photos(dir: &Path) -> anyhow::Result<()> {
    for path in batch_orchestrator::samples::write_phone_samples(dir)? {
        println!("{}", path.display());
    }
    Ok(())
}

/// Uploads files (and the files directly inside folders) under the user's prefix for `day`.
pub async fn upload(
    cli: &Cli,
    user: &str,
    day: Option<&str>,
    files: &[PathBuf],
) -> anyhow::Result<()> {
    let app = Embedded::open(options(cli)?)?;
    let user = user_id(user)?;
    let day = day.map_or_else(
        || chrono::Utc::now().format("%Y-%m-%d").to_string(),
        str::to_owned,
    );
    let files = expand_folders(files)?;
    let bar = progress::bar(files.len() as u64, "uploading");
    for file in &files {
        let bytes =
            std::fs::read(file).with_context(|| format!("cannot read {}", file.display()))?;
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

/// What `submit` asks for.
pub struct SubmitArgs<'a> {
    pub user: &'a str,
    pub intent: &'a str,
    pub images: &'a [String],
    pub day: Option<&'a str>,
    pub model: Option<&'a str>,
    pub wait: bool,
}

/// Sends a request to intake as a direct invoke; with `wait`, runs the pipeline and shows it.
pub async fn submit(cli: &Cli, args: SubmitArgs<'_>) -> anyhow::Result<()> {
    let app = Embedded::open(options(cli)?)?;
    let mut payload = json!({"intentId": args.intent, "userId": args.user});
    if !args.images.is_empty() {
        payload["images"] = json!(args.images);
    }
    if let Some(day) = args.day {
        payload["day"] = json!(day);
    }
    if let Some(model) = args.model {
        payload["modelId"] = json!(model);
    }
    let answer = app.intake(payload).await;
    println!("{}", serde_json::to_string_pretty(&answer)?);
    if answer["statusCode"] != 202 {
        bail!("intake refused the request");
    }
    if args.wait {
        app.run_until_idle(100_000, |_| {}).await?;
        let intent = IntentId::parse(args.intent).map_err(|e| anyhow::anyhow!("{e}"))?;
        let id = IntentId::scoped(&user_id(args.user)?, &intent);
        show(
            &app,
            app.deps.store.get(&id).await?.context("intent vanished")?,
        )
        .await?;
    }
    Ok(())
}

/// Delivers queued messages and advances Bedrock jobs until nothing is left to do.
pub async fn run(cli: &Cli) -> anyhow::Result<()> {
    let app = Embedded::open(options(cli)?)?;
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

/// Shows an intent by jobId, or by intentId (scoped to `user` when given).
pub async fn status(cli: &Cli, id: &str, user: Option<&str>) -> anyhow::Result<()> {
    let app = Embedded::open(options(cli)?)?;
    let intent = match JobId::parse(id) {
        Ok(job) => app.deps.store.get_by_job_id(&job).await?,
        Err(_) => {
            let mut intent =
                IntentId::parse(id).map_err(|e| anyhow::anyhow!("not a jobId or intentId: {e}"))?;
            if let Some(user) = user {
                intent = IntentId::scoped(&user_id(user)?, &intent);
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

/// Prints the summaries of the ended nights from `since` to today, newest first.
pub async fn nights(cli: &Cli, since: Option<&str>) -> anyhow::Result<()> {
    let since = since.unwrap_or_default();
    let first = shared::app::intake::parse_day(since)
        .with_context(|| format!("--since must be a date as YYYY-MM-DD, got {since:?}"))?;
    let app = Embedded::open(options(cli)?)?;
    let today = app.deps.clock.now().date_naive();
    let nights = shared::app::nights::summaries(&app.deps, first, today).await?;
    println!("{}", report::nights_table(&nights));
    println!(
        "{} night(s) with a summary from {first} to {today} (a night is the UTC day its batches were accepted)",
        nights.len()
    );
    Ok(())
}

/// Prints every user's usage on `day` and the night's total, from each result's tokens.
pub async fn report(cli: &Cli, day: &str) -> anyhow::Result<()> {
    let day = shared::app::intake::parse_day(day)
        .with_context(|| format!("--day must be a date as YYYY-MM-DD, got {day:?}"))?;
    let app = Embedded::open(options(cli)?)?;
    let intents = app.store.all()?;
    let users = shared::app::usage::day_report(&app.deps, &intents, day).await?;
    let mut total = shared::domain::usage::Usage::default();
    for u in users.values() {
        total.merge(&u.usage);
    }
    println!(
        "{}",
        batch_orchestrator::report::usage_table(&users, &total.rounded())
    );
    println!(
        "prices: {} (as of {}); batch at {} of on-demand",
        shared::domain::catalog::PRICES_SOURCE,
        shared::domain::catalog::PRICES_AS_OF,
        app.deps.settings.batch_discount
    );
    Ok(())
}

/// Serves the HTTP API on localhost over the embedded backend.
pub async fn serve(cli: &Cli, port: u16, allow_local_webhooks: bool) -> anyhow::Result<()> {
    let mut opts = options(cli)?;
    opts.settings.api_base_url = format!("http://127.0.0.1:{port}");
    // A server others can call must not post inward unless its operator says so.
    opts.settings.webhook_local = allow_local_webhooks;
    batch_orchestrator::serve::serve(opts, port).await
}

/// Prints a bearer token for `serve`, signed with the key in the data dir.
pub fn token(cli: &Cli, user: Option<&str>, operator: bool, ttl_secs: u64) -> anyhow::Result<()> {
    let key = intake::LocalKey::load_or_create(&cli.data_dir)?;
    let token = match (user, operator) {
        (Some(user), false) => key.sign(&user_id(user)?, ttl_secs)?,
        (user, true) => key.sign_operator(&user_id(user.unwrap_or("operator"))?, ttl_secs)?,
        (None, false) => {
            bail!("give --user U (a user's token) or --operator (the operator page's)")
        }
    };
    println!("{token}");
    Ok(())
}

pub async fn show(app: &Embedded, intent: BatchIntent) -> anyhow::Result<()> {
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

pub fn dlq(cli: &Cli, action: &DlqAction) -> anyhow::Result<()> {
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
