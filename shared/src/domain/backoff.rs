//! The one exponential backoff every retry waits by: a Bedrock create refused "not now", an
//! on-demand call throttled or failed, a bus message redelivered, DynamoDB's unprocessed items.

use chrono::Duration;

/// The wait before try `n` (1 for the first retry): `base` doubled for each retry after the
/// first, at most `max`, then lengthened by up to a quarter at random (`jitter`, 0..1), so that
/// runners refused together spread out.
pub fn exponential(n: u32, base: Duration, max: Duration, jitter: f64) -> Duration {
    let doublings = n.saturating_sub(1).min(30);
    let grown = base.checked_mul(1i32 << doublings).unwrap_or(max).min(max);
    let ms = grown.num_milliseconds() as f64 * (1.0 + jitter.clamp(0.0, 1.0) / 4.0);
    Duration::milliseconds(ms as i64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn when_tries_repeat_should_double_to_the_cap_then_stay() {
        let (base, max) = (Duration::seconds(1), Duration::seconds(60));
        let waits: Vec<i64> = (0..9)
            .map(|n| exponential(n, base, max, 0.0).num_seconds())
            .collect();
        assert_eq!(waits, [1, 1, 2, 4, 8, 16, 32, 60, 60]);
        assert_eq!(exponential(u32::MAX, base, max, 0.0), max, "no overflow");
        assert_eq!(
            exponential(1, base, max, 1.0),
            Duration::milliseconds(1_250)
        );
    }
}
