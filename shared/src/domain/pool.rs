//! Packing pooled intents into shared jobs: pure, so the planner benchmark runs it too.

use std::ops::Range;

/// Most intents one shared job takes: its intent lists its members in one store item.
pub const MAX_MEMBERS: usize = 1_000;

/// Packs waiting intents (their record counts, oldest first) into shared jobs: greedy and in
/// order, each job at most `cap` records and `max_members` intents, and a job only once it
/// holds `min`. Returns the groups to seal, as index ranges, and where the unsealed
/// remainder starts (it waits for more records or the deadline).
pub fn pack(records: &[u64], min: u64, cap: u64, max_members: usize) -> (Vec<Range<usize>>, usize) {
    let mut groups = Vec::new();
    let (mut start, mut sum) = (0usize, 0u64);
    for (i, &r) in records.iter().enumerate() {
        let full = sum + r > cap || i - start >= max_members;
        if full && i > start {
            if sum < min {
                // Only when cap < 2 x min: this group can neither grow nor seal.
                return (groups, start);
            }
            groups.push(start..i);
            start = i;
            sum = 0;
        }
        sum += r;
    }
    if sum >= min && start < records.len() {
        groups.push(start..records.len());
        start = records.len();
    }
    (groups, start)
}

#[cfg(test)]
#[allow(clippy::single_range_in_vec_init)] // a list of groups that holds one group
mod tests {
    use super::*;

    #[test]
    fn when_packing_should_fill_jobs_to_the_cap_and_leave_a_small_rest() {
        // min 100, cap 250: 40+40+40+40+40+40 = 240 fits one job; the next 40+30 wait.
        let r = [40, 40, 40, 40, 40, 40, 40, 30];
        assert_eq!(pack(&r, 100, 250, 1000), (vec![0..6], 6));
        // Exactly the minimum seals; one short waits.
        assert_eq!(pack(&[60, 40], 100, 1000, 1000), (vec![0..2], 2));
        assert_eq!(pack(&[60, 39], 100, 1000, 1000), (vec![], 0));
        // Two full jobs and nothing left.
        assert_eq!(
            pack(&[99, 99, 99, 99], 100, 200, 1000),
            (vec![0..2, 2..4], 4)
        );
        assert_eq!(pack(&[], 100, 200, 1000), (vec![], 0));
        // The member cap closes a job before the record cap does.
        assert_eq!(pack(&[50; 5], 100, 1000, 2), (vec![0..2, 2..4], 4));
    }

    #[test]
    fn when_every_group_is_sealed_should_respect_min_and_cap() {
        let records: Vec<u64> = (0..10_000).map(|i| 1 + (i * 37 % 99)).collect();
        let (groups, rest) = pack(&records, 100, 1000, 30);
        let mut next = 0;
        for g in &groups {
            assert_eq!(g.start, next, "in order, nothing skipped");
            let sum: u64 = records[g.clone()].iter().sum();
            assert!((100..=1000).contains(&sum), "{sum}");
            assert!(g.len() <= 30);
            next = g.end;
        }
        assert_eq!(rest, next);
        assert!(records[rest..].iter().sum::<u64>() < 100);
    }
}
