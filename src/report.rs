//! Tables the CLI prints: an intent's status and its per-image results.

use comfy_table::{presets::UTF8_FULL_CONDENSED, Cell, Table};
use shared::domain::intent::BatchIntent;
use shared::domain::results::{ImageResult, ResultStatus};

/// An intent's summary; `shared` is the shared job it ran in, if it was pooled.
pub fn intent_summary(intent: &BatchIntent, shared: Option<&BatchIntent>) -> String {
    let mut lines = vec![
        format!("intent   {}", intent.client_id()),
        format!("job      {}", intent.job_id),
        format!("user     {}", intent.user_id),
        format!("status   {}", intent.status),
        format!("model    {}", intent.model_id),
        format!("path     {:?}", intent.path()),
    ];
    // A pooled intent's own planned job only held its records until they were shared.
    let jobs = match (&intent.pool, shared) {
        (Some(_), Some(s)) => {
            lines.push(format!(
                "shared   {} ({}), {} records with padding",
                s.intent_id,
                s.status,
                s.jobs.iter().map(|j| j.records()).sum::<u64>()
            ));
            &s.jobs
        }
        (Some(_), None) => &Vec::new(),
        (None, _) => &intent.jobs,
    };
    for job in jobs {
        lines.push(format!(
            "bedrock  job {} {} {} ({} records in {} part(s))",
            job.job_no,
            job.arn
                .as_ref()
                .map(|a| a.as_str())
                .unwrap_or("(not created)"),
            job.status.map(|s| s.as_str()).unwrap_or("-"),
            job.records(),
            job.parts.len()
        ));
    }
    if let Some(c) = &intent.counts {
        lines.push(format!(
            "counts   total {} processed {} succeeded {} failed {} tokens in/out {}/{}",
            c.total_record_count,
            c.processed_record_count,
            c.success_record_count,
            c.error_record_count,
            c.input_token_count,
            c.output_token_count
        ));
    }
    if let Some(f) = &intent.failure_message {
        lines.push(format!("failure  {f}"));
    }
    lines.join("\n")
}

pub fn results_table(results: &[ImageResult]) -> String {
    let mut table = Table::new();
    table.load_preset(UTF8_FULL_CONDENSED);
    table.set_header(vec![
        "#", "image", "result", "merchant", "date", "total", "items", "detail",
    ]);
    for r in results {
        let status = match r.status {
            ResultStatus::Succeeded => "COMPLETED",
            ResultStatus::Failed => "FAILED",
            ResultStatus::Skipped => "SKIPPED",
            ResultStatus::Canceled => "CANCELED",
        };
        let receipt = r.receipt.as_ref();
        let total = receipt
            .and_then(|x| {
                x.total
                    .map(|t| format!("{t:.2} {}", x.currency.as_deref().unwrap_or("")))
            })
            .unwrap_or_default();
        let detail = match (&r.error_code, &r.error_message) {
            (Some(code), Some(msg)) => format!("{code}: {msg}"),
            (None, Some(msg)) => msg.clone(),
            _ => format!("{} in / {} out tokens", r.input_tokens, r.output_tokens),
        };
        table.add_row(vec![
            Cell::new(r.image_index),
            Cell::new(r.image_key.file_name()),
            Cell::new(status),
            Cell::new(receipt.and_then(|x| x.merchant.clone()).unwrap_or_default()),
            Cell::new(receipt.and_then(|x| x.date.clone()).unwrap_or_default()),
            Cell::new(total),
            Cell::new(
                receipt
                    .map(|x| x.items.len().to_string())
                    .unwrap_or_default(),
            ),
            Cell::new(detail),
        ]);
    }
    table.to_string()
}

/// A day's usage, one row a user and the night's total: images, tokens, and USD as paid
/// against all-batch and all-on-demand.
pub fn usage_table(
    users: &std::collections::BTreeMap<
        shared::domain::ids::UserId,
        shared::domain::usage::DayUsage,
    >,
    total: &shared::domain::usage::Usage,
) -> String {
    let mut table = Table::new();
    table.load_preset(UTF8_FULL_CONDENSED).set_header(vec![
        "user",
        "images",
        "on-demand",
        "flagged",
        "input tokens",
        "output tokens",
        "cost USD",
        "all batch USD",
        "all on-demand USD",
        "copies answered",
        "tokens saved",
        "USD saved",
    ]);
    let row = |name: String, u: &shared::domain::usage::Usage| {
        vec![
            Cell::new(name),
            Cell::new(u.images),
            Cell::new(u.on_demand_images),
            Cell::new(u.flagged),
            Cell::new(u.input_tokens),
            Cell::new(u.output_tokens),
            Cell::new(format!("{:.6}", u.cost_usd)),
            Cell::new(format!("{:.6}", u.batch_usd)),
            Cell::new(format!("{:.6}", u.on_demand_usd)),
            Cell::new(u.deduplicated),
            Cell::new(u.tokens_saved),
            Cell::new(format!("{:.6}", u.usd_saved)),
        ]
    };
    for (user, u) in users {
        table.add_row(row(user.to_string(), &u.usage));
    }
    table.add_row(row("(the night)".into(), total));
    table.to_string()
}

/// The columns of a night's row: what `report --since` prints and `/ops` lists, cell for cell.
pub const NIGHT_COLUMNS: [&str; 16] = [
    "night",
    "intents",
    "images",
    "batch",
    "on-demand",
    "copies",
    "failed",
    "not sent",
    "flagged",
    "cost USD",
    "all batch USD",
    "all on-demand USD",
    "first 202",
    "last answer",
    "deadline",
    "met",
];

/// A night's row, each figure as text (times in UTC, `MM-DD HH:MM`).
pub fn night_cells(s: &shared::domain::night::NightSummary) -> Vec<String> {
    let time = |t: chrono::DateTime<chrono::Utc>| t.format("%m-%d %H:%M").to_string();
    let a = &s.answered;
    vec![
        s.night.to_string(),
        s.intents.to_string(),
        s.images.to_string(),
        a.batch.to_string(),
        a.on_demand.to_string(),
        a.copied.to_string(),
        a.failed.to_string(),
        (a.skipped + a.canceled).to_string(),
        s.usage.flagged.to_string(),
        format!("{:.4}", s.usage.cost_usd),
        format!("{:.4}", s.usage.batch_usd),
        format!("{:.4}", s.usage.on_demand_usd),
        time(s.first_accepted),
        time(s.last_answer),
        s.deadline.map(time).unwrap_or_default(),
        match s.met {
            Some(true) => "met".into(),
            Some(false) => format!("missed {}", s.missed),
            None => String::new(),
        },
    ]
}

/// The nights' table `report --since` prints, newest first.
pub fn nights_table(nights: &[shared::domain::night::NightSummary]) -> String {
    let mut table = Table::new();
    table
        .load_preset(UTF8_FULL_CONDENSED)
        .set_header(NIGHT_COLUMNS.to_vec());
    for s in nights {
        table.add_row(night_cells(s));
    }
    table.to_string()
}
