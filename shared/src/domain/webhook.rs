//! Completion webhooks: where a finished batch is told, and the rules a receiver's address
//! must keep. A request names a URL and the secret its receiver verifies with (Standard
//! Webhooks, `whsec_` + base64 of 24 to 48 bytes; each endpoint its own, as the scheme has it);
//! a terminal intent sends one signed POST with its job view (`app::webhooks`).

use serde::{Deserialize, Serialize};
use std::net::IpAddr;

/// Where and how a finished batch is told. The secret is never shown back (not in any view),
/// nor printed (its `Debug` leaves it out).
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Webhook {
    pub url: String,
    pub secret: String,
}

impl std::fmt::Debug for Webhook {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Webhook")
            .field("url", &self.url)
            .field("secret", &"(redacted)")
            .finish()
    }
}

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

/// A Standard Webhooks secret: `whsec_` and the base64 (whole groups, no padding) of 24 to 48
/// bytes, as openapi.json's pattern says.
pub fn check_secret(raw: &str) -> Result<(), String> {
    use base64::Engine as _;
    let bytes = raw
        .strip_prefix("whsec_")
        .filter(|b| b.len() % 4 == 0 && !b.contains('='))
        .and_then(|b| base64::engine::general_purpose::STANDARD.decode(b).ok())
        .ok_or("must be whsec_ followed by base64 without padding")?;
    if !(24..=48).contains(&bytes.len()) {
        return Err(format!("must hold 24 to 48 bytes, got {}", bytes.len()));
    }
    Ok(())
}

/// True for an address on the public internet: not loopback, private (RFC 1918, unique
/// local), link-local (the metadata service's 169.254.169.254 among them), shared (CGNAT),
/// unspecified, broadcast, multicast or documentation ranges, nor an IPv4 address mapped into
/// IPv6 that is one of those.
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
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return is_public(IpAddr::V4(v4));
            }
            let seg = v6.segments();
            let first = seg[0];
            // NAT64 (64:ff9b::/96) and 6to4 (2002::/16) carry an IPv4 address inside.
            let nat64 = seg[..6] == [0x64, 0xff9b, 0, 0, 0, 0];
            let embedded_v4 = |hi: u16, lo: u16| {
                let [a, b] = hi.to_be_bytes();
                let [c, d] = lo.to_be_bytes();
                std::net::Ipv4Addr::new(a, b, c, d)
            };
            if nat64 {
                return is_public(IpAddr::V4(embedded_v4(seg[6], seg[7])));
            }
            if first == 0x2002 {
                return is_public(IpAddr::V4(embedded_v4(seg[1], seg[2])));
            }
            !(v6.is_loopback()
                || v6.is_unspecified()
                || v6.is_multicast()
                || (first & 0xfe00) == 0xfc00
                || (first & 0xffc0) == 0xfe80)
        }
    }
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
        ] {
            assert!(check_url(url, false).is_err(), "{url}");
            assert!(check_url(url, true).is_ok(), "{url} locally");
        }
        assert!(check_url("https://hooks.example.com/batch", false).is_ok());
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
    }
}
