use super::*;
use proptest::prelude::*;

fn quotas(min: u64, max_job: u64, max_file: u64, file_bytes: u64, job_bytes: u64) -> Quotas {
    Quotas {
        min_records_per_job: min,
        max_records_per_job: max_job,
        max_records_per_file: max_file,
        max_file_bytes: file_bytes,
        max_job_bytes: job_bytes,
        max_concurrent_jobs: 10,
    }
}

fn records(jobs: &[PlannedJob]) -> Vec<u64> {
    jobs.iter().map(|j| j.records).collect()
}

#[test]
fn when_records_are_50001_should_make_two_balanced_jobs() {
    let q = Quotas::default();
    let jobs = plan(&q, &vec![1_000; 50_001], Some(200)).expect("plan");
    assert_eq!(records(&jobs), vec![25_001, 25_000]);
    assert!(jobs.iter().all(|j| j.pads == 0));
    let jobs = plan(&q, &vec![1_000; 50_000], Some(200)).expect("plan");
    assert_eq!(records(&jobs), vec![50_000]);
}

#[test]
fn when_a_byte_split_leaves_a_tail_of_20_should_pad_it_to_the_minimum() {
    // 220 records of 1 MB, a 202.02 MB job quota: the planner fills 99% of it (the byte
    // margin), so bytes close the first job at 200.
    let q = quotas(100, 50_000, 50_000, 1 << 30, 202_020_300);
    let jobs = plan(&q, &vec![1_000_000; 220], Some(300)).expect("plan");
    assert_eq!(records(&jobs), vec![200, 20]);
    assert_eq!(jobs[1].pads, 80);
    assert_eq!(jobs[1].records + jobs[1].pads, 100);
    assert_eq!(jobs[1].bytes, 20 * 1_000_000 + 80 * 300);
}

#[test]
fn when_130_records_meet_a_cap_of_110_and_a_minimum_of_100_should_make_no_job_below_100() {
    let q = quotas(100, 110, 110, 1 << 30, 5 << 30);
    let jobs = plan(&q, &vec![500; 130], Some(200)).expect("plan");
    assert_eq!(records(&jobs), vec![100, 30]);
    assert_eq!(jobs[1].pads, 70);
    assert!(jobs.iter().all(|j| j.records + j.pads >= 100));
}

#[test]
fn when_a_job_cannot_hold_its_padding_should_say_which_setting_to_change() {
    let q = quotas(100, 50_000, 50_000, 1_000, 1_000);
    let err = plan(&q, &[900, 900], Some(200)).expect_err("no room");
    assert!(err.to_string().contains("MAX_JOB_BYTES"), "{err}");
}

#[test]
fn when_records_exceed_the_file_quota_should_start_parts_within_one_job() {
    let q = quotas(1, 50_000, 10, 1 << 30, 5 << 30);
    let jobs = plan(&q, &[10; 25], None).expect("plan");
    assert_eq!(jobs.len(), 1);
    assert_eq!(jobs[0].parts, vec![(10, 100), (10, 100), (5, 50)]);
}

#[test]
fn when_a_file_would_pass_its_byte_limit_by_one_should_start_a_new_part() {
    // A 1,010-byte file quota less the 1% margin: 1,000 bytes a part (1,000 fits, 1,001 not).
    let q = quotas(1, 50_000, 50_000, 1_010, 5 << 30);
    let jobs = plan(&q, &[500, 500, 1], None).expect("plan");
    assert_eq!(jobs[0].parts, vec![(2, 1_000), (1, 1)]);
    let jobs = plan(&q, &[500, 501], None).expect("plan");
    assert_eq!(jobs[0].parts, vec![(1, 500), (1, 501)]);
}

#[test]
fn when_records_exceed_the_job_quota_should_split_into_balanced_jobs() {
    let q = quotas(1, 100, 100, 1 << 30, 5 << 30);
    let jobs = plan(&q, &vec![10; 250], None).expect("plan");
    assert_eq!(records(&jobs), vec![84, 84, 82]);
}

/// Quotas Bedrock could have (any order of magnitude, scaled down so cases stay small), with
/// room in a job for the minimum of the largest records and their padding: the precondition
/// the settings' defaults meet (100 x 5 MB < 5 GB).
fn any_case() -> impl Strategy<Value = (Quotas, Vec<u64>, u64)> {
    (1u64..60, 1u64..4, 1u64..400, 1u64..2_000, 1u64..80).prop_flat_map(
        |(min, spread, per_file, max_len, pad_len)| {
            let max_job = min * spread + (min * spread) / 3;
            let file_bytes = max_len.max(pad_len) * (1 + per_file % 7);
            let job_bytes = (min + 1) * (max_len + pad_len) * spread;
            let q = quotas(
                min,
                max_job,
                per_file,
                file_bytes,
                job_bytes.max(file_bytes),
            );
            (
                Just(q),
                proptest::collection::vec(1u64..=max_len, 1..1_500),
                Just(pad_len),
            )
        },
    )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(400))]

    #[test]
    fn every_plan_keeps_every_job_at_the_minimum_within_every_quota_and_places_each_record_once(
        (q, lens, pad_len) in any_case()
    ) {
        let jobs = plan(&q, &lens, Some(pad_len)).expect("a plan");
        let placed: u64 = jobs.iter().map(|j| j.records).sum();
        prop_assert_eq!(placed, lens.len() as u64, "every record placed exactly once");
        let bytes: u64 = jobs.iter().map(|j| j.bytes - j.pads * pad_len).sum();
        prop_assert_eq!(bytes, lens.iter().sum::<u64>());
        for (n, job) in jobs.iter().enumerate() {
            let all = job.records + job.pads;
            prop_assert!(all >= q.min_records_per_job, "job {} has {} records", n, all);
            prop_assert!(all <= q.max_records_per_job, "job {} has {} records", n, all);
            prop_assert!(job.bytes <= q.max_job_bytes);
            prop_assert!(job.pads == 0 || n + 1 == jobs.len(), "only the last job is padded");
            for &(r, b) in &job.parts {
                prop_assert!(r >= 1 && r <= q.max_records_per_file);
                prop_assert!(b <= q.max_file_bytes);
            }
            prop_assert_eq!(job.parts.iter().map(|p| p.0).sum::<u64>(), all);
        }
        // Never more jobs than the record quota needs, unless bytes need them.
        let by_records = (lens.len() as u64).div_ceil(q.max_records_per_job);
        let by_bytes = lens.iter().sum::<u64>().div_ceil(q.max_job_bytes);
        if by_bytes <= 1 {
            prop_assert_eq!(jobs.len() as u64, by_records.max(1));
        }
    }
}
