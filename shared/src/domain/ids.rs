//! Typed ids, parsed once at the edge. Each `parse` enforces the grammar written on the type,
//! so code past the edge never re-checks a string.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::fmt;

/// Why a string is not a valid id. `rule` is written for humans and goes into 400 answers.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{rule}")]
pub struct IdError {
    pub rule: String,
}

fn err<T>(rule: impl Into<String>) -> Result<T, IdError> {
    Err(IdError { rule: rule.into() })
}

fn check_charset(
    value: &str,
    min: usize,
    max: usize,
    extra: &str,
    what: &str,
) -> Result<(), IdError> {
    let len = value.chars().count();
    if len < min || len > max {
        return err(format!(
            "{what} must be {min} to {max} characters, got {len}"
        ));
    }
    if let Some(c) = value
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || extra.contains(*c)))
    {
        return err(format!(
            "{what} may contain only ASCII letters, digits and `{extra}`; found {c:?}"
        ));
    }
    if !value.starts_with(|c: char| c.is_ascii_alphanumeric()) {
        return err(format!("{what} must start with a letter or digit"));
    }
    Ok(())
}

macro_rules! string_id {
    ($(#[$meta:meta])* $name:ident) => {
        $(#[$meta])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
        #[serde(transparent)]
        pub struct $name(String);

        impl $name {
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let raw = String::deserialize(d)?;
                $name::parse(&raw).map_err(serde::de::Error::custom)
            }
        }
    };
}

string_id!(
    /// The client's idempotency key: 1-128 ASCII letters, digits and `-_.:`, starting with a
    /// letter or digit. A UUID fits. One intentId is one user action, forever.
    IntentId
);
impl IntentId {
    pub fn parse(s: &str) -> Result<Self, IdError> {
        check_charset(s, 1, 128, "-_.:", "intentId")?;
        Ok(Self(s.to_owned()))
    }

    /// The key a client's intentId is stored under: scoped to its user, as payment APIs scope
    /// idempotency keys per account. The same intentId from two users is two intents, and one
    /// user can neither see nor take another's key. `u-` and 32 hex digits of
    /// SHA-256(user, intentId), so it is itself a valid intentId and never a service-made one.
    pub fn scoped(user: &UserId, client: &IntentId) -> Self {
        let digest = Sha256::digest(format!("scoped:{}\n{}", user.as_str(), client.as_str()));
        Self(format!("u-{}", &hex::encode(digest)[..32]))
    }
}

string_id!(
    /// The caller: 1-128 ASCII letters, digits and `-_.@`, starting with a letter or digit
    /// (a Cognito `sub` is a UUID). It names the caller's upload prefix `uploads/{userId}/`,
    /// so it can never hold `/`.
    UserId
);
impl UserId {
    pub fn parse(s: &str) -> Result<Self, IdError> {
        check_charset(s, 1, 128, "-_.@", "userId")?;
        if s.contains("..") {
            return err("userId must not contain `..`");
        }
        Ok(Self(s.to_owned()))
    }
}

string_id!(
    /// Our job id, returned to clients: `bj-` then 24 lowercase hex digits. It is derived from
    /// the intentId ([`JobId::for_intent`]) so every replay and every racer agrees on it.
    JobId
);
impl JobId {
    pub fn parse(s: &str) -> Result<Self, IdError> {
        let Some(hex_part) = s.strip_prefix("bj-") else {
            return err("jobId must start with `bj-`");
        };
        if hex_part.len() != 24
            || !hex_part
                .bytes()
                .all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
        {
            return err("jobId must be `bj-` followed by 24 lowercase hex digits");
        }
        Ok(Self(s.to_owned()))
    }

    pub fn for_intent(intent: &IntentId) -> Self {
        let digest = Sha256::digest(format!("intent:{}", intent.as_str()).as_bytes());
        Self(format!("bj-{}", &hex::encode(digest)[..24]))
    }

    /// The 24 hex digits, usable where `-` is not (Bedrock client tokens).
    pub fn hex(&self) -> &str {
        &self.0[3..]
    }
}

string_id!(
    /// One Bedrock record: `{jobId}-{imageIndex:06}`, so every output line joins back to
    /// exactly one (intent, image). At most 64 ASCII letters, digits and `-`.
    RecordId
);
impl RecordId {
    pub fn parse(s: &str) -> Result<Self, IdError> {
        check_charset(s, 1, 64, "-_", "recordId")?;
        Ok(Self(s.to_owned()))
    }

    pub fn for_image(job: &JobId, index: usize) -> Self {
        Self(format!("{}-{index:06}", job.as_str()))
    }

    /// The (jobId, image index) this record was derived from, if it is one of ours.
    pub fn owner(&self) -> Option<(JobId, usize)> {
        let (job, index) = self.0.rsplit_once('-')?;
        if index.len() != 6 {
            return None;
        }
        Some((JobId::parse(job).ok()?, index.parse().ok()?))
    }
}

string_id!(
    /// An S3 object key: 1-1024 bytes of UTF-8 with no control characters or backslashes, not
    /// starting with `/`, and with no empty, `.` or `..` path segment.
    ObjectKey
);
impl ObjectKey {
    pub fn parse(s: &str) -> Result<Self, IdError> {
        if s.is_empty() || s.len() > 1024 {
            return err(format!(
                "object key must be 1 to 1024 bytes, got {}",
                s.len()
            ));
        }
        if s.chars().any(|c| c.is_control() || c == '\\') {
            return err("object key must not contain control characters or backslashes");
        }
        if s.starts_with('/') {
            return err("object key must be relative (no leading `/`)");
        }
        if s.split('/')
            .any(|seg| seg.is_empty() || seg == "." || seg == "..")
        {
            return err("object key must not contain empty, `.` or `..` segments");
        }
        Ok(Self(s.to_owned()))
    }

    pub fn file_name(&self) -> &str {
        self.0.rsplit('/').next().unwrap_or(&self.0)
    }
}

string_id!(
    /// An S3 bucket name: 3-63 lowercase letters, digits, `.` and `-`.
    BucketName
);
impl BucketName {
    pub fn parse(s: &str) -> Result<Self, IdError> {
        let ok = (3..=63).contains(&s.len())
            && s.bytes()
                .all(|b| matches!(b, b'a'..=b'z' | b'0'..=b'9' | b'.' | b'-'))
            && s.starts_with(|c: char| c.is_ascii_alphanumeric())
            && s.ends_with(|c: char| c.is_ascii_alphanumeric());
        if !ok {
            return err("bucket name must be 3-63 lowercase letters, digits, `.` or `-`");
        }
        Ok(Self(s.to_owned()))
    }
}

string_id!(
    /// A model id or inference profile id as Bedrock names it, e.g.
    /// `anthropic.claude-haiku-4-5-20251001-v1:0`, a profile id (`us.…`) or an ARN: 1-256 ASCII letters, digits and `.-_:/`.
    ModelId
);
impl ModelId {
    pub fn parse(s: &str) -> Result<Self, IdError> {
        check_charset(s, 1, 256, ".-_:/", "modelId")?;
        Ok(Self(s.to_owned()))
    }
}

string_id!(
    /// `arn:aws:bedrock:{region}:{12-digit account}:model-invocation-job/{12 lowercase alnum}`.
    BedrockJobArn
);
impl BedrockJobArn {
    pub fn parse(s: &str) -> Result<Self, IdError> {
        let rule = "Bedrock job ARN must look like arn:aws:bedrock:<region>:<12-digit account>:model-invocation-job/<12 lowercase letters or digits>";
        let parts: Vec<&str> = s.splitn(6, ':').collect();
        let [arn, partition, service, region, account, resource] = parts.as_slice() else {
            return err(rule);
        };
        let job = resource.strip_prefix("model-invocation-job/").unwrap_or("");
        let ok = *arn == "arn"
            && partition.starts_with("aws")
            && *service == "bedrock"
            && !region.is_empty()
            && region
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
            && account.len() == 12
            && account.bytes().all(|b| b.is_ascii_digit())
            && job.len() == 12
            && job
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit());
        if !ok {
            return err(rule);
        }
        Ok(Self(s.to_owned()))
    }

    /// The 12-character suffix; Bedrock writes outputs under `{outputS3Uri}/{this}/`.
    pub fn job_suffix(&self) -> &str {
        self.0.rsplit('/').next().unwrap_or_default()
    }
}

string_id!(
    /// A trace id carried by every event and log line of one intent: 1-128 ASCII letters,
    /// digits and `-_.:=;`, which fits an X-Amzn-Trace-Id and a UUID.
    TraceId
);
impl TraceId {
    pub fn parse(s: &str) -> Result<Self, IdError> {
        check_charset(s, 1, 128, "-_.:=;", "traceId")?;
        Ok(Self(s.to_owned()))
    }

    pub fn generate() -> Self {
        Self(uuid::Uuid::new_v4().to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn when_intent_id_is_a_uuid_should_parse() {
        assert!(IntentId::parse("0b9f1c2e-6a55-4a4e-9d2b-1c1f4d0e9a77").is_ok());
    }

    #[test]
    fn when_intent_id_has_bad_chars_should_name_the_rule() {
        for bad in [
            "",
            " x",
            "a/b",
            "é",
            "a b",
            "-lead",
            &"x".repeat(129),
            "a\u{0}b",
        ] {
            let e = IntentId::parse(bad).expect_err(bad);
            assert!(e.rule.contains("intentId"), "{bad:?}: {}", e.rule);
        }
    }

    #[test]
    fn when_job_id_is_derived_should_be_stable_and_parse() {
        let i = IntentId::parse("abc").expect("valid");
        let a = JobId::for_intent(&i);
        assert_eq!(a, JobId::for_intent(&i));
        assert_eq!(JobId::parse(a.as_str()).expect("round trip"), a);
        assert_ne!(
            a,
            JobId::for_intent(&IntentId::parse("abd").expect("valid"))
        );
        assert_eq!(a.hex().len(), 24);
    }

    #[test]
    fn when_record_id_is_derived_should_map_back_to_its_image() {
        let job = JobId::for_intent(&IntentId::parse("abc").expect("valid"));
        let (u1, u2) = (
            UserId::parse("u1").expect("u"),
            UserId::parse("u2").expect("u"),
        );
        let key = IntentId::parse("photos-1").expect("valid");
        let scoped = IntentId::scoped(&u1, &key);
        assert_eq!(scoped, IntentId::scoped(&u1, &key), "stable");
        assert_ne!(scoped, IntentId::scoped(&u2, &key), "per user");
        assert!(
            IntentId::parse(scoped.as_str()).is_ok(),
            "a valid id itself"
        );
        let r = RecordId::for_image(&job, 42);
        assert!(r.as_str().len() <= 64);
        assert_eq!(RecordId::parse(r.as_str()).expect("valid"), r);
        assert_eq!(r.owner(), Some((job, 42)));
        assert_eq!(RecordId::parse("foreign").expect("valid").owner(), None);
    }

    #[test]
    fn when_object_key_escapes_should_be_rejected() {
        for bad in ["/abs", "a/../b", "..", "a//b", "a\\b", "a\nb", "", "a/./b"] {
            assert!(ObjectKey::parse(bad).is_err(), "{bad:?}");
        }
        assert_eq!(
            ObjectKey::parse("uploads/u/a.jpg")
                .expect("valid")
                .file_name(),
            "a.jpg"
        );
    }

    #[test]
    fn when_arn_is_bedrock_job_should_expose_suffix() {
        let arn = BedrockJobArn::parse(
            "arn:aws:bedrock:us-east-1:123456789012:model-invocation-job/abcd1234wxyz",
        )
        .expect("valid");
        assert_eq!(arn.job_suffix(), "abcd1234wxyz");
        for bad in [
            "arn:aws:s3:::bucket",
            "arn:aws:bedrock:us-east-1:12345:model-invocation-job/abcd1234wxyz",
            "arn:aws:bedrock:us-east-1:123456789012:model-invocation-job/ABCD1234WXYZ",
        ] {
            assert!(BedrockJobArn::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn when_user_id_has_slash_or_dots_should_be_rejected() {
        for bad in ["a/b", "a..b", "../x", ""] {
            assert!(UserId::parse(bad).is_err(), "{bad:?}");
        }
        assert!(UserId::parse("user-1@example.com").is_ok());
    }
}
