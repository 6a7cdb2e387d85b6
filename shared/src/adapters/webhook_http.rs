//! Webhooks over HTTP (`reqwest`, rustls with ring): one POST, no redirects followed, 15 seconds at most
//! (the Standard Webhooks spec: "somewhere between 15 and 30s").
//! Unless local receivers are allowed, the host's addresses are resolved first, each must be
//! public (`domain::webhook::is_public`), and the connection is pinned to the address checked,
//! so a name that resolves elsewhere a moment later (DNS rebinding) cannot reach inward.

use crate::domain::webhook::is_public;
use crate::ports::{ErrorKind, PortError, WebhookPoster};
use async_trait::async_trait;
use std::time::Duration;

/// How long a receiver has to answer.
pub const TIMEOUT: Duration = Duration::from_secs(15);

#[derive(Debug, Default, Clone)]
pub struct HttpWebhooks;

/// Makes ring rustls' crypto provider for the process, before any HTTP client is built
/// (reqwest is built without one of its own: see the workspace's `rustls` dependency).
/// Idempotent: a provider installed already is left as it is.
pub fn install_tls_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

fn transient(what: &str, e: impl std::fmt::Display) -> PortError {
    PortError::new(ErrorKind::Transient, format!("{what}: {e}"))
}

#[async_trait]
impl WebhookPoster for HttpWebhooks {
    async fn post(
        &self,
        url: &str,
        headers: &[(&'static str, String)],
        body: Vec<u8>,
        allow_local: bool,
    ) -> Result<u16, PortError> {
        let url = crate::domain::webhook::check_url(url, allow_local)
            .map_err(|rule| PortError::new(ErrorKind::Validation, format!("webhook: {rule}")))?;
        install_tls_provider();
        let mut client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(TIMEOUT);
        if !allow_local {
            // An IPv6 literal is resolved (and pinned) without its brackets.
            let host = url
                .host_str()
                .unwrap_or_default()
                .trim_start_matches('[')
                .trim_end_matches(']')
                .to_owned();
            let port = url.port_or_known_default().unwrap_or(443);
            let addrs: Vec<std::net::SocketAddr> = tokio::net::lookup_host((host.as_str(), port))
                .await
                .map_err(|e| transient("resolving the webhook's host", e))?
                .collect();
            let Some(addr) = addrs.first().copied() else {
                return Err(transient("resolving the webhook's host", "no address"));
            };
            if let Some(inward) = addrs.iter().find(|a| !is_public(a.ip())) {
                return Err(PortError::new(
                    ErrorKind::Validation,
                    format!(
                        "webhook: {host} resolves to {}, which is not public",
                        inward.ip()
                    ),
                ));
            }
            client = client.resolve(&host, addr);
        }
        let client = client.build().map_err(|e| transient("webhook client", e))?;
        let mut request = client
            .post(url)
            .header("content-type", "application/json")
            .body(body);
        for (name, value) in headers {
            request = request.header(*name, value);
        }
        let response = request
            .send()
            .await
            .map_err(|e| transient("webhook POST", e))?;
        Ok(response.status().as_u16())
    }
}
