//! Bedrock's on-demand rates, kept by every runner together: the rules of the shared budget
//! (`app::pace` takes from it) and of the retries that follow a "slow down".
//!
//! **The budget.** A model's quotas are per minute (requests, and tokens), per account and
//! Region, shared by every caller ("Quotas for the bedrock-runtime endpoint", Bedrock user
//! guide). AWS does not say how a minute is measured, so the safe reading is *any* 60 seconds.
//! Time is cut into windows of [`WINDOW_SECS`]; any 60-second span overlaps at most
//! [`SPAN_WINDOWS`] of them, so each window may take `1 / SPAN_WINDOWS` of the minute's rate and
//! no 60 seconds, however aligned, see more than the rate. The cost: runners use
//! `(SPAN_WINDOWS - 1) / SPAN_WINDOWS` of it on average ([`paced`]), which is the rate the
//! deadline planner and the cut-off plan on.
//!
//! **Tokens as Bedrock burns them down.** "How tokens are counted in Amazon Bedrock" (user
//! guide, quotas-token-burndown): a request counts `input + cache writes + output x burndown
//! rate` against the tokens-per-minute quota, and "the burndown rate for the following models
//! is 5x for output tokens": Claude Opus 4 and Sonnet 4 on that page, and Sonnet 4.5 and 3.7
//! Sonnet too on the cross-Region inference page. The pages list different models; the safe
//! reading counts 5x for every Claude 3.7 and Claude 4 family model ([`burndown`]).
//!
//! **Retries.** `ThrottlingException` (429), `ServiceUnavailableException` (503),
//! `ModelNotReadyException` (429: "The AWS SDK will automatically retry the operation up to 5
//! times") and `ModelErrorException` (424) are retryable (Bedrock Runtime API reference,
//! InvokeModel errors). They back off over a minute-scale window ([`backoff`]) and never use up
//! a record's attempts: a record ends failed by them only when its deadline leaves no room.

use crate::domain::deadline::OnDemandRate;
use chrono::{DateTime, Duration, Utc};

/// The budget's window.
pub const WINDOW_SECS: i64 = 10;
/// Windows any 60-second span overlaps at most.
pub const SPAN_WINDOWS: i64 = 60 / WINDOW_SECS + 1;
/// The longest wait between two tries after a "slow down".
pub const MAX_BACKOFF_SECS: i64 = 60;

/// The start of the window `t` falls in.
pub fn window_of(t: DateTime<Utc>) -> DateTime<Utc> {
    let secs = t.timestamp().div_euclid(WINDOW_SECS) * WINDOW_SECS;
    DateTime::from_timestamp(secs, 0).unwrap_or(t)
}

/// What one window may take: (requests, tokens), at least one request.
pub fn window_budget(rate: &OnDemandRate) -> (u64, u64) {
    let share = |per_minute: f64| (per_minute / SPAN_WINDOWS as f64).floor().max(1.0) as u64;
    (
        share(rate.requests_per_minute),
        share(rate.tokens_per_minute),
    )
}

/// The rate runners keep on average under the budget: what plans are made on.
pub fn paced(rate: OnDemandRate) -> OnDemandRate {
    let (requests, tokens) = window_budget(&rate);
    let per_minute = (60 / WINDOW_SECS) as f64;
    OnDemandRate {
        requests_per_minute: requests as f64 * per_minute,
        tokens_per_minute: tokens as f64 * per_minute,
    }
}

/// How many quota tokens one output token burns for `model` (see the module doc).
pub fn burndown(model: &str) -> u64 {
    let m = model.to_ascii_lowercase();
    let claude_4 = [
        "claude-opus-4",
        "claude-sonnet-4",
        "claude-haiku-4",
        "claude-4",
    ]
    .iter()
    .any(|f| m.contains(f));
    if claude_4 || m.contains("claude-3-7") {
        5
    } else {
        1
    }
}

/// Quota tokens of a call with `input` and `output` tokens on `model`.
pub fn quota_tokens(model: &str, input: u64, output: u64) -> u64 {
    input.saturating_add(output.saturating_mul(burndown(model)))
}

/// The wait before try `n` (1 = the first retry) after a "slow down": 1 s doubled each time,
/// at most [`MAX_BACKOFF_SECS`], with up to a quarter more as jitter (`jitter` in 0..1), so
/// runners that were refused together do not come back together.
pub fn backoff(n: u32, jitter: f64) -> Duration {
    let max = Duration::seconds(MAX_BACKOFF_SECS);
    crate::domain::backoff::exponential(n, Duration::seconds(1), max, jitter)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_60_seconds_see_more_than_the_rate() {
        let rate = OnDemandRate {
            requests_per_minute: 100.0,
            tokens_per_minute: 200_000.0,
        };
        let (requests, tokens) = window_budget(&rate);
        assert_eq!((requests, tokens), (14, 28_571));
        assert!(requests * SPAN_WINDOWS as u64 <= 100);
        assert!(tokens * SPAN_WINDOWS as u64 <= 200_000);
        assert_eq!(paced(rate).requests_per_minute, 84.0);
    }

    #[test]
    fn windows_start_on_their_boundary() {
        let t = DateTime::from_timestamp(1_000_017, 500).expect("t");
        assert_eq!(window_of(t).timestamp(), 1_000_010);
    }

    #[test]
    fn claude_4_and_3_7_burn_output_five_times() {
        assert_eq!(burndown("us.anthropic.claude-haiku-4-5-20251001-v1:0"), 5);
        assert_eq!(burndown("anthropic.claude-sonnet-4-20250514-v1:0"), 5);
        assert_eq!(burndown("anthropic.claude-3-7-sonnet-20250219-v1:0"), 5);
        assert_eq!(burndown("anthropic.claude-3-haiku-20240307-v1:0"), 1);
        assert_eq!(burndown("amazon.nova-lite-v1:0"), 1);
        assert_eq!(
            quota_tokens("anthropic.claude-opus-4-1-v1:0", 1_000, 300),
            2_500
        );
    }

    #[test]
    fn backoff_grows_to_a_minute() {
        assert_eq!(backoff(1, 0.0), Duration::seconds(1));
        assert_eq!(backoff(3, 0.0), Duration::seconds(4));
        assert_eq!(backoff(20, 0.0), Duration::seconds(60));
        assert_eq!(backoff(20, 1.0), Duration::seconds(75));
    }
}
