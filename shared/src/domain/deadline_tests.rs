use super::*;
use chrono::TimeZone;

fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 12, 3, 22, 0, 0)
        .single()
        .expect("time")
}

fn sample(queue: f64, run: Option<f64>, records: u64) -> JobSample {
    JobSample {
        ended_at: now(),
        records,
        queue_secs: queue,
        run_secs: run,
    }
}

const DEFAULT: Pace = Pace {
    queue_secs: 900.0,
    secs_per_record: 0.5,
};

fn outlook(deadline_secs: Option<i64>) -> Outlook {
    Outlook {
        now: now(),
        deadline: deadline_secs.map(|s| now() + Duration::seconds(s)),
        wait_secs: 0.0,
        pace: Pace {
            queue_secs: 3600.0,
            secs_per_record: 1.0,
        },
        rate: OnDemandRate {
            requests_per_minute: 60.0,
            tokens_per_minute: 1e9,
        },
        tokens_per_record: 2_000,
        min_records: 100,
        margin_secs: 0.0,
    }
}

#[test]
fn when_there_is_no_history_should_take_the_default_pace() {
    assert_eq!(learned_pace(&[], DEFAULT), DEFAULT);
    let two = [sample(10.0, Some(10.0), 10), sample(20.0, Some(10.0), 10)];
    assert_eq!(learned_pace(&two, DEFAULT), DEFAULT, "two jobs are too few");
}

#[test]
fn when_jobs_have_finished_should_take_the_90th_percentile_of_them() {
    let samples: Vec<JobSample> = (1..=10)
        .map(|i| sample(i as f64 * 100.0, Some(i as f64 * 1_000.0), 1_000))
        .collect();
    let pace = learned_pace(&samples, DEFAULT);
    assert_eq!(pace.queue_secs, 900.0);
    assert_eq!(pace.secs_per_record, 9.0);
    // Jobs stopped before they ran tell the queue, not the run time.
    let stopped: Vec<JobSample> = (0..5).map(|_| sample(7_200.0, None, 500)).collect();
    let pace = learned_pace(&stopped, DEFAULT);
    assert_eq!(pace.queue_secs, 7_200.0);
    assert_eq!(pace.secs_per_record, DEFAULT.secs_per_record);
}

#[test]
fn when_batch_ends_in_time_should_plan_everything_to_batch() {
    let s = split(1_000, &outlook(Some(3 * 3600)));
    assert_eq!((s.batch_records, s.on_demand_records), (1_000, 0));
    assert_eq!(s.estimated_completion, now() + Duration::seconds(4_600));
    assert!(!s.at_risk);
    let s = split(1_000, &outlook(None));
    assert_eq!(s.batch_records, 1_000, "no deadline: as before");
}

#[test]
fn when_batch_cannot_end_in_time_should_send_only_the_late_part_on_demand() {
    // 2 h: the queue takes 1 h, so batch can run 3,600 records; on-demand the other 400.
    let s = split(4_000, &outlook(Some(2 * 3600)));
    assert_eq!((s.batch_records, s.on_demand_records), (3_600, 400));
    assert!(!s.at_risk, "400 records at 60 a minute take 400 s");
    // Too little room for the minimum: all on-demand.
    let s = split(4_000, &outlook(Some(3_650)));
    assert_eq!((s.batch_records, s.on_demand_records), (0, 4_000));
    assert!(s.at_risk, "4,000 records at 60 a minute need 4,000 s");
}

#[test]
fn when_slots_are_busy_should_count_the_waves_ahead() {
    let mut o = outlook(Some(2 * 3600));
    o.wait_secs = 3_000.0;
    let s = split(4_000, &o);
    assert_eq!((s.batch_records, s.on_demand_records), (600, 3_400));
}

#[test]
fn when_a_job_runs_late_should_stop_it_in_time_for_on_demand() {
    let rate = OnDemandRate {
        requests_per_minute: 100.0,
        tokens_per_minute: 200_000.0,
    };
    // 300 records of 2,000 tokens: 600,000 tokens at 200,000 a minute, 3 minutes.
    assert_eq!(rate.secs_for(300, 2_000), 180.0);
    let deadline = now() + Duration::hours(1);
    assert_eq!(
        cutoff(deadline, 300, &rate, 2_000, 60.0),
        deadline - Duration::seconds(240)
    );
    assert_eq!(rate.records_in(180.0, 2_000), 300);
    assert!((redrive_extra_usd(1_000, 0.003, 0.5) - 1.5).abs() < 1e-9);
}
