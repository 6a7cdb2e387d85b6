//! One pace per model across every on-demand runner: before each `InvokeModel`, a runner takes
//! its turn from the model's shared budget (`ports::RateBudget`, sized from `ON_DEMAND_RATES`;
//! the rules are in `domain::rate`), and waits for the next window when the budget is spent.
//! So a redrive of several intents at one cut-off, or two functions at once, never call a
//! model faster than its quota, whatever their number.
//!
//! Replay: a turn is taken per call, never given back; a call retried after a crash takes a
//! new one (the budget errs towards calling slower, never faster).

use crate::app::Deps;
use crate::domain::ids::ModelId;
use crate::domain::rate::{backoff, window_budget, window_of, WINDOW_SECS};
use crate::ports::PortError;
use chrono::{DateTime, Duration, Utc};

/// A turn taken: its window, and the tokens it was counted with.
#[derive(Debug, Clone, Copy)]
pub struct Turn {
    window: DateTime<Utc>,
    tokens: u64,
}

/// Takes a turn for one call of `model` expected to burn `tokens` quota tokens, waiting (on
/// the clock) for a window with room, but for none that starts after `until` (None then); an
/// error if the budget's store fails.
pub async fn take_turn(
    deps: &Deps,
    model: &ModelId,
    tokens: u64,
    until: DateTime<Utc>,
) -> Result<Option<Turn>, PortError> {
    let max = window_budget(&deps.settings.rate_for(model));
    let mut waits = 0u32;
    loop {
        let window = window_of(deps.clock.now());
        if deps.rates.take(model.as_str(), window, tokens, max).await? {
            if waits > 0 {
                crate::metrics::count(crate::metrics::ON_DEMAND_PACED, u64::from(waits));
            }
            return Ok(Some(Turn { window, tokens }));
        }
        waits += 1;
        let next = window + Duration::seconds(WINDOW_SECS);
        if next > until {
            return Ok(None);
        }
        deps.clock.sleep_until(next + jitter(WINDOW_SECS)).await;
    }
}

/// Counts a finished call's real quota tokens in its turn's window (best effort).
pub async fn settle(deps: &Deps, model: &ModelId, turn: Turn, input: u64, output: u64) {
    let real = crate::domain::rate::quota_tokens(model.as_str(), input, output);
    let delta = real as i64 - turn.tokens as i64;
    if delta == 0 {
        return;
    }
    if let Err(e) = deps.rates.correct(model.as_str(), turn.window, delta).await {
        tracing::warn!(model = %model, error = %e, "could not correct the rate budget's tokens");
    }
}

/// When try `n` after a "slow down" may start.
pub fn retry_at(deps: &Deps, n: u32) -> DateTime<Utc> {
    deps.clock.now() + backoff(n, unit_random())
}

/// Up to a tenth of `secs`, at random, so runners refused together spread out.
fn jitter(secs: i64) -> Duration {
    Duration::milliseconds((unit_random() * secs as f64 * 100.0) as i64)
}

/// A number in 0..1 from a v4 UUID's random bits (uuid is a dependency already).
fn unit_random() -> f64 {
    (uuid::Uuid::new_v4().as_u128() & 0xFFFF_FFFF) as f64 / f64::from(u32::MAX)
}
