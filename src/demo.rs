//! `batch-orchestrator demo`: the whole pipeline on the embedded backend, from generated
//! receipts to parsed results, printing each step.

use crate::commands::show;
use crate::{options_in, Cli};
use anyhow::{bail, Context as _};
use batch_orchestrator::embedded::Embedded;
use batch_orchestrator::receipts::{self, Drawn};
use serde_json::json;
use shared::adapters::embedded::local_model::LocalModel;
use shared::domain::ids::{IntentId, UserId};
use shared::domain::results::{ImageResult, Kept};
use shared::domain::status::IntentStatus;
use std::collections::BTreeMap;

pub async fn demo(cli: &Cli, images: usize) -> anyhow::Result<()> {
    if images == 0 {
        bail!("--images must be at least 1");
    }
    let app = open(cli, images)?;
    let user = "demo-user";
    let day = chrono::Utc::now().format("%Y-%m-%d").to_string();
    let today = chrono::Utc::now().date_naive();
    let mut keys = Vec::with_capacity(images);
    let mut drawn = BTreeMap::new();
    for i in 1..=images {
        let (png, receipt) = receipts::demo_receipt(i, today);
        let name = format!("receipt-{i:03}.png");
        let key = app
            .upload(&format!("uploads/{user}/{day}/{name}"), png)
            .await?;
        keys.push(key.to_string());
        drawn.insert(name, receipt);
    }
    println!("uploaded {images} receipts drawn in three fonts to uploads/{user}/{day}/");
    let intent_id = format!("demo-{}", uuid_like());
    post_twice(&app, user, &intent_id, &keys).await;
    let steps = run_and_narrate(&app).await?;
    println!("pipeline idle after {steps} steps");
    let id = IntentId::scoped(
        &UserId::parse(user).map_err(|e| anyhow::anyhow!("{e}"))?,
        &IntentId::parse(&intent_id).map_err(|e| anyhow::anyhow!("{e}"))?,
    );
    let intent = app.deps.store.get(&id).await?.context("intent vanished")?;
    show(&app, intent.clone()).await?;
    let results = app
        .deps
        .results
        .list_results(&intent.intent_id, None, 100_000)
        .await?;
    read_against_drawn(&app, &results, &drawn);
    println!("{}", review_line(&results));
    let dead = app.bus.dead_letters(None)?.len();
    let held = slots_held(&app).await?;
    println!(
        "Bedrock jobs created: {} | events published: {} | dead letters: {dead} | job slots held: {held}",
        app.emulator.job_count()?,
        app.bus.archive()?.len(),
    );
    let faults = opts_faults(&app);
    if faults.is_empty() && intent.status != IntentStatus::Completed {
        bail!("demo ended {} instead of COMPLETED", intent.status);
    }
    // Under a fault plan the end is the plan's (a refused job FAILS, error lines make it
    // PARTIALLY_COMPLETED), but nothing may be left behind.
    if !faults.is_empty() && dead + held as usize > 0 {
        bail!("demo under faults left {dead} dead letter(s) and {held} held job slot(s)");
    }
    Ok(())
}

/// Each receipt's total as the local model read it, beside the total drawn on it, and how many
/// match (to the cent); or, with synthetic answers, why there is nothing to compare.
fn read_against_drawn(app: &Embedded, results: &[ImageResult], drawn: &BTreeMap<String, Drawn>) {
    if app.emulator.local_model() != LocalModel::Tesseract {
        println!(
            "answers are synthetic (BO_LOCAL_MODEL=synthetic, or no tesseract): nothing was read"
        );
        return;
    }
    let mut table = comfy_table::Table::new();
    table.load_preset(comfy_table::presets::UTF8_FULL_CONDENSED);
    table.set_header(vec!["image", "drawn", "read", "match"]);
    let mut matched = 0;
    for r in results {
        let Some(d) = drawn.get(r.image_key.file_name()) else {
            continue;
        };
        let read = r.receipt.as_ref().and_then(|x| x.total);
        let same = read.is_some_and(|t| (t * 100.0).round() as i64 == i64::from(d.total));
        matched += usize::from(same);
        table.add_row(vec![
            r.image_key.file_name().to_string(),
            format!("{} {}", d.merchant, receipts::money(d.total)),
            format!(
                "{} {}",
                r.receipt
                    .as_ref()
                    .and_then(|x| x.merchant.clone())
                    .unwrap_or_else(|| "-".into()),
                read.map_or("-".into(), |t| format!("{t:.2}"))
            ),
            if same { "yes" } else { "no" }.to_string(),
        ]);
    }
    println!("Totals read by the local model (tesseract, standing in for the model) against the totals drawn:");
    println!("{table}");
    println!(
        "read totals match the drawn ones: {matched} of {}",
        drawn.len()
    );
}

/// What the checks made of the answers: flagged (the first answer failed a check), re-asked,
/// fixed by the re-ask (it kept the re-ask, which passes every check), still to review.
fn review_line(results: &[ImageResult]) -> String {
    let count = |f: &dyn Fn(&ImageResult) -> bool| results.iter().filter(|r| f(r)).count();
    let reviewed = count(&|r| r.needs_review.is_some());
    let flagged = count(&|r| r.reask.is_some() || r.needs_review == Some(true));
    let reasked = count(&|r| r.reask.is_some());
    let fixed = count(&|r| {
        r.reask.as_ref().is_some_and(|a| a.kept == Kept::Reask) && r.needs_review == Some(false)
    });
    let review = count(&|r| r.needs_review == Some(true));
    format!(
        "receipts checked: {reviewed} | flagged: {flagged} | re-asked: {reasked} | fixed by the re-ask: {fixed} | still needing review: {review}"
    )
}

/// The fault plan the demo's emulator plays.
fn opts_faults(app: &Embedded) -> Vec<String> {
    app.emulator
        .faults()
        .iter()
        .map(|f| f.to_string())
        .collect()
}

/// Job slots still held, over every allowed model: 0 once every job has ended.
async fn slots_held(app: &Embedded) -> anyhow::Result<u32> {
    let mut held = 0;
    for model in &app.deps.settings.allowed_models {
        held += shared::app::slots::held(&app.deps, model).await?.0;
    }
    Ok(held)
}

/// A fresh embedded backend in the demo's own data dir. Bedrock refuses jobs under its minimum
/// (100 by default): the demo's handful of receipts is pooled like any small batch, but it
/// does not wait hours for the pool's deadline, and takes the `pad` policy so it still shows a
/// batch job end to end.
fn open(cli: &Cli, images: usize) -> anyhow::Result<Embedded> {
    let dir = cli.data_dir.join("demo");
    if dir.exists() {
        std::fs::remove_dir_all(&dir).with_context(|| format!("cannot reset {}", dir.display()))?;
    }
    let mut opts = options_in(cli, &dir)?;
    // Bedrock's "not now" (create-quota-exceeded) is waited out in seconds, not minutes.
    opts.settings.create_backoff_secs = opts.settings.create_backoff_secs.min(1);
    // The demo posts to the default model: its minimum, as every stage reads it.
    let min = opts
        .settings
        .default_model()
        .map_or(opts.settings.quotas.min_records_per_job, |m| {
            opts.settings.quotas_for(m).min_records_per_job
        });
    let pooled = (images as u64) < min;
    if pooled {
        opts.settings.pool_deadline_secs = 0;
        opts.settings.below_minimum = shared::domain::settings::BelowMinimum::Pad;
    }
    let app = Embedded::open(opts)?;
    println!("batch-orchestrator demo (embedded backend: SQLite + local files + Bedrock emulator)");
    println!("data: {}", dir.display());
    if !opts_faults(&app).is_empty() {
        println!("Bedrock fault plan: {}", opts_faults(&app).join(", "));
    }
    if pooled {
        println!(
            "note: {images} receipts are below Bedrock's minimum of {min} records per job, so they are \
             pooled; the demo's pool deadline is now and its policy `pad`: one shared batch job \
             padded to {min} records"
        );
    }
    Ok(app)
}

/// Posts the request through the HTTP API's Lambda door, then again to show the cached answer.
async fn post_twice(app: &Embedded, user: &str, intent_id: &str, keys: &[String]) {
    let body = json!({"intentId": intent_id, "images": keys}).to_string();
    let request =
        batch_orchestrator::http_api::http_api_event("POST", "/api/batch/jobs", Some(user), &body);
    for label in ["POST /api/batch/jobs", "retry with the same intentId"] {
        let answer = app.intake(request.clone()).await;
        println!(
            "{label} -> {} {}",
            answer["statusCode"],
            answer["body"].as_str().unwrap_or("")
        );
    }
}

/// Runs the pipeline until idle, then prints each event it published, step by step.
async fn run_and_narrate(app: &Embedded) -> anyhow::Result<usize> {
    let mut seen = 0;
    let mut step_no = 0;
    let mut progress = Vec::new();
    let bus = app.bus.clone();
    let steps = app
        .run_until_idle(10_000, |step| {
            step_no += 1;
            let archive = bus.archive().unwrap_or_default();
            for (source, detail_type, body) in archive.iter().skip(seen) {
                let line = narrate(source, detail_type, body);
                progress.push(format!(
                    "step {step_no:>2}  {line}  ({} message(s) handled)",
                    step.delivered
                ));
            }
            seen = archive.len();
        })
        .await?;
    for line in &progress {
        println!("  {line}");
    }
    Ok(steps)
}

/// One published event as a line of the demo's story.
fn narrate(source: &str, detail_type: &str, body: &str) -> String {
    let detail: serde_json::Value = serde_json::from_str(body).unwrap_or_default();
    let status = detail["detail"]["status"].as_str().unwrap_or("?");
    if source == "aws.bedrock" {
        return format!("bedrock  job {status}");
    }
    let shared = detail["detail"]["intentId"]
        .as_str()
        .is_some_and(|i| i.starts_with("pool-"));
    let whose = if shared { "shared job" } else { "intent" };
    format!("event    {detail_type:<21} {whose} {status}")
}

fn uuid_like() -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or_default();
    format!("{nanos:x}")
}
