//! Per-user limits, so one user cannot hold the night's job slots and the bill: at most
//! `MAX_OPEN_INTENTS_PER_USER` batches in progress at once, and at most
//! `MAX_IMAGES_PER_USER_PER_DAY` images requested per UTC day. Over either, intake answers
//! 429 with `Retry-After` and writes nothing.
//!
//! Both are counted from the user's own list (the `byUserCreated` index, newest first), which
//! may lag a write by a moment, and the count and the create are two steps: N requests sent at
//! once can all pass the count, so a burst can pass a limit by up to N - 1 (a conditional
//! per-user counter would close that; see docs/threat-model.md). A replay of an existing intent
//! is never refused (it writes nothing new).

use super::intake::IntakeError;
use super::Deps;
use crate::domain::intent::{BatchIntent, ImageSelection};
use chrono::{DateTime, Duration, Utc};

/// Most of a user's intents read to count: the newest, as many as a day can hold.
const SCAN: usize = 2_000;
/// How long a client over the open-batches limit waits before trying again.
const OPEN_RETRY_SECS: i64 = 60;

/// Refuses `intent` when its user is over a limit, unless it is already stored (a replay; the
/// read is consistent). A request larger than a whole day's allowance can never pass: a 400,
/// not a 429.
pub async fn check_new(deps: &Deps, intent: &BatchIntent) -> Result<(), IntakeError> {
    let existing = deps
        .store
        .get(&intent.intent_id)
        .await
        .map_err(IntakeError::Unavailable)?;
    if existing.is_some() {
        return Ok(());
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
    check(deps, intent, asked as usize).await
}

/// Refuses `intent` (new, of `images` images) when its user is over a limit.
async fn check(deps: &Deps, intent: &BatchIntent, images: usize) -> Result<(), IntakeError> {
    let s = &deps.settings;
    let now = deps.clock.now();
    let day_start = now
        .date_naive()
        .and_hms_opt(0, 0, 0)
        .map_or(now, |t| t.and_utc());
    let (open, today) = usage(deps, intent, day_start).await?;
    if open >= s.max_open_intents_per_user {
        return Err(IntakeError::OverLimit {
            field: "intentId".into(),
            message: format!(
                "you have {open} batches in progress; at most {} may be (MAX_OPEN_INTENTS_PER_USER): wait for one to end",
                s.max_open_intents_per_user
            ),
            retry_after_secs: OPEN_RETRY_SECS as u64,
        });
    }
    let max = s.max_images_per_user_per_day;
    if today + images as u64 > max {
        let tomorrow = day_start + Duration::days(1);
        return Err(IntakeError::OverLimit {
            field: "images".into(),
            message: format!(
                "{images} more images would make {} today (UTC); at most {max} a day (MAX_IMAGES_PER_USER_PER_DAY)",
                today + images as u64
            ),
            retry_after_secs: (tomorrow - now).num_seconds().max(1) as u64,
        });
    }
    Ok(())
}

/// The user's batches in progress, and the images they requested since `day_start`.
async fn usage(
    deps: &Deps,
    intent: &BatchIntent,
    day_start: DateTime<Utc>,
) -> Result<(usize, u64), IntakeError> {
    let (mut open, mut today) = (0, 0u64);
    let mut after = None;
    let mut scanned = 0;
    while scanned < SCAN {
        let page = deps
            .store
            .list_by_user(&intent.user_id, after.clone(), 200)
            .await
            .map_err(IntakeError::Unavailable)?;
        let Some(last) = page.last() else { break };
        after = Some((last.created_at, last.intent_id.clone()));
        scanned += page.len();
        let mut older = false;
        for i in page.iter().filter(|i| i.intent_id != intent.intent_id) {
            open += usize::from(!i.status.is_terminal());
            if i.created_at >= day_start {
                today += images_of(deps, i).await?;
            } else {
                older = true;
            }
        }
        // Open batches older than today still count; a page past today with none open ends it.
        if older
            && page
                .iter()
                .all(|i| i.status.is_terminal() || i.created_at >= day_start)
        {
            break;
        }
    }
    Ok((open, today))
}

/// How many images an intent asked for (a day's: its uploads that day, read from the index
/// only until its manifest lists them).
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
