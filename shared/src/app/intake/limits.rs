//! Per-user limits, so one user cannot hold the night's job slots and the bill: at most
//! `MAX_OPEN_INTENTS_PER_USER` batches in progress at once, and at most
//! `MAX_IMAGES_PER_USER_PER_DAY` images requested per UTC day. Over either, intake answers
//! 429 with `Retry-After` and writes nothing.
//!
//! Both are counters kept by the store ([`crate::ports::Allowances`]), each moved by one
//! conditional write before the intent is created: the user's open intents (a set of ids, so a
//! retry takes no second place) and the user's images of the UTC day (a number, added to only
//! while the sum stays within the limit). So N requests at once pass a limit exactly as one at
//! a time would, however many requests the user made before.
//!
//! Replay and crashes:
//! - a replay of an existing intent is never refused and counts nothing (the store is read
//!   first, consistently);
//! - a request not recorded after it was counted (its id taken meanwhile, its key list not
//!   written) gives its images back and its open place up;
//! - an intent frees its place when it ends (`outbox::save`, idempotent); a crash between the
//!   end and the freeing leaves a stale place, which the next refusal heals: the user's counted
//!   intents are re-read, and those ended (or still missing a moment later: a request between
//!   its count and its write is never freed) are freed before the count is tried again;
//! - a crash between counting and creating leaves the images counted (the safe direction: the
//!   user's day allows fewer, never more).

use crate::app::intake::IntakeError;
use crate::app::Deps;
use crate::domain::ids::{IntentId, UserId};
use crate::domain::intent::{BatchIntent, ImageSelection};
use chrono::{Duration, NaiveDate};

/// How long a client over the open-batches limit waits before trying again.
const OPEN_RETRY_SECS: u64 = 60;
/// Longer than a request takes from its count to its write: a counted intent still not
/// written after it is a crash's leftover.
const IN_FLIGHT: Duration = Duration::seconds(2);

/// What a new request took of its user's allowances, given back if it is not recorded.
#[derive(Debug, Clone)]
pub struct Taken {
    user: UserId,
    intent: IntentId,
    day: NaiveDate,
    images: u64,
}

impl Taken {
    /// Gives back what was taken, for a request that was not recorded (best effort: a failure
    /// leaves the user's allowance smaller, never larger).
    pub async fn give_back(self, deps: &Deps, close: bool) {
        let a = &deps.allowances;
        if let Err(e) = a.give_back_images(&self.user, self.day, self.images).await {
            tracing::warn!(user_id = %self.user, error = %e, "could not give back a request's images");
        }
        if close {
            if let Err(e) = a.close(&self.user, &self.intent).await {
                tracing::warn!(user_id = %self.user, error = %e, "could not free an open place");
            }
        }
    }
}

/// Counts `intent` against its user's limits, unless it is already stored (a replay; the read
/// is consistent): None for a replay, else what was taken. A request larger than a whole day's
/// allowance can never pass: a 400, not a 429.
pub async fn check_new(deps: &Deps, intent: &BatchIntent) -> Result<Option<Taken>, IntakeError> {
    let existing = deps
        .store
        .get(&intent.intent_id)
        .await
        .map_err(IntakeError::Unavailable)?;
    if existing.is_some() {
        return Ok(None);
    }
    let asked = images_of(deps, intent).await?;
    let max = deps.settings.max_images_per_user_per_day;
    if asked > max {
        let field = match intent.selection {
            ImageSelection::Day(_) => "day",
            _ => "images",
        };
        return Err(IntakeError::invalid(
            field,
            format!("names {asked} images; at most {max} a user may request a day (MAX_IMAGES_PER_USER_PER_DAY)"),
        ));
    }
    take_open(deps, intent).await?;
    let taken = Taken {
        user: intent.user_id.clone(),
        intent: intent.intent_id.clone(),
        day: deps.clock.now().date_naive(),
        images: asked,
    };
    take_images(deps, &taken, max).await?;
    Ok(Some(taken))
}

/// Takes an open place for `intent`, healing stale places once when the count is full.
async fn take_open(deps: &Deps, intent: &BatchIntent) -> Result<(), IntakeError> {
    let max = deps.settings.max_open_intents_per_user;
    let a = &deps.allowances;
    let open = || a.open(&intent.user_id, &intent.intent_id, max);
    if open().await.map_err(IntakeError::Unavailable)? {
        return Ok(());
    }
    if heal(deps, &intent.user_id).await? > 0 && open().await.map_err(IntakeError::Unavailable)? {
        return Ok(());
    }
    Err(IntakeError::OverLimit {
        field: "intentId".into(),
        message: format!(
            "you have {max} batches in progress; at most {max} may be (MAX_OPEN_INTENTS_PER_USER): wait for one to end"
        ),
        retry_after_secs: OPEN_RETRY_SECS,
    })
}

/// Frees the places of `user`'s counted intents that ended (a crash between an intent's end and
/// its freeing) or are gone. A place whose intent is not there may belong to a request between
/// its count and its write: it is freed only if the intent is still not there after
/// [`IN_FLIGHT`], so requests arriving together never free each other's places. How many it
/// freed.
async fn heal(deps: &Deps, user: &UserId) -> Result<usize, IntakeError> {
    let unavailable = IntakeError::Unavailable;
    let counted = deps
        .allowances
        .open_intents(user)
        .await
        .map_err(unavailable)?;
    let mut stale = Vec::new();
    let mut missing = Vec::new();
    for id in counted {
        match deps.store.get(&id).await.map_err(unavailable)? {
            Some(i) if i.status.is_terminal() => stale.push(id),
            Some(_) => {}
            None => missing.push(id),
        }
    }
    if !missing.is_empty() {
        deps.clock.sleep_until(deps.clock.now() + IN_FLIGHT).await;
        for id in missing {
            if deps.store.get(&id).await.map_err(unavailable)?.is_none() {
                stale.push(id);
            }
        }
    }
    let freed = stale.len();
    for id in stale {
        deps.allowances
            .close(user, &id)
            .await
            .map_err(unavailable)?;
    }
    if freed > 0 {
        tracing::info!(user_id = %user, freed, "freed open places of ended intents");
    }
    Ok(freed)
}

/// Adds the request's images to the user's day, or frees its open place and refuses it.
async fn take_images(deps: &Deps, taken: &Taken, max: u64) -> Result<(), IntakeError> {
    let added = deps
        .allowances
        .take_images(&taken.user, taken.day, taken.images, max)
        .await;
    match added {
        Ok(true) => Ok(()),
        Ok(false) => {
            close_unrecorded(deps, taken).await;
            let now = deps.clock.now();
            let tomorrow = (taken.day + Duration::days(1))
                .and_hms_opt(0, 0, 0)
                .map_or(now, |t| t.and_utc());
            Err(IntakeError::OverLimit {
                field: "images".into(),
                message: format!(
                    "{} more images would pass the {max} a user may request a day (UTC) (MAX_IMAGES_PER_USER_PER_DAY)",
                    taken.images
                ),
                retry_after_secs: (tomorrow - now).num_seconds().max(1) as u64,
            })
        }
        Err(e) => {
            close_unrecorded(deps, taken).await;
            Err(IntakeError::Unavailable(e))
        }
    }
}

/// Frees the open place a refused request took, unless its intent is recorded (a retry racing
/// the original request: the place is the original's).
async fn close_unrecorded(deps: &Deps, taken: &Taken) {
    if let Ok(None) = deps.store.get(&taken.intent).await {
        if let Err(e) = deps.allowances.close(&taken.user, &taken.intent).await {
            tracing::warn!(user_id = %taken.user, error = %e, "could not free a refused request's place; healed later");
        }
    }
}

/// How many images an intent asks for (a day's: its uploads that day, read from the index).
async fn images_of(deps: &Deps, i: &BatchIntent) -> Result<u64, IntakeError> {
    let (listed, _) = i.image_counts();
    Ok(match &i.selection {
        ImageSelection::Day(_) if listed > 0 => listed as u64,
        ImageSelection::Day(day) => deps
            .uploads
            .uploads(&i.user_id, *day)
            .await
            .map_err(IntakeError::Unavailable)?
            .len() as u64,
        other => other.len_hint() as u64,
    })
}
