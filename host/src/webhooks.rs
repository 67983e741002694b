//! Completion webhooks: which hosts Kiln may call ([`Allowlist`], `KILN_WEBHOOK_ALLOW`), how a delivery
//! is signed ([`sign`], in the style of the Standard Webhooks spec), and the delivery task
//! ([`Deliverer`]) that each worker process (and `serve`) runs beside its workers.
//!
//! A job with a `callback_url` that reaches a final state is queued for delivery by the same script that
//! makes it final (`{kiln}:webhooks`, see `store::keys`). The deliverer claims one due attempt at a time
//! (a lease, so two processes never send the same attempt, and a process that dies mid-delivery leaves
//! an attempt that is due again when its lease ends), POSTs the job's document, and records the attempt
//! on the job. A failed attempt is retried after [`RETRY_FACTORS`] × the base delay, [`MAX_ATTEMPTS`]
//! attempts in all: with the default base of 5 s, over about an hour (5 s, 30 s, 2, 5, 10, 15, 30 min).
//! Deliveries never run in a worker slot: the worker's jobs and this task share nothing but Redis.

use crate::store::{Claimed, Store, WebhookClaim};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, Mac};
use ipnet::IpNet;
use sha2::Sha256;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;

/// Attempts a delivery makes before it is given up (`failed`).
pub const MAX_ATTEMPTS: u32 = 8;
/// The wait after failed attempt n (1-based) is `RETRY_FACTORS[n - 1]` × the base delay.
pub const RETRY_FACTORS: [u32; 7] = [1, 6, 24, 60, 120, 180, 360];
/// The longest callback URL a submit may name.
pub const MAX_URL_BYTES: usize = 2048;
/// Connect and total time of one attempt.
pub const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a claimed attempt is held before another process may take it (well past the timeout).
const CLAIM_LEASE: Duration = Duration::from_secs(60);
/// Attempts one process sends at once.
const CONCURRENT: usize = 16;
/// How often an idle deliverer looks for due deliveries.
const POLL: Duration = Duration::from_millis(250);

/// The operator's webhook settings.
#[derive(Debug, Clone)]
pub struct WebhookConfig {
    pub allow: Allowlist,
    /// The first retry's wait; later ones are [`RETRY_FACTORS`] times it.
    pub retry_base: Duration,
    /// Deliveries a tenant may have pending (jobs with a callback URL not yet delivered; 0: no limit).
    pub max_pending: u64,
}

impl Default for WebhookConfig {
    fn default() -> Self {
        Self {
            allow: Allowlist::default(),
            retry_base: Duration::from_secs(5),
            max_pending: 1000,
        }
    }
}

impl WebhookConfig {
    /// When to try again after failed attempt `attempt` (1-based); None: it was the last.
    pub fn retry_after(&self, attempt: u32) -> Option<Duration> {
        let factor = RETRY_FACTORS.get(attempt.checked_sub(1)? as usize)?;
        Some(self.retry_base * *factor)
    }
}

/// The hosts webhooks may go to: names (exact, case-insensitive) and CIDRs (for IP-literal URLs, and for
/// names not listed whose every address is in one, checked again at each attempt against DNS rebinding).
#[derive(Debug, Clone, Default)]
pub struct Allowlist {
    names: Vec<String>,
    nets: Vec<IpNet>,
}

impl Allowlist {
    /// `KILN_WEBHOOK_ALLOW`: comma-separated host names, IP addresses and CIDRs.
    pub fn parse(raw: &str) -> Result<Self, String> {
        let mut allow = Self::default();
        for rule in raw.split(',').map(str::trim).filter(|r| !r.is_empty()) {
            if let Ok(net) = rule.parse::<IpNet>() {
                allow.nets.push(net);
            } else if let Ok(ip) = rule.parse::<IpAddr>() {
                allow.nets.push(IpNet::from(ip));
            } else if rule.len() <= 253
                && rule
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.')
            {
                allow.names.push(rule.to_ascii_lowercase());
            } else {
                return Err(format!(
                    "KILN_WEBHOOK_ALLOW: `{rule}` is neither a host name nor an IP address or CIDR (such as 10.0.0.0/8)"
                ));
            }
        }
        Ok(allow)
    }

    /// No rule: webhooks are off.
    pub fn is_empty(&self) -> bool {
        self.names.is_empty() && self.nets.is_empty()
    }

    fn allows_ip(&self, ip: IpAddr) -> bool {
        self.nets.iter().any(|net| net.contains(&ip))
    }

    /// Checks a callback URL as sent with a submit; the error says what is wrong for a 422.
    pub async fn check(&self, raw: &str) -> Result<Target, String> {
        if self.is_empty() {
            return Err(
                "webhooks are off on this Kiln: its operator allows no callback hosts; they are \
                        enabled by setting KILN_WEBHOOK_ALLOW to the host names or CIDRs that may receive them"
                    .into(),
            );
        }
        let target = Target::parse(raw)?;
        self.resolve(&target).await?;
        Ok(target)
    }

    /// The addresses to connect to, each one allowed; an error names the host (or address) refused.
    pub async fn resolve(&self, target: &Target) -> Result<Vec<SocketAddr>, String> {
        if let Some(ip) = target.ip {
            return if self.allows_ip(ip) {
                Ok(vec![SocketAddr::new(ip, target.port)])
            } else {
                Err(format!(
                    "callback host `{}` is not allowed (KILN_WEBHOOK_ALLOW)",
                    target.host
                ))
            };
        }
        let listed = self.names.contains(&target.host);
        if !listed && self.nets.is_empty() {
            return Err(format!(
                "callback host `{}` is not allowed (KILN_WEBHOOK_ALLOW)",
                target.host
            ));
        }
        let addrs: Vec<SocketAddr> = tokio::time::timeout(
            Duration::from_secs(5),
            tokio::net::lookup_host((target.host.as_str(), target.port)),
        )
        .await
        .map_err(|_| format!("callback host `{}` did not resolve within 5 s", target.host))?
        .map_err(|e| format!("callback host `{}` does not resolve: {e}", target.host))?
        .collect();
        if addrs.is_empty() {
            return Err(format!("callback host `{}` has no addresses", target.host));
        }
        if !listed && let Some(refused) = addrs.iter().find(|a| !self.allows_ip(a.ip())) {
            return Err(format!(
                "callback host `{}` is not allowed (KILN_WEBHOOK_ALLOW): it resolves to {}, outside the allowed CIDRs",
                target.host,
                refused.ip()
            ));
        }
        Ok(addrs)
    }
}

/// A callback URL, parsed and checked for shape (not yet against the allowlist).
#[derive(Debug, Clone)]
pub struct Target {
    pub url: reqwest::Url,
    /// Lowercase, without the brackets of an IPv6 literal.
    pub host: String,
    pub ip: Option<IpAddr>,
    pub port: u16,
}

impl Target {
    pub fn parse(raw: &str) -> Result<Self, String> {
        if raw.len() > MAX_URL_BYTES {
            return Err(format!("callback_url is longer than {MAX_URL_BYTES} bytes"));
        }
        let url = reqwest::Url::parse(raw).map_err(|e| {
            format!(
                "callback_url `{}` is not a URL: {e}",
                crate::text::capped(raw.to_owned(), 80)
            )
        })?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(format!("callback_url must be http or https, not `{}`", url.scheme()));
        }
        if !url.username().is_empty() || url.password().is_some() {
            return Err("callback_url may not carry a user name or password".into());
        }
        let host = url
            .host_str()
            .ok_or("callback_url has no host")?
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_ascii_lowercase();
        let port = url.port_or_known_default().ok_or("callback_url has no port")?;
        Ok(Self {
            ip: host.parse().ok(),
            host,
            port,
            url,
        })
    }
}

/// A new secret: `whsec_` and the base64 of 32 random bytes (from the OS generator, via UUID v4).
pub fn new_secret() -> String {
    let (a, b) = (uuid::Uuid::new_v4(), uuid::Uuid::new_v4());
    let mut bytes = [0u8; 32];
    bytes[..16].copy_from_slice(a.as_bytes());
    bytes[16..].copy_from_slice(b.as_bytes());
    format!("whsec_{}", STANDARD.encode(bytes))
}

/// The `webhook-signature` header: `v1,` and the base64 HMAC-SHA256, keyed with the secret's bytes (the
/// base64 after `whsec_`), of `<webhook-id>.<webhook-timestamp>.<body>`.
pub fn sign(secret: &str, id: &str, timestamp: i64, body: &[u8]) -> Result<String, String> {
    let key = STANDARD
        .decode(secret.strip_prefix("whsec_").unwrap_or(secret))
        .map_err(|e| format!("the webhook secret is not base64: {e}"))?;
    let mut mac = Hmac::<Sha256>::new_from_slice(&key).map_err(|e| e.to_string())?;
    mac.update(format!("{id}.{timestamp}.").as_bytes());
    mac.update(body);
    Ok(format!("v1,{}", STANDARD.encode(mac.finalize().into_bytes())))
}

/// One attempt, as `GET /v1/jobs/{id}/deliveries` shows it.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize, utoipa::ToSchema)]
pub struct Attempt {
    /// 1 for the first.
    pub attempt: u32,
    /// When it started.
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub at: time::OffsetDateTime,
    /// The receiver's HTTP status; 2xx is a delivery, anything else is retried.
    pub status: Option<u16>,
    /// Why it failed without (or despite) a status: connect error, timeout, a redirect not followed.
    pub error: Option<String>,
    pub duration_ms: u64,
}

/// The delivery task of a process: claims due attempts and sends them, at most [`CONCURRENT`] at once.
pub struct Deliverer {
    store: Store,
    config: Arc<WebhookConfig>,
    claimant: String,
}

impl Deliverer {
    pub fn new(store: Store, config: Arc<WebhookConfig>) -> Self {
        Self {
            store,
            config,
            claimant: format!("webhooks-{}", uuid::Uuid::new_v4().simple()),
        }
    }

    /// Runs until `shutdown`, then lets the attempts in flight end (each within [`ATTEMPT_TIMEOUT`]).
    pub async fn run(self, shutdown: CancellationToken) {
        let this = Arc::new(self);
        let slots = Arc::new(Semaphore::new(CONCURRENT));
        loop {
            let permit = tokio::select! {
                permit = slots.clone().acquire_owned() => permit.expect("never closed"),
                _ = shutdown.cancelled() => break,
            };
            let idle = match this.store.claim_webhook(&this.claimant, CLAIM_LEASE).await {
                Ok(Claimed::Attempt(claim)) => {
                    let this = this.clone();
                    tokio::spawn(async move {
                        this.deliver(claim).await;
                        drop(permit);
                    });
                    None
                }
                Ok(Claimed::Gone) => None,
                Ok(Claimed::Nothing) => Some(POLL),
                Err(e) => {
                    tracing::warn!(error = %e, "claiming a webhook delivery failed; trying again in a second");
                    Some(Duration::from_secs(1))
                }
            };
            if let Some(wait) = idle {
                tokio::select! {
                    _ = tokio::time::sleep(wait) => {}
                    _ = shutdown.cancelled() => break,
                }
            }
        }
        // An attempt cut short here is not lost: its claim runs out and another process sends it again.
        let _ = tokio::time::timeout(
            ATTEMPT_TIMEOUT + Duration::from_secs(1),
            slots.acquire_many(CONCURRENT as u32),
        )
        .await;
    }

    async fn deliver(&self, claim: WebhookClaim) {
        let at = time::OffsetDateTime::now_utc();
        let started = Instant::now();
        let (status, error) = match self.attempt(&claim).await {
            Ok(status) if (200..300).contains(&status) => (Some(status), None),
            Ok(status) if (300..400).contains(&status) => (
                Some(status),
                Some("the receiver answered with a redirect, which Kiln never follows".into()),
            ),
            Ok(status) => (Some(status), None),
            Err(e) => (None, Some(e)),
        };
        let delivered = error.is_none() && status.is_some_and(|s| (200..300).contains(&s));
        let record = Attempt {
            attempt: claim.attempt,
            at,
            status,
            error,
            duration_ms: started.elapsed().as_millis() as u64,
        };
        let next = (!delivered)
            .then(|| self.config.retry_after(claim.attempt))
            .flatten()
            .filter(|_| claim.attempt < MAX_ATTEMPTS);
        let state = match (delivered, next) {
            (true, _) => "delivered",
            (false, Some(_)) => "retrying",
            (false, None) => "failed",
        };
        let next_at = next.map(|after| crate::job::now_millis() + after.as_millis() as i64);
        let json = serde_json::to_string(&record).unwrap_or_default();
        match self.store.webhook_done(&claim, &json, next_at, state).await {
            Ok(true) => tracing::debug!(job = %claim.id, attempt = claim.attempt, state, "webhook attempt"),
            Ok(false) => tracing::info!(job = %claim.id, "a webhook attempt outlived its claim; not recorded"),
            // Not lost: the claim runs out and the delivery is attempted again.
            Err(e) => tracing::warn!(job = %claim.id, error = %e, "recording a webhook attempt failed"),
        }
    }

    /// Sends one attempt; the receiver's status, or why there was none.
    async fn attempt(&self, claim: &WebhookClaim) -> Result<u16, String> {
        let record = self
            .store
            .get(&claim.tenant, claim.id)
            .await
            .map_err(|e| e.to_string())?
            .ok_or("the job expired before its webhook was delivered")?;
        let body = serde_json::to_vec(&record.view()).map_err(|e| e.to_string())?;
        let secret = self
            .store
            .webhook_secret(&claim.tenant)
            .await
            .map_err(|e| e.to_string())?;
        let target = Target::parse(&claim.url)?;
        // Checked again now: the allowlist may have changed, and a name may resolve elsewhere than at submit.
        let addrs = self.config.allow.resolve(&target).await?;
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .no_proxy()
            .connect_timeout(ATTEMPT_TIMEOUT)
            .timeout(ATTEMPT_TIMEOUT)
            // Connect to the addresses just checked, not to whatever a second lookup would answer.
            .resolve_to_addrs(&target.host, &addrs)
            .build()
            .map_err(|e| e.to_string())?;
        let id = claim.id.to_string();
        let timestamp = time::OffsetDateTime::now_utc().unix_timestamp();
        let signature = sign(&secret, &id, timestamp, &body)?;
        let response = client
            .post(target.url)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .header(reqwest::header::USER_AGENT, concat!("kiln/", env!("CARGO_PKG_VERSION")))
            .header("webhook-id", &id)
            .header("webhook-timestamp", timestamp.to_string())
            .header("webhook-signature", signature)
            .body(body)
            .send()
            .await
            .map_err(|e| describe(&e))?;
        // The body is not read: only the status counts, and a receiver cannot make Kiln hold its bytes.
        Ok(response.status().as_u16())
    }
}

/// A reqwest error with its causes, which say what actually went wrong (refused, timed out...).
fn describe(error: &reqwest::Error) -> String {
    let mut text = if error.is_timeout() {
        format!("timed out after {} s", ATTEMPT_TIMEOUT.as_secs())
    } else {
        error.to_string()
    };
    let mut source = std::error::Error::source(error);
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    crate::text::capped(text, 300)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signature_matches_the_standard_webhooks_test_vector() {
        // The example in the Standard Webhooks spec (and its reference libraries' tests).
        let signature = sign(
            "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
            "msg_p5jXN8AQM9LWM0D4loKWxJek",
            1614265330,
            br#"{"test": 2432232314}"#,
        );
        assert_eq!(signature.unwrap(), "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=");
    }

    #[test]
    fn secrets_are_random_base64() {
        let (a, b) = (new_secret(), new_secret());
        assert_ne!(a, b);
        let bytes = STANDARD.decode(a.strip_prefix("whsec_").unwrap()).unwrap();
        assert_eq!(bytes.len(), 32);
    }

    #[test]
    fn backoff_spans_about_an_hour_over_eight_attempts() {
        let config = WebhookConfig::default();
        let total: Duration = (1..MAX_ATTEMPTS).filter_map(|n| config.retry_after(n)).sum();
        assert_eq!(RETRY_FACTORS.len() as u32, MAX_ATTEMPTS - 1);
        assert_eq!(total, Duration::from_secs(5 * 751));
        assert_eq!(config.retry_after(MAX_ATTEMPTS), None);
    }

    #[test]
    fn urls_are_checked_for_shape() {
        assert!(Target::parse("ftp://example.com/").is_err());
        assert!(Target::parse("http://user:pw@example.com/").is_err());
        assert!(Target::parse(&format!("http://example.com/{}", "a".repeat(MAX_URL_BYTES))).is_err());
        let v6 = Target::parse("http://[::1]:8080/hook").unwrap();
        assert_eq!((v6.ip, v6.port), ("::1".parse().ok(), 8080));
    }

    #[tokio::test]
    async fn the_allowlist_takes_names_and_cidrs() {
        assert!(Allowlist::parse("hooks.example.com, 10.0.0.0/8,::1").is_ok());
        assert!(Allowlist::parse("not a host").is_err());
        let allow = Allowlist::parse("127.0.0.0/8").unwrap();
        assert!(allow.check("http://127.0.0.1:9/").await.is_ok());
        let refused = allow.check("http://192.168.1.1/").await.unwrap_err();
        assert!(refused.contains("`192.168.1.1`"), "{refused}");
        let off = Allowlist::default().check("http://127.0.0.1/").await.unwrap_err();
        assert!(off.contains("KILN_WEBHOOK_ALLOW"), "{off}");
    }
}
