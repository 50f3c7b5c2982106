//! The webhook delivery worker: leases due deliveries from the store, sends each one signed
//! per Standard Webhooks, and records every attempt. It runs inside `opsiq serve` and stops
//! with it; what it had not finished stays in the store and is sent after a restart.
//!
//! Outbound requests go through a resolver that refuses loopback, private and link-local
//! addresses (after DNS resolution) unless the install allows them.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::{Duration, Instant};

use opsiq_core::Opsiq;
use opsiq_core::types::Timestamp;
use opsiq_core::webhooks::{self, AttemptOutcome, MAX_LOGGED_BODY, Outgoing, RetryPolicy};
use reqwest::dns::{Addrs, Name, Resolve, Resolving};
use tokio::sync::{Semaphore, watch};
use tokio::task::JoinSet;

/// How the worker delivers.
#[derive(Debug, Clone)]
pub struct WebhookConfig {
    /// Allow deliveries to loopback, private and link-local addresses (off by default).
    pub allow_private: bool,
    /// Deliveries in flight at once.
    pub concurrency: usize,
    /// Deliveries in flight to one endpoint at once, so a slow endpoint cannot take them all.
    pub per_endpoint: u32,
    /// Per-request timeout.
    pub timeout: Duration,
    /// How often the worker looks for due deliveries when idle.
    pub poll_interval: Duration,
    /// Retry delays and when a failing endpoint is disabled.
    pub retry: RetryPolicy,
}

impl Default for WebhookConfig {
    fn default() -> Self {
        WebhookConfig {
            allow_private: false,
            concurrency: 64,
            per_endpoint: 8,
            timeout: Duration::from_secs(10),
            poll_interval: Duration::from_millis(200),
            retry: RetryPolicy::default(),
        }
    }
}

/// Whether an address is a public destination (not loopback, private, link-local, shared,
/// documentation, multicast or unspecified), IPv4-mapped IPv6 included.
pub fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => {
            let [a, b, ..] = v4.octets();
            !(v4.is_private()
                || v4.is_loopback()
                || v4.is_link_local()
                || v4.is_broadcast()
                || v4.is_documentation()
                || v4.is_unspecified()
                || v4.is_multicast()
                || a == 0
                || (a == 100 && (64..128).contains(&b)))
        }
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return is_public(IpAddr::V4(v4));
            }
            let first = v6.segments()[0];
            !(v6.is_loopback()
                || v6.is_unspecified()
                || v6.is_multicast()
                || (first & 0xfe00) == 0xfc00
                || (first & 0xffc0) == 0xfe80)
        }
    }
}

fn refused(host: &str, ip: IpAddr) -> String {
    format!(
        "refused: {host} is {ip}, a loopback, private or link-local address; \
         start opsiq serve with --allow-private-webhooks to allow it"
    )
}

/// Resolves host names and keeps only the addresses deliveries may go to.
struct GuardedResolver {
    allow_private: bool,
}

impl Resolve for GuardedResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let allow_private = self.allow_private;
        Box::pin(async move {
            let host = name.as_str().to_string();
            let found: Vec<SocketAddr> =
                tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            let allowed: Vec<SocketAddr> = found
                .iter()
                .copied()
                .filter(|a| allow_private || is_public(a.ip()))
                .collect();
            match (allowed.is_empty(), found.first()) {
                (false, _) => Ok(Box::new(allowed.into_iter()) as Addrs),
                (true, Some(first)) => Err(refused(&host, first.ip()).into()),
                (true, None) => Err(format!("{host} has no address").into()),
            }
        })
    }
}

/// Checks a URL whose host is an IP literal (the resolver never sees those).
fn check_literal(url: &str, allow_private: bool) -> Result<(), String> {
    let parsed = reqwest::Url::parse(url).map_err(|e| format!("invalid URL: {e}"))?;
    let ip = match parsed.host() {
        Some(url::Host::Ipv4(ip)) => IpAddr::V4(ip),
        Some(url::Host::Ipv6(ip)) => IpAddr::V6(ip),
        _ => return Ok(()),
    };
    if allow_private || is_public(ip) {
        Ok(())
    } else {
        Err(refused(&ip.to_string(), ip))
    }
}

/// Runs until `shutdown` turns true, then lets deliveries in flight finish (up to the timeout).
pub async fn run_worker(
    opsiq: Opsiq,
    config: WebhookConfig,
    mut shutdown: watch::Receiver<bool>,
    heartbeat: Arc<AtomicI64>,
) {
    let client = match reqwest::Client::builder()
        .timeout(config.timeout)
        .redirect(reqwest::redirect::Policy::none())
        .user_agent(concat!("OpsIQ-Webhooks/", env!("CARGO_PKG_VERSION")))
        .dns_resolver(Arc::new(GuardedResolver {
            allow_private: config.allow_private,
        }))
        .build()
    {
        Ok(client) => client,
        Err(e) => {
            tracing::error!(error = %e, "cannot build the webhook client; webhooks will not be delivered");
            return;
        }
    };
    let slots = Arc::new(Semaphore::new(config.concurrency));
    let mut in_flight = JoinSet::new();
    let lease = config.timeout + Duration::from_secs(30);
    while !*shutdown.borrow() {
        heartbeat.store(Timestamp::now().millis(), Ordering::Relaxed);
        while in_flight.try_join_next().is_some() {}
        let free = slots.available_permits() as u32;
        let due = if free == 0 {
            Vec::new()
        } else {
            lease_due(&opsiq, free, config.per_endpoint, lease).await
        };
        if due.is_empty() {
            // Nothing due that may go now: wait for the next poll, or for a delivery in flight to
            // finish, which frees its endpoint's slot for the next one at once.
            tokio::select! {
                () = tokio::time::sleep(config.poll_interval) => {}
                Some(_) = in_flight.join_next(), if !in_flight.is_empty() => {}
                _ = shutdown.changed() => {}
            }
            continue;
        }
        for outgoing in due {
            let Ok(permit) = slots.clone().acquire_owned().await else {
                break;
            };
            let (client, opsiq, config) = (client.clone(), opsiq.clone(), config.clone());
            in_flight.spawn(async move {
                deliver(&client, &opsiq, outgoing, &config).await;
                drop(permit);
            });
        }
    }
    if tokio::time::timeout(config.timeout, async {
        while in_flight.join_next().await.is_some() {}
    })
    .await
    .is_err()
    {
        tracing::warn!(
            "webhook deliveries still in flight at shutdown; they will be retried after the lease expires"
        );
    }
}

async fn lease_due(opsiq: &Opsiq, limit: u32, per_endpoint: u32, lease: Duration) -> Vec<Outgoing> {
    let opsiq = opsiq.clone();
    let leased = tokio::task::spawn_blocking(move || {
        let now = Timestamp::now();
        match opsiq.read(|r| r.next_due_delivery(now))? {
            Some(due) if due <= now => opsiq.lease_deliveries(limit, per_endpoint, lease),
            _ => Ok(Vec::new()),
        }
    })
    .await;
    match leased {
        Ok(Ok(due)) => due,
        Ok(Err(e)) => {
            tracing::warn!(error = %e, "cannot lease webhook deliveries");
            Vec::new()
        }
        Err(e) => {
            tracing::error!(error = %e, "webhook lease task failed");
            Vec::new()
        }
    }
}

/// Sends one delivery and records the attempt.
async fn deliver(
    client: &reqwest::Client,
    opsiq: &Opsiq,
    outgoing: Outgoing,
    config: &WebhookConfig,
) {
    let outcome = attempt(client, &outgoing, config.allow_private).await;
    let (opsiq, policy) = (opsiq.clone(), config.retry.clone());
    let recorded =
        tokio::task::spawn_blocking(move || opsiq.record_attempt(&outgoing, outcome, &policy))
            .await;
    match recorded {
        Ok(Ok(_)) => {}
        Ok(Err(e)) => {
            tracing::warn!(error = %e, "cannot record a webhook attempt; it will be retried")
        }
        Err(e) => tracing::error!(error = %e, "webhook record task failed"),
    }
}

async fn attempt(client: &reqwest::Client, o: &Outgoing, allow_private: bool) -> AttemptOutcome {
    let started = Instant::now();
    let failed = |error: String| AttemptOutcome {
        status_code: None,
        latency_ms: started.elapsed().as_millis() as i64,
        error: Some(error),
        response_body: None,
        retry_after: None,
    };
    if let Err(e) = check_literal(&o.url, allow_private) {
        return failed(e);
    }
    let timestamp = Timestamp::now().millis() / 1000;
    let signature = match webhooks::sign(&o.secrets, &o.event_id, timestamp, &o.body) {
        Ok(s) => s,
        Err(e) => return failed(format!("cannot sign: {e}")),
    };
    let sent = client
        .post(&o.url)
        .header("content-type", "application/json")
        .header("webhook-id", &o.event_id)
        .header("webhook-timestamp", timestamp.to_string())
        .header("webhook-signature", signature)
        .body(o.body.clone())
        .send()
        .await;
    let mut response = match sent {
        Ok(r) => r,
        Err(e) => return failed(error_chain(&e)),
    };
    let status = response.status().as_u16();
    let retry_after = if status == 429 || status == 503 {
        response
            .headers()
            .get("retry-after")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok())
            .map(Duration::from_secs)
    } else {
        None
    };
    let mut body = Vec::new();
    while body.len() < MAX_LOGGED_BODY {
        match response.chunk().await {
            Ok(Some(chunk)) => body.extend_from_slice(&chunk),
            _ => break,
        }
    }
    body.truncate(MAX_LOGGED_BODY);
    AttemptOutcome {
        status_code: Some(status),
        latency_ms: started.elapsed().as_millis() as i64,
        error: (!(200..300).contains(&status)).then(|| format!("the receiver answered {status}")),
        response_body: Some(String::from_utf8_lossy(&body).into_owned()),
        retry_after,
    }
}

/// An error with its causes, which is where reqwest says what actually went wrong.
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(cause) = source {
        out.push_str(": ");
        out.push_str(&cause.to_string());
        source = cause.source();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn private_and_special_addresses_are_not_public() {
        for ip in [
            "127.0.0.1",
            "10.0.0.1",
            "172.16.5.4",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "0.0.0.0",
            "::1",
            "fe80::1",
            "fd00::1",
            "::ffff:10.0.0.1",
            "224.0.0.1",
        ] {
            assert!(!is_public(ip.parse().unwrap()), "{ip}");
        }
        for ip in ["93.184.216.34", "1.1.1.1", "2606:4700::1111"] {
            assert!(is_public(ip.parse().unwrap()), "{ip}");
        }
    }

    #[test]
    fn ip_literal_urls_are_checked_before_any_connection() {
        assert!(
            check_literal("http://10.0.0.1/hook", false)
                .unwrap_err()
                .contains("refused")
        );
        assert!(check_literal("http://[::1]:8080/hook", false).is_err());
        assert!(check_literal("http://127.0.0.1:9/hook", true).is_ok());
        assert!(check_literal("https://example.com/hook", false).is_ok());
    }
}
