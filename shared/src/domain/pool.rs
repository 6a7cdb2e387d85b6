//! Packing pooled intents into shared jobs: pure, so the night benchmark runs it too.
//!
//! The rule (own job or shared), with the figures in docs/performance.md:
//! - An intent runs in jobs of its own when it fills at least a share of a job: accepted
//!   records at least `POOL_BELOW_RECORDS` (default 10,000, a fifth of Bedrock's 50,000), or
//!   manifest bytes at least the same share of a job's 5 GB. Such a request starts at once,
//!   whatever else is waiting, and its jobs are at least a fifth full.
//! - Smaller ones wait in their model's pool, which seals a shared job **as soon as one is
//!   full** (the next member would pass a job's records or bytes), oldest first.
//! - The rest is sealed **early when its model has an idle slot** (a job that can start now
//!   delays nothing), else at the pool deadline, when the below-minimum policy applies to
//!   what is still under the minimum. While every slot is busy a part-full job would only
//!   wait for a slot anyway, so the pool waits to fill instead: that is what keeps a night's
//!   job count near the quota bound.

use std::ops::Range;

/// One waiting intent: its accepted records and the bytes of its manifest lines.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Waiting {
    pub records: u64,
    pub bytes: u64,
}

/// A job's capacity for packing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Capacity {
    pub records: u64,
    pub bytes: u64,
}

/// Packs waiting intents (oldest first) into full shared jobs: greedy and in order, a group
/// closed when the next intent would pass the capacity. Returns the full groups to seal, as
/// index ranges, and where the remainder starts (it waits to fill, an idle slot or the
/// deadline). An intent larger than a whole job alone makes a group of its own (the job
/// splits it under the quotas and pads its tail).
pub fn pack(waiting: &[Waiting], cap: Capacity) -> (Vec<Range<usize>>, usize) {
    let mut groups = Vec::new();
    let (mut start, mut records, mut bytes) = (0usize, 0u64, 0u64);
    for (i, w) in waiting.iter().enumerate() {
        let full = records + w.records > cap.records || bytes + w.bytes > cap.bytes;
        if full && i > start {
            groups.push(start..i);
            (start, records, bytes) = (i, 0, 0);
        }
        records += w.records;
        bytes += w.bytes;
    }
    // A rest that is exactly a job's worth is full too.
    if start < waiting.len() && (records >= cap.records || bytes >= cap.bytes) {
        groups.push(start..waiting.len());
        start = waiting.len();
    }
    (groups, start)
}

#[cfg(test)]
#[allow(clippy::single_range_in_vec_init)] // a list of groups that holds one group
mod tests {
    use super::*;

    fn recs(r: &[u64]) -> Vec<Waiting> {
        r.iter()
            .map(|&records| Waiting {
                records,
                bytes: records * 10,
            })
            .collect()
    }

    const BIG: u64 = u64::MAX / 4;

    #[test]
    fn when_packing_should_seal_only_full_jobs_and_leave_the_rest_waiting() {
        let cap = Capacity {
            records: 250,
            bytes: BIG,
        };
        // 40 x 6 = 240 fills a job (the next 40 would pass 250); 40 + 30 wait.
        let r = recs(&[40, 40, 40, 40, 40, 40, 40, 30]);
        assert_eq!(pack(&r, cap), (vec![0..6], 6));
        // Under a job's worth, nothing is sealed by size, whatever the minimum.
        assert_eq!(pack(&recs(&[60, 40]), cap), (vec![], 0));
        assert_eq!(pack(&[], cap), (vec![], 0));
    }

    #[test]
    fn when_the_rest_is_exactly_a_job_should_seal_it_too() {
        let cap = Capacity {
            records: 100,
            bytes: BIG,
        };
        assert_eq!(pack(&recs(&[60, 40]), cap), (vec![0..2], 2));
    }

    #[test]
    fn when_bytes_fill_a_job_first_should_close_it_by_bytes() {
        let cap = Capacity {
            records: 50_000,
            bytes: 1_000,
        };
        // 10 records of 10 bytes each: 100 bytes an intent, so 10 intents a job.
        let (groups, rest) = pack(&recs(&[10; 25]), cap);
        assert_eq!(groups, vec![0..10, 10..20]);
        assert_eq!(rest, 20);
    }

    #[test]
    fn when_an_intent_is_larger_than_a_job_should_make_a_group_of_its_own() {
        let cap = Capacity {
            records: 100,
            bytes: BIG,
        };
        assert_eq!(pack(&recs(&[30, 150, 20]), cap), (vec![0..1, 1..2], 2));
    }

    #[test]
    fn when_thousands_of_intents_wait_should_fill_every_sealed_job_and_place_each_once() {
        let records: Vec<u64> = (0..10_000).map(|i| 1 + (i * 37 % 99)).collect();
        let cap = Capacity {
            records: 1_000,
            bytes: BIG,
        };
        let (groups, rest) = pack(&recs(&records), cap);
        let mut next = 0;
        for g in &groups {
            assert_eq!(g.start, next, "in order, nothing skipped");
            let sum: u64 = records[g.clone()].iter().sum();
            // Closed only when the next (at most 99) did not fit.
            assert!((902..=1000).contains(&sum), "{sum}");
            next = g.end;
        }
        assert_eq!(rest, next);
        assert!(records[rest..].iter().sum::<u64>() <= 1000);
    }
}
