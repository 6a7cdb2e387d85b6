//! A night at scale (`cargo bench --bench night`): the real planner (`domain::plan`), pool
//! packer (`domain::pool`) and own-job rule (`Settings::runs_alone`) over a synthetic night,
//! then the night's length through the concurrent-job quota. Ends with one line:
//! `night: images=N jobs=J lower_bound=L jobs_below_min=0 waves=W hours=H batch_usd=B on_demand_usd=D`.
//!
//! The night (all figures stated, none measured from a real account):
//! - 100,000 users; receipts per user from a Zipf law on 1..=2,000 (exponent 1.6, which gives a
//!   mean of about 20), so about 2,000,000 images: most users have a few, a handful hundreds;
//! - each user's day is one intent (the nightly run), on the default model;
//! - normalized receipt JPEGs of the image policy's sizes (uniform, `jpeg_range`): economy
//!   (the default) 25 to 90 KB, the range `cargo bench --bench tokens` measured for the
//!   receipt alone in grey; whole 150 to 450 KB (a 12 MP photo at a 1568 px long edge), with
//!   `BO_BENCH_IMAGE_POLICY=whole`. A base64 record line is 4/3 of that plus 600 bytes of JSON;
//!   the s3Location (Nova) line is 600 bytes. Tokens, and so the price, are the policy's
//!   estimate (`settings::input_tokens_per_image`);
//! - every intent's manifest is built before the pool pass that seals the night (the nightly
//!   run requests every day at once; the reconciler passes every 5 minutes).
//!
//! The job-duration model (an assumption: AWS publishes no batch throughput; jobs queue and
//! complete within `timeoutDurationInHours`, 24 h by default, and bedrock-batch-facts.md says a
//! job takes hours whatever its size): 2 hours of queueing and set-up per job, plus 20,000
//! records an hour. Slots: `MAX_CONCURRENT_JOBS` (10) per model, jobs started in sealing order.
//!
//! The second part measures results ingestion: the status watcher's real path over a
//! 50,000-line output of realistic lines (each echoes its ~100 KB base64 input), its MB/s on
//! one core and its peak RSS, in a child process each.
//!
//! The third part plans the night against a deadline (`BO_BENCH_DEADLINE_HOURS`, default 10
//! hours after the nightly run starts; see `night/deadline.rs`), for a night of 20,000 images
//! (1,000 users) and for the default night, and ends with one more line each:
//! `deadline: images=N answered_by_deadline=A batch_share=S cost_usd=C all_batch_usd=B all_on_demand_usd=D`.
//!
//! The fourth part redrives 1,000 records under an emulated on-demand rate of 100 a minute
//! (see `night/throttle.rs`) and ends with
//! `throttle: records=N answered=A failed=F rate_per_min=R busiest_minute=B throttled=T emulated_minutes=M`.
//!
//! `BO_BENCH_QUICK=1` shrinks the night and the output tenfold (a smoke run).

#[path = "night/deadline.rs"]
mod deadline;
#[path = "night/ingest.rs"]
mod ingest;
#[path = "support/rss.rs"]
mod rss;
#[path = "night/throttle.rs"]
mod throttle;

use shared::domain::ids::ModelId;
use shared::domain::normalize::Policy;
use shared::domain::plan::{plan, PlannedJob};
use shared::domain::pool::{pack, Waiting};
use shared::domain::settings::Settings;

fn quick() -> bool {
    std::env::var_os("BO_BENCH_QUICK").is_some()
}

/// xorshift64*: a fixed stream, so every run sees the same night.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// Receipts per user: Zipf on 1..=max with exponent `s`, by inverse CDF.
fn zipf_counts(users: usize, max: usize, s: f64, rng: &mut Rng) -> Vec<u64> {
    let weights: Vec<f64> = (1..=max).map(|k| (k as f64).powf(-s)).collect();
    let total: f64 = weights.iter().sum();
    let mut cdf = Vec::with_capacity(max);
    let mut acc = 0.0;
    for w in weights {
        acc += w / total;
        cdf.push(acc);
    }
    (0..users)
        .map(|_| {
            let u = rng.unit();
            cdf.partition_point(|&c| c < u) as u64 + 1
        })
        .collect()
}

#[derive(Clone, Copy)]
enum Lines {
    /// Claude: the image inline, base64, of a JPEG between these sizes.
    Base64(u64, u64),
    /// Nova: the image by s3Location.
    S3Location,
}

/// The sizes of a normalized receipt JPEG under `policy` (uniform between them): economy's
/// as the tokens bench measured them on its corpus; whole's a 12 MP photo at 1568 px.
fn jpeg_range(policy: Policy) -> (u64, u64) {
    match policy {
        Policy::Economy => (25_000, 90_000),
        Policy::Whole => (150_000, 450_000),
    }
}

fn line_len(kind: Lines, rng: &mut Rng) -> u64 {
    match kind {
        Lines::Base64(lo, hi) => (lo + rng.next() % (hi - lo + 1)) * 4 / 3 + 600,
        Lines::S3Location => 600,
    }
}

/// The model a night runs on: the default one.
fn default_model() -> ModelId {
    ModelId::parse(shared::domain::catalog::DEFAULT_MODELS[0]).expect("the default model is valid")
}

/// The night's figures for one record kind and one pooling threshold.
struct Night {
    images: u64,
    jobs: Vec<PlannedJob>,
    lower_bound: u64,
    on_demand_records: u64,
}

fn night(settings: &Settings, kind: Lines, counts: &[u64]) -> Night {
    let mut rng = Rng(0xB0_5EED);
    let model = default_model();
    let q = &settings.quotas_for(&model);
    // Each intent's record lines, as its manifest would hold them.
    let intents: Vec<Vec<u64>> = counts
        .iter()
        .map(|&n| (0..n).map(|_| line_len(kind, &mut rng)).collect())
        .collect();
    let images: u64 = counts.iter().sum();
    let bytes: u64 = intents.iter().flatten().sum();
    let pad = Some(300);
    let mut jobs = Vec::new();
    let mut pooled: Vec<&Vec<u64>> = Vec::new();
    for lens in &intents {
        if settings.runs_alone(&model, lens.len() as u64, lens.iter().sum()) {
            jobs.extend(plan(q, lens, pad).expect("room to pad"));
        } else {
            pooled.push(lens);
        }
    }
    let waiting: Vec<Waiting> = pooled
        .iter()
        .map(|l| Waiting {
            records: l.len() as u64,
            bytes: l.iter().sum(),
        })
        .collect();
    let (groups, rest) = pack(&waiting, settings.pool_capacity(&model));
    let shared = |range: std::ops::Range<usize>| -> Vec<u64> {
        pooled[range]
            .iter()
            .flat_map(|l| l.iter().copied())
            .collect()
    };
    for g in &groups {
        jobs.extend(plan(q, &shared(g.clone()), pad).expect("room to pad"));
    }
    // The rest: sealed when a slot is idle or at the deadline, if it holds the minimum; else
    // the below-minimum policy (on_demand by default) runs it record by record.
    let rest = shared(rest..pooled.len());
    let mut on_demand_records = 0;
    if rest.len() as u64 >= q.min_records_per_job {
        jobs.extend(plan(q, &rest, pad).expect("room to pad"));
    } else {
        on_demand_records = rest.len() as u64;
    }
    let lower_bound = images
        .div_ceil(q.max_records_per_job)
        .max(bytes.div_ceil(q.max_job_bytes));
    Night {
        images,
        jobs,
        lower_bound,
        on_demand_records,
    }
}

/// Hours one job runs: see the module's duration model.
fn job_hours(job: &PlannedJob) -> f64 {
    2.0 + (job.records + job.pads) as f64 / 20_000.0
}

/// The night's length: jobs start in order on the first free of `slots` slots.
fn makespan(jobs: &[PlannedJob], slots: usize) -> f64 {
    let mut free_at = vec![0.0f64; slots.max(1)];
    for job in jobs {
        let (i, start) = deadline::first_free(&free_at);
        free_at[i] = start + job_hours(job);
    }
    free_at.into_iter().fold(0.0, f64::max)
}

fn report(label: &str, settings: &Settings, n: &Night) -> (u64, f64) {
    let min = settings.quotas.min_records_per_job;
    let below = n.jobs.iter().filter(|j| j.records + j.pads < min).count();
    let pads: u64 = n.jobs.iter().map(|j| j.pads).sum();
    let cap = settings.quotas.max_concurrent_jobs as usize;
    let hours = makespan(&n.jobs, cap);
    println!(
        "| {label} | {} | {} | {} | {:.2} | {below} | {pads} | {} | {:.1} | {} |",
        n.images,
        n.jobs.len(),
        n.lower_bound,
        n.jobs.len() as f64 / n.lower_bound as f64,
        n.jobs.len().div_ceil(cap),
        hours,
        n.on_demand_records,
    );
    (below as u64, hours)
}

/// The local settings, with the image policy `BO_BENCH_IMAGE_POLICY` names (economy when
/// unset) and its token estimate.
fn bench_settings() -> Settings {
    let mut s = Settings::local("bench");
    if let Some(policy) = std::env::var("BO_BENCH_IMAGE_POLICY")
        .ok()
        .and_then(|p| p.parse().ok())
    {
        s.image_policy = policy;
        s.estimate_input_tokens_per_image =
            shared::domain::settings::input_tokens_per_image(policy);
    }
    s
}

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    if let Some(pos) = args.iter().position(|a| a == "--ingest-child") {
        let arg = |i: usize, default: usize| {
            args.get(pos + i)
                .and_then(|n| n.parse().ok())
                .unwrap_or(default)
        };
        return ingest::child(arg(1, 50_000), arg(2, 75));
    }
    let users = if quick() { 10_000 } else { 100_000 };
    let counts = zipf_counts(users, 2_000, 1.6, &mut Rng(0x5EED));
    println!(
        "A night of {users} users, {} images (Zipf 1..=2,000, exponent 1.6), default quotas:\n",
        counts.iter().sum::<u64>()
    );
    println!("| records, pooled below | images | jobs | lower bound | jobs / bound | below min | pads | waves | hours | on-demand records |");
    println!("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |");
    let default = bench_settings();
    let (lo, hi) = jpeg_range(default.image_policy);
    let mut final_line = None;
    let base64 = Lines::Base64(lo, hi);
    for (kind, kind_label) in [(base64, "base64"), (Lines::S3Location, "s3Location")] {
        for pool_below in [default.pool_below_records, 0] {
            let mut s = default.clone();
            s.pool_below_records = pool_below;
            let n = night(&s, kind, &counts);
            let label = format!("{kind_label}, {}", s.pool_threshold(&default_model()));
            let (below, hours) = report(&label, &s, &n);
            if matches!(kind, Lines::Base64(..)) && pool_below == default.pool_below_records {
                let model = ModelId::parse(shared::domain::catalog::DEFAULT_MODELS[0])
                    .map_err(|e| anyhow::anyhow!("{e}"))?;
                let cost = s
                    .estimate_cost(&model, n.images as usize)
                    .ok_or_else(|| anyhow::anyhow!("no price for {model}"))?;
                final_line = Some(format!(
                    "night: images={} jobs={} lower_bound={} jobs_below_min={below} waves={} hours={hours:.1} batch_usd={:.2} on_demand_usd={:.2}",
                    n.images,
                    n.jobs.len(),
                    n.lower_bound,
                    n.jobs.len().div_ceil(s.quotas.max_concurrent_jobs as usize),
                    cost.batch_usd,
                    cost.on_demand_usd
                ));
            }
        }
    }
    println!();
    ingest::report(if quick() { 5_000 } else { 50_000 })?;
    println!();
    if let Some(line) = final_line {
        println!("{line}");
    }
    let hours: f64 = std::env::var("BO_BENCH_DEADLINE_HOURS")
        .ok()
        .and_then(|h| h.parse().ok())
        .unwrap_or(10.0);
    let model = default_model();
    for (label, images) in [("20,000 images", 20_000), ("the default night", u64::MAX)] {
        // The same users, taken in order until the night holds `images` (the last one cut).
        let mut left = images;
        let counts: Vec<u64> = zipf_counts(users, 2_000, 1.6, &mut Rng(0x5EED))
            .into_iter()
            .map_while(|c| {
                let take = c.min(left);
                left -= take;
                (take > 0).then_some(take)
            })
            .collect();
        let n = night(&default, base64, &counts);
        let d = deadline::plan_night(&default, &model, &n.jobs, n.on_demand_records, hours);
        println!("{label}, deadline {hours} h: {}", d.detail());
        println!("{}", d.line());
    }
    throttle::report(1_000)
}
