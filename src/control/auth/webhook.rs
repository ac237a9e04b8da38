//! Round-trip auth: before a publish or subscribe is allowed, POST it as JSON to the owner's
//! webhook and allow it only on a 2xx answer within the timeout.
//!
//! The body is `{"action":"publish"|"subscribe","room":…,"stream":…,"identity":…,"client_ip":…}`;
//! it never contains the token. Anything else (non-2xx, redirect, connection error, timeout)
//! refuses. Answers, allow and deny alike, are cached per distinct request for `cache_ttl`, so a
//! page that reconnects or a periodic re-check does not hammer the webhook. The URL is never
//! formatted (it may carry credentials).

use std::collections::HashMap;
use std::fmt;
use std::net::IpAddr;
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use serde::Serialize;

use super::keys::AuthSetupError;
use super::{Action, AuthError};
use crate::config::AuthConfig;

/// How long a webhook answer is reused by default.
pub const DEFAULT_CACHE_TTL: Duration = Duration::from_secs(5);

/// The cache is swept when it reaches this many entries, and cleared if still full.
const MAX_CACHE_ENTRIES: usize = 4096;

/// A cached answer and when it was received.
type Answer = (Instant, Result<(), AuthError>);

/// One question to the webhook; also the cache key.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
pub struct WebhookRequest {
    /// Publish or subscribe.
    pub action: Action,
    /// The room in the request URL.
    pub room: String,
    /// The stream in the request URL.
    pub stream: String,
    /// The verified token's identity.
    pub identity: String,
    /// The HTTP client's address.
    pub client_ip: IpAddr,
}

/// The owner's auth webhook, with its client and answer cache.
pub struct Webhook {
    url: reqwest::Url,
    timeout: Duration,
    cache_ttl: Duration,
    client: reqwest::Client,
    cache: Mutex<HashMap<WebhookRequest, Answer>>,
}

impl fmt::Debug for Webhook {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Webhook")
            .field("timeout", &self.timeout)
            .field("cache_ttl", &self.cache_ttl)
            .finish_non_exhaustive()
    }
}

impl Webhook {
    /// A webhook at `url` (http or https) that must answer within `timeout`, caching answers for
    /// [`DEFAULT_CACHE_TTL`]. Redirects are not followed: a 3xx refuses.
    pub fn new(url: &str, timeout: Duration) -> Result<Self, AuthSetupError> {
        let url = reqwest::Url::parse(url)
            .ok()
            .filter(|u| matches!(u.scheme(), "http" | "https") && u.host().is_some())
            .ok_or(AuthSetupError::Webhook(
                "must be an http:// or https:// URL with a host",
            ))?;
        let client = reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout(timeout)
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|_| AuthSetupError::Webhook("cannot build the HTTP client"))?;
        Ok(Self {
            url,
            timeout,
            cache_ttl: DEFAULT_CACHE_TTL,
            client,
            cache: Mutex::new(HashMap::new()),
        })
    }

    /// The webhook `[auth]` configures, or `None` when `webhook_url` is unset.
    pub fn from_config(auth: &AuthConfig) -> Result<Option<Self>, AuthSetupError> {
        auth.webhook_url
            .as_deref()
            .map(|url| Self::new(url, auth.webhook_timeout))
            .transpose()
    }

    /// Sets how long answers are reused (zero turns the cache off).
    pub fn with_cache_ttl(mut self, cache_ttl: Duration) -> Self {
        self.cache_ttl = cache_ttl;
        self
    }

    /// How long the webhook has to answer.
    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    /// Asks the webhook (or the cache) whether `req` is allowed: `Ok` on a 2xx within the timeout,
    /// [`AuthError::WebhookDenied`] on another status, [`AuthError::WebhookUnavailable`] on a
    /// connection error or timeout. Must run inside a tokio runtime.
    pub async fn check(&self, req: &WebhookRequest) -> Result<(), AuthError> {
        if let Some(answer) = self.cached(req, Instant::now()) {
            return answer;
        }
        let answer = self.ask(req).await;
        self.remember(req, answer.clone(), Instant::now());
        answer
    }

    async fn ask(&self, req: &WebhookRequest) -> Result<(), AuthError> {
        let send = self.client.post(self.url.clone()).json(req).send();
        match tokio::time::timeout(self.timeout, send).await {
            Ok(Ok(response)) if response.status().is_success() => Ok(()),
            Ok(Ok(response)) => Err(AuthError::WebhookDenied {
                status: response.status().as_u16(),
            }),
            Ok(Err(_)) | Err(_) => Err(AuthError::WebhookUnavailable),
        }
    }

    fn cached(&self, req: &WebhookRequest, now: Instant) -> Option<Result<(), AuthError>> {
        let cache = self.cache.lock().unwrap_or_else(PoisonError::into_inner);
        let (at, answer) = cache.get(req)?;
        (now.duration_since(*at) < self.cache_ttl).then(|| answer.clone())
    }

    fn remember(&self, req: &WebhookRequest, answer: Result<(), AuthError>, now: Instant) {
        if self.cache_ttl.is_zero() {
            return;
        }
        let mut cache = self.cache.lock().unwrap_or_else(PoisonError::into_inner);
        if cache.len() >= MAX_CACHE_ENTRIES {
            let ttl = self.cache_ttl;
            cache.retain(|_, (at, _)| now.duration_since(*at) < ttl);
            if cache.len() >= MAX_CACHE_ENTRIES {
                cache.clear();
            }
        }
        cache.insert(req.clone(), (now, answer));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv4Addr;

    fn req(i: u32) -> WebhookRequest {
        WebhookRequest {
            action: Action::Publish,
            room: "r".into(),
            stream: format!("s{i}"),
            identity: "a".into(),
            client_ip: IpAddr::V4(Ipv4Addr::LOCALHOST),
        }
    }

    #[test]
    fn rejects_urls_that_are_not_http() {
        assert!(Webhook::new("ftp://x/", Duration::from_secs(1)).is_err());
        assert!(Webhook::new("not a url", Duration::from_secs(1)).is_err());
        assert!(Webhook::new("http://127.0.0.1:9/auth", Duration::from_secs(1)).is_ok());
    }

    #[test]
    fn cache_expires_and_stays_bounded() {
        let hook = Webhook::new("http://127.0.0.1:9/", Duration::from_secs(1)).unwrap();
        let t0 = Instant::now();
        hook.remember(&req(0), Err(AuthError::WebhookDenied { status: 403 }), t0);
        assert_eq!(
            hook.cached(&req(0), t0 + Duration::from_secs(4)),
            Some(Err(AuthError::WebhookDenied { status: 403 }))
        );
        assert_eq!(hook.cached(&req(0), t0 + DEFAULT_CACHE_TTL), None);
        for i in 0..(MAX_CACHE_ENTRIES as u32 + 10) {
            hook.remember(&req(i), Ok(()), t0);
        }
        assert!(hook.cache.lock().unwrap().len() <= MAX_CACHE_ENTRIES);
    }

    #[test]
    fn debug_hides_the_url() {
        let hook =
            Webhook::new("https://user:pw@example.test/hook", Duration::from_secs(1)).unwrap();
        assert!(!format!("{hook:?}").contains("pw"));
    }
}
