//! Completion webhooks: where a finished batch is told, and the rules a receiver's address
//! must keep, each checked against the Standard Webhooks specification (v1.0.0,
//! github.com/standard-webhooks/standard-webhooks, spec/standard-webhooks.md):
//! - the secret: "Random. Between 24 bytes (192 bits) and 64 bytes (512 bits)", "base64
//!   encoded, prefixed with `whsec_`" ([`check_secret`]; padding accepted, each endpoint its
//!   own);
//! - "A recommended request timeout value for webhooks is somewhere between 15 and 30s": 15 s
//!   (`adapters::webhook_http::TIMEOUT`);
//! - "`410 Gone`: ... Sender should disable the webhook endpoint": no further try for the
//!   intent ([`DeliveryEnd::Gone`]);
//! - "retry delivery following a retry schedule spanning multiple days, with an exponential
//!   backoff ... random jitter": the spec's example table, [`RETRY_SCHEDULE_SECS`] (about 75
//!   hours in all);
//! - SSRF: the spec asks to keep webhooks out of internal networks and names no ranges; the
//!   safe reading admits public IPv4 and only global unicast IPv6 ([`is_public`]).
//!
//! A terminal intent sends one signed POST with its job view (`app::webhooks`).

use serde::{Deserialize, Serialize};
use std::net::{IpAddr, Ipv6Addr};

/// Where and how a finished batch is told, and how its delivery went. The secret is never
/// shown back (not in any view), nor printed (its `Debug` leaves it out).
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Webhook {
    pub url: String,
    pub secret: String,
    /// Tries that failed so far.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub failures: u32,
    /// Set once no further try will be made.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ended: Option<DeliveryEnd>,
}

fn is_zero(n: &u32) -> bool {
    *n == 0
}

/// Why a webhook is tried no more.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum DeliveryEnd {
    /// The receiver took it (2xx).
    Delivered,
    /// The receiver answered 410 Gone: the endpoint is disabled for this intent.
    Gone,
    /// Every try of the schedule failed.
    Exhausted,
}

impl Webhook {
    pub fn new(url: String, secret: String) -> Self {
        Self {
            url,
            secret,
            failures: 0,
            ended: None,
        }
    }

    /// The wait before the next try after `failures` failed ones, or None once the schedule
    /// is spent.
    pub fn next_delay(failures: u32) -> Option<chrono::Duration> {
        let i = usize::try_from(failures).ok()?.checked_sub(1)?;
        RETRY_SCHEDULE_SECS
            .get(i)
            .map(|s| chrono::Duration::seconds(*s))
    }
}

impl std::fmt::Debug for Webhook {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Webhook")
            .field("url", &self.url)
            .field("secret", &"(redacted)")
            .field("failures", &self.failures)
            .field("ended", &self.ended)
            .finish()
    }
}

/// The waits between tries after the first, immediate one: the Standard Webhooks spec's
/// example schedule (5 s, 5 min, 30 min, 2 h, 5 h, 10 h, 14 h, 20 h, 24 h), 10 tries over
/// 75 h 35 min. A try is made by the first reconciler pass at or after its time.
pub const RETRY_SCHEDULE_SECS: [i64; 9] =
    [5, 300, 1_800, 7_200, 18_000, 36_000, 50_400, 72_000, 86_400];

/// Longest webhook URL accepted.
pub const MAX_URL: usize = 2_048;

/// The event types a receiver sees (`type` in the body).
pub const COMPLETED: &str = "batch.completed";
pub const FAILED: &str = "batch.failed";

/// A URL a webhook may go to: `https` (or `http` when `local` is allowed), a host, no
/// credentials, at most [`MAX_URL`] bytes; unless `local`, no literal address of this machine,
/// its metadata service or a private network (names are checked again once resolved).
pub fn check_url(raw: &str, local: bool) -> Result<url::Url, String> {
    if raw.len() > MAX_URL {
        return Err(format!("must be at most {MAX_URL} bytes"));
    }
    let url = url::Url::parse(raw).map_err(|e| format!("must be an absolute URL ({e})"))?;
    match (url.scheme(), local) {
        ("https", _) | ("http", true) => {}
        _ => return Err("must be an https:// URL".into()),
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err("must not carry credentials".into());
    }
    let host = url.host_str().ok_or("must name a host")?;
    if !local {
        let bare = host.trim_start_matches('[').trim_end_matches(']');
        let named_local = bare.eq_ignore_ascii_case("localhost") || bare.ends_with(".localhost");
        if named_local || bare.parse::<IpAddr>().is_ok_and(|ip| !is_public(ip)) {
            return Err(
                "must not point at this machine, its metadata service or a private network".into(),
            );
        }
    }
    Ok(url)
}

/// A Standard Webhooks secret: `whsec_` and the base64 of 24 to 64 bytes ("Between 24 bytes
/// (192 bits) and 64 bytes (512 bits)"), with or without padding.
pub fn check_secret(raw: &str) -> Result<(), String> {
    secret_bytes(raw).map(|_| ())
}

/// The bytes of a Standard Webhooks secret (see [`check_secret`]).
pub fn secret_bytes(raw: &str) -> Result<Vec<u8>, String> {
    use base64::Engine as _;
    let b64 = raw
        .strip_prefix("whsec_")
        .ok_or("must be whsec_ followed by base64")?;
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(b64)
        .or_else(|_| base64::engine::general_purpose::STANDARD_NO_PAD.decode(b64))
        .map_err(|_| "must be whsec_ followed by base64")?;
    if !(24..=64).contains(&bytes.len()) {
        return Err(format!("must hold 24 to 64 bytes, got {}", bytes.len()));
    }
    Ok(bytes)
}

/// The secret as the signer reads it: `whsec_` and padded base64 (the standardwebhooks crate
/// decodes padded base64 only).
pub fn canonical_secret(raw: &str) -> Result<String, String> {
    use base64::Engine as _;
    let bytes = secret_bytes(raw)?;
    Ok(format!(
        "whsec_{}",
        base64::engine::general_purpose::STANDARD.encode(bytes)
    ))
}

/// True for an address on the public internet: an IPv4 address that is not loopback, private
/// (RFC 1918), link-local (the metadata service's 169.254.169.254 among them), shared (CGNAT),
/// unspecified, broadcast, multicast, benchmarking or documentation; an IPv6 address only if it
/// is global unicast (see [`is_global_unicast_v6`]: no IPv6 form of an IPv4 address passes).
pub fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => {
            let [a, b, ..] = v4.octets();
            !(v4.is_loopback()
                || v4.is_private()
                || v4.is_link_local()
                || v4.is_unspecified()
                || v4.is_broadcast()
                || v4.is_multicast()
                || v4.is_documentation()
                || (a == 100 && (64..128).contains(&b))
                || (a == 198 && (18..20).contains(&b))
                || (a == 192 && b == 0 && v4.octets()[2] == 0)
                || a >= 240
                || a == 0)
        }
        IpAddr::V6(v6) => is_global_unicast_v6(v6),
    }
}

/// True for a global unicast IPv6 address (2000::/3, RFC 4291) outside the special-purpose
/// blocks in it that the IANA IPv6 Special-Purpose Address Registry lists or that carry an
/// IPv4 address: 2001::/23 (IETF protocol assignments: TEREDO, benchmarking, ORCHID, ...),
/// 2001:db8::/32 and 3fff::/20 (documentation), 2002::/16 (6to4) and 2620:4f:8000::/48 (AS112).
/// Everything outside 2000::/3 is refused, among it ::/96 (IPv4-compatible, so
/// `::169.254.169.254`), ::ffff:0:0/96 (IPv4-mapped), 64:ff9b::/96 and 64:ff9b:1::/48 (NAT64),
/// 100::/64 (discard), 5f00::/16 (SRv6), fc00::/7, fe80::/10, fec0::/10 (site-local, RFC 3879)
/// and ff00::/8 (multicast). Rust's own `Ipv6Addr::is_global` is unstable (rust-lang/rust#27709)
/// and admits NAT64, so it is not used.
fn is_global_unicast_v6(v6: Ipv6Addr) -> bool {
    let seg = v6.segments();
    let in_block = |prefix: &[u16], bits: u32| {
        let mut left = bits;
        for (i, p) in prefix.iter().enumerate() {
            let take = left.min(16);
            if take == 0 {
                break;
            }
            let mask = if take == 16 {
                0xffff
            } else {
                !(0xffffu16 >> take)
            };
            if seg[i] & mask != p & mask {
                return false;
            }
            left -= take;
        }
        true
    };
    in_block(&[0x2000], 3)
        && !(in_block(&[0x2001, 0x0000], 23)
            || in_block(&[0x2001, 0x0db8], 32)
            || in_block(&[0x3fff], 20)
            || in_block(&[0x2002], 16)
            || in_block(&[0x2620, 0x004f, 0x8000], 48))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn when_a_webhook_points_inward_should_refuse_it_unless_local() {
        for url in [
            "https://169.254.169.254/latest/meta-data/",
            "https://10.0.0.7/hook",
            "https://[::1]/hook",
            "https://[::ffff:192.168.1.1]/hook",
            "https://localhost:8443/hook",
            "https://100.64.0.1/",
            "https://[64:ff9b::a9fe:a9fe]/",
            "https://[2002:a00:1::]/",
            "https://198.18.0.1/",
            "https://[::169.254.169.254]/",
            "https://[::ffff:0:0]/",
            "https://[64:ff9b:1::1]/",
            "https://[fec0::1]/",
            "https://[2001:db8::1]/",
            "https://[2001::1]/",
            "https://[3fff::1]/",
            "https://[100::1]/",
            "https://[5f00::1]/",
            "https://[ff02::1]/",
        ] {
            assert!(check_url(url, false).is_err(), "{url}");
            assert!(check_url(url, true).is_ok(), "{url} locally");
        }
        assert!(check_url("https://hooks.example.com/batch", false).is_ok());
        assert!(
            check_url("https://[2606:4700::1111]/", false).is_ok(),
            "global unicast"
        );
        assert!(
            check_url("http://hooks.example.com/batch", false).is_err(),
            "https only"
        );
        assert!(check_url("https://u:p@hooks.example.com/", false).is_err());
        assert!(check_url("ftp://hooks.example.com/", true).is_err());
    }

    #[test]
    fn when_a_secret_is_given_should_take_only_standard_webhooks_ones() {
        assert!(check_secret("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").is_ok());
        assert!(check_secret("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").is_err());
        assert!(check_secret("whsec_c2hvcnQ=").is_err(), "5 bytes");
        // 25 bytes: padded, and not.
        let padded = "whsec_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA==";
        assert!(check_secret(padded).is_ok());
        assert!(check_secret(padded.trim_end_matches('=')).is_ok());
        let b64 = |n: usize| {
            use base64::Engine as _;
            format!(
                "whsec_{}",
                base64::engine::general_purpose::STANDARD.encode(vec![7u8; n])
            )
        };
        assert!(check_secret(&b64(64)).is_ok(), "64 bytes");
        assert!(check_secret(&b64(65)).is_err(), "65 bytes");
        assert!(check_secret(&b64(23)).is_err(), "23 bytes");
    }

    #[test]
    fn the_retry_schedule_spans_more_than_a_day() {
        let total: i64 = RETRY_SCHEDULE_SECS.iter().sum();
        assert_eq!(total, 75 * 3600 + 35 * 60 + 5);
        assert_eq!(Webhook::next_delay(1), Some(chrono::Duration::seconds(5)));
        assert_eq!(Webhook::next_delay(9), Some(chrono::Duration::hours(24)));
        assert_eq!(Webhook::next_delay(10), None);
    }
}
