//! Each receipt paid for once (`domain::duplicates`): the manifest builder checks every
//! accepted image against its user's index before it becomes a record, and every writer of
//! model answers stores them through [`store`], which answers the copies waiting on them.
//!
//! - **Check** ([`Checker::check`]): the image's digest is claimed with one conditional write
//!   (images are checked several at once; [`Checker::settle`] then takes them in the request's
//!   order, so of two copies in one request the earlier is the first). The first image of a
//!   digest becomes a record; a copy (in the same intent or a later one, within
//!   `DUPLICATE_WINDOW_DAYS`) does not. It is kept as a follower under its first's
//!   intent, and answered at once if the first's result is stored already. A first image is
//!   also compared, in the request's order, with the user's images of other requests and the
//!   earlier ones of this request by perceptual hash; a near one gets a mark that [`store`]
//!   puts on its result as `possibleDuplicateOf` (it names a first image, never a copy).
//! - **Store** ([`store`]): writes the results (with their near marks), then answers every
//!   follower of those records from them.
//!
//! Two identical images in flight at once: one claim wins, the other is its follower. The
//! follower is registered before it looks for the first's result, and the first's writer
//! looks for followers after it stored the result, so whichever comes second answers it:
//! never lost, and at worst answered twice with the same copy (one key, rewritten).
//!
//! Replay: a claim by the same (intent, record) is `First` again, so a rebuilt manifest makes
//! the same records; following and marking are puts of the same items; a first re-run (a
//! retryable failure, a redrive) rewrites its result and its copies with the new answer, one
//! result per copy, still 0 tokens.

use crate::app::{Deps, StageError};
use crate::domain::duplicates::{
    digest, follower_result, nearest, perceptual, Claim, FirstCopy, Follower, NearMark, Seen,
};
use crate::domain::ids::{IntentId, ObjectKey, RecordId};
use crate::domain::intent::BatchIntent;
use crate::domain::results::ImageResult;
use chrono::Duration;
use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;

/// What the check found for one image.
#[derive(Debug, Clone, PartialEq)]
pub enum Verdict {
    /// It becomes a record.
    First,
    /// A copy of this image: answered from it, never sent.
    Copy(FirstCopy),
}

/// One image's check: its digest and perceptual hash (None when duplicates are not looked
/// for) and the verdict of its claim, before [`Checker::settle`] puts the build's images in
/// order.
#[derive(Debug, Clone, PartialEq)]
pub struct Checked {
    pub digest: Option<String>,
    pub perceptual: Option<String>,
    pub verdict: Verdict,
}

/// One manifest build's checker: the user's images in the window from other requests, read
/// once; and, in the build's order, the first image of each digest it placed.
pub struct Checker {
    earlier: Option<Vec<Seen>>,
    placed: Mutex<Vec<Seen>>,
    window: Duration,
}

impl Checker {
    /// Off when `DUPLICATE_WINDOW_DAYS` is 0, and for a shared job (its members were checked).
    pub async fn open(deps: &Deps, intent: &BatchIntent) -> Result<Self, StageError> {
        let days = deps.settings.duplicate_window_days;
        let earlier = if days == 0 || intent.is_pool_job() {
            None
        } else {
            let now = deps.clock.now();
            let limit = crate::domain::duplicates::NEAR_SCAN;
            let seen = deps.duplicates.recent(&intent.user_id, now, limit).await?;
            // This request's own images (a rebuilt manifest's) are placed again, in order.
            let others = seen
                .into_iter()
                .filter(|s| s.first.intent_id != intent.intent_id);
            Some(others.collect())
        };
        Ok(Self {
            earlier,
            placed: Mutex::new(Vec::new()),
            window: Duration::days(days),
        })
    }

    /// Claims image `index` (`key`, its normalized copy `jpeg`) of `intent`. Images are
    /// checked several at once; a lower index of the same intent takes a claim over from a
    /// higher one, so the index ends up naming the build's first copy whatever the timing.
    pub async fn check(
        &self,
        deps: &Deps,
        intent: &BatchIntent,
        (index, key, record_id): (usize, &ObjectKey, &RecordId),
        jpeg: &[u8],
    ) -> Result<Checked, StageError> {
        if self.earlier.is_none() {
            return Ok(Checked {
                digest: None,
                perceptual: None,
                verdict: Verdict::First,
            });
        }
        let now = deps.clock.now();
        let seen = Seen {
            digest: digest(&intent.model_id, &intent.prompt_version, jpeg),
            perceptual: perceptual(jpeg),
            first: first_copy(intent, (index, key, record_id)),
            seen_at: now,
            expires_at: now + self.window,
        };
        let verdict = match deps.duplicates.claim(&intent.user_id, &seen, now).await? {
            Claim::Duplicate(first) if was_cancelled(deps, intent, &first).await? => {
                // Its owner cancelled the first: this image is sent, as the first of its digest.
                match deps
                    .duplicates
                    .replace(&intent.user_id, &seen, &first, now)
                    .await?
                {
                    Claim::Duplicate(other) => Verdict::Copy(other),
                    Claim::First => Verdict::First,
                }
            }
            Claim::Duplicate(first) => Verdict::Copy(first),
            Claim::First => Verdict::First,
        };
        Ok(Checked {
            digest: Some(seen.digest),
            perceptual: seen.perceptual,
            verdict,
        })
    }

    /// The image's final verdict, taken in the build's order: an image whose digest an earlier
    /// image of this build placed is a copy of that one, whatever its own claim said. A copy is
    /// registered under its first (and answered at once if the first has its result); a first
    /// near an earlier image (of another request, or earlier in this one) gets its mark.
    pub async fn settle(
        &self,
        deps: &Deps,
        intent: &BatchIntent,
        image: (usize, &ObjectKey, &RecordId),
        checked: Checked,
    ) -> Result<Verdict, StageError> {
        let (Some(earlier), Some(digest)) = (&self.earlier, checked.digest) else {
            return Ok(checked.verdict);
        };
        let now = deps.clock.now();
        let me = Seen {
            digest,
            perceptual: checked.perceptual,
            first: first_copy(intent, image),
            seen_at: now,
            expires_at: now + self.window,
        };
        let (placed_first, near) = {
            let placed = self.placed.lock().unwrap_or_else(|p| p.into_inner());
            let same = placed.iter().find(|s| s.digest == me.digest);
            let near = me.perceptual.as_deref().and_then(|p| {
                let known: Vec<Seen> = earlier.iter().chain(placed.iter()).cloned().collect();
                nearest(&known, &me.digest, p, now)
            });
            (same.map(|s| s.first.clone()), near)
        };
        let first = match (placed_first, checked.verdict) {
            (Some(earlier), _) => earlier,
            (None, Verdict::Copy(first)) => first,
            (None, Verdict::First) => {
                if let Some(of) = near {
                    let record_id = me.first.record_id.clone();
                    let mark = NearMark { record_id, of };
                    let until = me.expires_at;
                    deps.duplicates
                        .mark_near(&intent.intent_id, &mark, until)
                        .await?;
                }
                self.placed
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .push(me);
                return Ok(Verdict::First);
            }
        };
        let (index, key, record_id) = image;
        let follower = Follower {
            first: first.clone(),
            intent_id: intent.intent_id.clone(),
            record_id: record_id.clone(),
            index,
            image_key: key.clone(),
        };
        follow(deps, &follower, me.expires_at).await?;
        Ok(Verdict::Copy(first))
    }
}

/// True when `first` is another request's image whose owner cancelled it (its result is
/// `canceled`): no answer will ever come from it, so a copy must not wait on it.
async fn was_cancelled(
    deps: &Deps,
    intent: &BatchIntent,
    first: &FirstCopy,
) -> Result<bool, StageError> {
    if first.intent_id == intent.intent_id {
        return Ok(false);
    }
    let result = deps.duplicates.first_result(first).await?;
    Ok(result.is_some_and(|r| r.status == crate::domain::results::ResultStatus::Canceled))
}

/// Image `index` of `intent` as a first copy.
fn first_copy(
    intent: &BatchIntent,
    (index, key, record_id): (usize, &ObjectKey, &RecordId),
) -> FirstCopy {
    FirstCopy {
        intent_id: intent.intent_id.clone(),
        job_id: intent.job_id.clone(),
        record_id: record_id.clone(),
        index,
        image_key: key.clone(),
    }
}

/// Registers a copy, then answers it if its first's result is stored already (see the module
/// doc for why in this order).
async fn follow(
    deps: &Deps,
    follower: &Follower,
    until: chrono::DateTime<chrono::Utc>,
) -> Result<(), StageError> {
    deps.duplicates.follow(follower, until).await?;
    crate::metrics::count(crate::metrics::IMAGES_DEDUPLICATED, 1);
    if let Some(first) = deps.duplicates.first_result(&follower.first).await? {
        let copy = follower_result(&first, follower);
        deps.results
            .put_results(&follower.intent_id, &[copy])
            .await?;
    }
    Ok(())
}

/// Stores `results` of `intent` (each with its near-copy mark, if it has one), then answers the
/// copies that wait on them. Every writer of model answers calls this.
pub async fn store(
    deps: &Deps,
    intent: &IntentId,
    results: &[ImageResult],
) -> Result<(), StageError> {
    if results.is_empty() {
        return Ok(());
    }
    let (followers, near) = deps.duplicates.under(intent).await?;
    let marks: HashMap<&RecordId, &NearMark> = near.iter().map(|m| (&m.record_id, m)).collect();
    let marked: Vec<ImageResult>;
    let results = if marks.is_empty() {
        results
    } else {
        marked = results
            .iter()
            .cloned()
            .map(|mut r| {
                r.possible_duplicate_of = marks.get(&r.record_id).map(|m| m.of.clone());
                r
            })
            .collect();
        &marked
    };
    deps.results.put_results(intent, results).await?;
    let by_record: HashMap<&RecordId, &ImageResult> =
        results.iter().map(|r| (&r.record_id, r)).collect();
    let mut copies: BTreeMap<&IntentId, Vec<ImageResult>> = BTreeMap::new();
    for f in &followers {
        if let Some(first) = by_record.get(&f.first.record_id) {
            copies
                .entry(&f.intent_id)
                .or_default()
                .push(follower_result(first, f));
        }
    }
    for (owner, rows) in copies {
        deps.results.put_results(owner, &rows).await?;
    }
    Ok(())
}

/// How many of a new request's images the index already knows to be copies, for its estimate:
/// uploads whose digest (recorded at upload, for the default model and prompt) was seen in the
/// window, or repeats another of the request's. Keys listed in the request (at most
/// `INLINE_LIST`) or a day's uploads; 0 for anything else, another model or prompt, or with
/// the window off. Index reads: an upload not indexed yet is not counted.
pub async fn known_copies(deps: &Deps, intent: &BatchIntent) -> Result<usize, StageError> {
    use crate::domain::intent::ImageSelection;
    use crate::domain::uploads::Upload;
    let settings = &deps.settings;
    let defaults = settings.default_model() == Some(&intent.model_id)
        && intent.prompt_version == crate::domain::manifest::DEFAULT_PROMPT_VERSION;
    if settings.duplicate_window_days == 0 || !defaults {
        return Ok(0);
    }
    let user = &intent.user_id;
    let uploads: Vec<Upload> = match &intent.selection {
        ImageSelection::Day(day) => deps.uploads.uploads(user, *day).await?,
        ImageSelection::Keys(keys) => {
            let days: std::collections::BTreeSet<_> = keys
                .iter()
                .filter_map(|k| Upload::from_key(k.as_str(), 0, "").ok())
                .filter(|u| u.user_id == *user)
                .map(|u| u.day)
                .collect();
            let wanted: std::collections::HashSet<&ObjectKey> = keys.iter().collect();
            let mut found = Vec::new();
            for day in days {
                let listed = deps.uploads.uploads(user, day).await?;
                found.extend(listed.into_iter().filter(|u| wanted.contains(&u.key)));
            }
            found
        }
        _ => return Ok(0),
    };
    let digests: Vec<String> = uploads.iter().filter_map(|u| u.digest.clone()).collect();
    let now = deps.clock.now();
    let seen: std::collections::HashSet<String> = deps
        .duplicates
        .known(user, &digests, now)
        .await?
        .into_iter()
        .collect();
    let mut mine = std::collections::HashSet::new();
    Ok(uploads
        .iter()
        .filter_map(|u| u.digest.as_ref())
        .filter(|d| seen.contains(*d) || !mine.insert(*d))
        .count())
}
