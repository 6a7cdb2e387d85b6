//! Clocks: the system clock, and a manual one that tests (and the embedded runner, when idle)
//! move forward instead of sleeping.

use crate::ports::Clock;
use chrono::{DateTime, Duration, Utc};
use std::sync::Mutex;

#[derive(Debug, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> DateTime<Utc> {
        Utc::now()
    }
}

#[derive(Debug)]
pub struct ManualClock {
    now: Mutex<DateTime<Utc>>,
}

impl ManualClock {
    pub fn new(start: DateTime<Utc>) -> Self {
        Self {
            now: Mutex::new(start),
        }
    }

    pub fn advance(&self, by: Duration) {
        *self.now.lock().unwrap_or_else(|p| p.into_inner()) += by;
    }

    /// Moves to `t` if it is later than now (never backwards).
    pub fn advance_to(&self, t: DateTime<Utc>) {
        let mut now = self.now.lock().unwrap_or_else(|p| p.into_inner());
        if t > *now {
            *now = t;
        }
    }
}

impl Clock for ManualClock {
    fn now(&self) -> DateTime<Utc> {
        *self.now.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn sleep_until(&self, t: DateTime<Utc>) -> futures::future::BoxFuture<'static, ()> {
        self.advance_to(t);
        Box::pin(tokio::task::yield_now())
    }
}
