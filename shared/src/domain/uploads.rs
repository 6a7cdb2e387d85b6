//! The uploads index: what the upload pipeline stored, per user and day. It is filled from S3
//! "Object Created" events (an intake source) and read by the manifest builder and the nightly
//! run instead of listing S3 prefixes.

use crate::domain::ids::{IdError, IntentId, ObjectKey, UserId};
use chrono::NaiveDate;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// Days an upload's index entries are kept after its day (DynamoDB TTL `expiresAt`); the
/// uploads bucket expires `uploads/` and `normalized/` after the same 90 days (infra,
/// `UPLOAD_EXPIRY`), so the index never names an object long gone.
pub const UPLOAD_RETENTION_DAYS: i64 = 90;

/// When an upload of `day` leaves the index (epoch seconds, for DynamoDB's TTL).
pub fn upload_expires_at(day: NaiveDate) -> i64 {
    (day + chrono::Duration::days(UPLOAD_RETENTION_DAYS))
        .and_hms_opt(0, 0, 0)
        .map_or(0, |t| t.and_utc().timestamp())
}

/// The longest upload key the service takes: its normalized copy's key,
/// `normalized/e{long edge}/{key}.jpg` (`app::normalized`), must still fit S3's 1,024 bytes,
/// and that adds at most 21 (`normalized/` 11, the policy's `e`, a 4-digit edge and its `/` 5,
/// `.jpg` 4).
pub const MAX_UPLOAD_KEY_BYTES: usize = 1_024 - 21;

/// Why an upload key is refused when it is longer than [`MAX_UPLOAD_KEY_BYTES`].
pub fn key_too_long(key: &str) -> Option<String> {
    (key.len() > MAX_UPLOAD_KEY_BYTES).then(|| {
        format!(
            "must be at most {MAX_UPLOAD_KEY_BYTES} bytes (its normalized copy, normalized/e{{edge}}/{{key}}.jpg, must fit S3's 1,024), got {}",
            key.len()
        )
    })
}

/// One stored image. The layout `uploads/{userId}/{YYYY-MM-DD}/{name}` gives its user and day.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Upload {
    pub user_id: UserId,
    pub day: NaiveDate,
    pub key: ObjectKey,
    pub size: u64,
    pub etag: String,
    /// Its normalized copy's digest for the default model and prompt (`domain::duplicates`),
    /// once normalized at upload: how a request's estimate knows its copies before it is built.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub digest: Option<String>,
}

impl Upload {
    /// The upload a key names, if it follows the uploads layout.
    pub fn from_key(key: &str, size: u64, etag: &str) -> Result<Self, IdError> {
        let layout = || IdError {
            rule: format!("key {key:?} is not uploads/{{userId}}/{{YYYY-MM-DD}}/{{name}}"),
        };
        if let Some(rule) = key_too_long(key) {
            return Err(IdError {
                rule: format!("key {rule}"),
            });
        }
        let rest = key.strip_prefix("uploads/").ok_or_else(layout)?;
        let mut parts = rest.splitn(3, '/');
        let (Some(user), Some(day), Some(name)) = (parts.next(), parts.next(), parts.next()) else {
            return Err(layout());
        };
        if name.is_empty() || name.ends_with('/') {
            return Err(layout());
        }
        let day = NaiveDate::parse_from_str(day, "%Y-%m-%d").map_err(|_| layout())?;
        let user_id = UserId::parse(user)?;
        if crate::domain::intent::is_reserved_user(&user_id) {
            return Err(IdError {
                rule: format!("key {key:?} is under a reserved user's prefix ({user})"),
            });
        }
        Ok(Self {
            user_id,
            day,
            key: ObjectKey::parse(key)?,
            size,
            etag: etag.trim_matches('"').to_owned(),
            digest: None,
        })
    }
}

/// The nightly intent of one user and day: `nightly-{day}-{32 hex of sha256(userId)}`, so
/// running the schedule twice (or replaying it) finds the intent it already made.
pub fn nightly_intent_id(user: &UserId, day: NaiveDate) -> IntentId {
    let hex = hex::encode(Sha256::digest(user.as_str().as_bytes()));
    IntentId::parse(&format!(
        "nightly-{}-{}",
        day.format("%Y-%m-%d"),
        &hex[..32]
    ))
    .unwrap_or_else(|e| unreachable!("a dated hex id is valid: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn when_key_follows_the_layout_should_give_user_and_day() {
        let u = Upload::from_key("uploads/u-1/2026-11-28/a b.jpg", 10, "\"abc\"").expect("ok");
        assert_eq!(u.user_id.as_str(), "u-1");
        assert_eq!(u.day.to_string(), "2026-11-28");
        assert_eq!(u.etag, "abc");
        for bad in [
            "other/u-1/2026-11-28/a.jpg",
            "uploads/u-1/a.jpg",
            "uploads/u-1/2026-13-01/a.jpg",
            "uploads/u-1/2026-11-28/",
            "uploads/../2026-11-28/a.jpg",
        ] {
            assert!(Upload::from_key(bad, 1, "e").is_err(), "{bad}");
        }
    }

    #[test]
    fn when_deriving_nightly_ids_should_be_stable_per_user_and_day() {
        let u = UserId::parse("u-1").expect("ok");
        let d = NaiveDate::from_ymd_opt(2026, 11, 28).expect("date");
        assert_eq!(nightly_intent_id(&u, d), nightly_intent_id(&u, d));
        assert_ne!(
            nightly_intent_id(&u, d),
            nightly_intent_id(&u, d.succ_opt().expect("d"))
        );
        let other = UserId::parse("u-2").expect("ok");
        assert_ne!(nightly_intent_id(&u, d), nightly_intent_id(&other, d));
    }
}
