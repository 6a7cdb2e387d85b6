//! The night against a deadline: the real deadline planner (`domain::deadline::split`) over
//! the night's jobs in sealing order, each planned on the slot that frees first, with the same
//! duration model as the makespan (2 hours of queue, 20,000 records an hour); what batch
//! cannot end by the deadline goes on-demand at the default on-demand rate, which answers what
//! it can before the deadline. Records on-demand cannot take in time run in batch after it
//! (late, at the batch price).

use shared::domain::deadline::{split, Outlook, Pace};
use shared::domain::ids::ModelId;
use shared::domain::plan::PlannedJob;
use shared::domain::settings::Settings;

/// The slot that frees first: (its index, when).
pub fn first_free(free_at: &[f64]) -> (usize, f64) {
    free_at
        .iter()
        .copied()
        .enumerate()
        .min_by(|a, b| a.1.total_cmp(&b.1))
        .unwrap_or((0, 0.0))
}

/// The deadline line's figures.
pub struct DeadlineNight {
    pub images: u64,
    pub answered_by_deadline: u64,
    pub batch_records: u64,
    pub on_demand_records: u64,
    /// Records on-demand could not take in time: run in batch after the deadline.
    pub late_records: u64,
    pub cost_usd: f64,
    pub all_batch_usd: f64,
    pub all_on_demand_usd: f64,
}

impl DeadlineNight {
    /// How the records split: batch in time, on-demand in time, late.
    pub fn detail(&self) -> String {
        format!(
            "batch by the deadline {}, on-demand {}, late (batch after the deadline) {}",
            self.batch_records - self.late_records,
            self.on_demand_records,
            self.late_records
        )
    }

    pub fn line(&self) -> String {
        format!(
            "deadline: images={} answered_by_deadline={} batch_share={:.3} cost_usd={:.2} all_batch_usd={:.2} all_on_demand_usd={:.2}",
            self.images,
            self.answered_by_deadline,
            self.batch_records as f64 / self.images.max(1) as f64,
            self.cost_usd,
            self.all_batch_usd,
            self.all_on_demand_usd,
        )
    }
}

/// Plans `jobs` (and `below_min` records the pool runs on-demand anyway) against a deadline
/// `hours` after the night starts.
pub fn plan_night(
    settings: &Settings,
    model: &ModelId,
    jobs: &[PlannedJob],
    below_min: u64,
    hours: f64,
) -> DeadlineNight {
    let slots = settings.quotas_for(model).max_concurrent_jobs.max(1) as usize;
    let start = chrono::DateTime::<chrono::Utc>::UNIX_EPOCH;
    let deadline = start + chrono::Duration::seconds((hours * 3600.0) as i64);
    let pace = Pace {
        queue_secs: 2.0 * 3600.0,
        secs_per_record: 3600.0 / 20_000.0,
    };
    let tokens = settings.quota_tokens_per_record(model);
    let rate = settings.paced_rate(model);
    let min = settings.quotas_for(model).min_records_per_job;
    let mut free_at = vec![0.0f64; slots];
    let (mut batch, mut on_demand_wanted) = (0u64, below_min);
    for job in jobs {
        let (i, wait) = first_free(&free_at);
        let o = Outlook {
            now: start,
            deadline: Some(deadline),
            wait_secs: wait,
            pace,
            rate,
            tokens_per_record: tokens,
            min_records: min,
            margin_secs: settings.deadline_margin_secs as f64,
        };
        let s = split(job.records, &o);
        if s.batch_records > 0 {
            free_at[i] = wait + pace.job_secs(s.batch_records + job.pads);
        }
        batch += s.batch_records;
        on_demand_wanted += s.on_demand_records;
    }
    let window = hours * 3600.0 - settings.deadline_margin_secs as f64;
    let on_demand = on_demand_wanted.min(rate.records_in(window, tokens));
    let late = on_demand_wanted - on_demand;
    let images = batch + on_demand_wanted;
    let usd = |n: u64| {
        settings
            .estimate_cost(model, n as usize)
            .map_or((0.0, 0.0), |c| (c.batch_usd, c.on_demand_usd))
    };
    DeadlineNight {
        images,
        answered_by_deadline: batch + on_demand,
        batch_records: batch + late,
        on_demand_records: on_demand,
        late_records: late,
        cost_usd: usd(batch + late).0 + usd(on_demand).1,
        all_batch_usd: usd(images).0,
        all_on_demand_usd: usd(images).1,
    }
}
