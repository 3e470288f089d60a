//! How many sign-in attempts one client may make at the portal: at most
//! `[portal] sign_ins_per_client` in each fixed window of
//! `client_window_minutes`, whatever codes it tries. A consent code locks
//! after a few failures in a row ([`super::credentials`]), but an attacker
//! trying many codes meets no lock, and each attempt costs an argon2 check
//! and a durable audit entry; beyond the limit the portal answers 429
//! `TOO_MANY_ATTEMPTS` before either.
//!
//! The attempts are counted in the node's database (table
//! `portal_sign_in_attempts`), so every replica holds a client to one limit.
//! A client is an IPv4 address or an IPv6 /64 (what one subscriber is
//! given), taken from the connection, or from `X-Forwarded-For` when the
//! connection comes from one of `trusted_proxies`. It is stored only as an
//! HMAC-SHA-256 digest under a key derived from the node's signing key (the
//! same for every replica, and not in the database), so the table names no
//! survivor's address; rows of ended windows are deleted as attempts come.
//!
//! The first refusal of a client's window is audited. The row remembers
//! that its refusal is in the log only once the entry is durable
//! ([`SignInThrottle::refusal_audited`]), so a refusal whose entry could not
//! be written (the log unavailable) leaves the next refusal to be audited,
//! and no window of refusals goes unlogged.

use std::net::{IpAddr, Ipv6Addr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};

use aws_lc_rs::hmac;
use axum::http::HeaderMap;
use exchange_service::db::Db;
use ipnet::IpNet;
use sqlx::Row as _;
use time::OffsetDateTime;

use crate::config::PortalConfig;

/// Counts between two deletions of ended windows.
const PURGE_EVERY: u64 = 64;

/// What the count allows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Attempt {
    /// Within the limit: check the code.
    Allowed,
    /// Over the limit until `until`. `audited` once a refusal of this
    /// window is in the audit log; until then each refusal is audited, and
    /// [`SignInThrottle::refusal_audited`] records it.
    Refused {
        until: OffsetDateTime,
        audited: bool,
        window: RefusedWindow,
    },
}

/// The row of a refused client's window, to mark its refusal audited.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefusedWindow {
    client_digest: String,
    window_start: i64,
}

/// The portal's limit of sign-in attempts per client.
pub struct SignInThrottle {
    key: hmac::Key,
    limit: i64,
    window_ms: i64,
    trusted_proxies: Vec<IpNet>,
    counted: AtomicU64,
}

impl std::fmt::Debug for SignInThrottle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SignInThrottle")
            .field("limit", &self.limit)
            .field("window_ms", &self.window_ms)
            .finish_non_exhaustive()
    }
}

impl SignInThrottle {
    /// The limit `config` sets, with the digest key derived from the node's
    /// signing key: its (deterministic) Ed25519 signature of a name used
    /// for nothing else.
    pub fn new(node_key: &aws_lc_rs::signature::Ed25519KeyPair, config: &PortalConfig) -> Self {
        let derived = node_key.sign(b"exchange/portal-sign-in-attempts/v1");
        Self {
            key: hmac::Key::new(hmac::HMAC_SHA256, derived.as_ref()),
            limit: i64::from(config.sign_ins_per_client),
            window_ms: config.client_window_minutes as i64 * 60_000,
            trusted_proxies: config.trusted_proxies.clone(),
            counted: AtomicU64::new(0),
        }
    }

    /// The client of a request that came from `peer`: the peer itself, or,
    /// when the peer is a trusted proxy, the nearest address in
    /// `X-Forwarded-For` that is not a trusted proxy (the proxies append,
    /// so what is left of it was written by the client and proves
    /// nothing). `None` when the peer is not known.
    pub fn client(&self, peer: Option<SocketAddr>, headers: &HeaderMap) -> Option<IpAddr> {
        let peer = peer?.ip().to_canonical();
        if !self.trusted(peer) {
            return Some(peer);
        }
        let forwarded: Vec<&str> = headers
            .get_all("x-forwarded-for")
            .iter()
            .filter_map(|value| value.to_str().ok())
            .flat_map(|value| value.split(','))
            .map(str::trim)
            .collect();
        let mut client = peer;
        for hop in forwarded.iter().rev() {
            match hop.parse::<IpAddr>() {
                Ok(address) => {
                    client = address.to_canonical();
                    if !self.trusted(client) {
                        break;
                    }
                }
                // A malformed hop: the last trusted one is the client.
                Err(_) => break,
            }
        }
        Some(client)
    }

    fn trusted(&self, address: IpAddr) -> bool {
        self.trusted_proxies
            .iter()
            .any(|net| net.contains(&address))
    }

    /// The digest a client is counted under: an IPv4 address whole, an
    /// IPv6 address by its /64; an unknown client under one digest of its
    /// own (so a listener that did not say who connected limits everyone
    /// together, never no one).
    fn digest(&self, client: Option<IpAddr>) -> String {
        let named = match client {
            Some(IpAddr::V4(v4)) => format!("v4:{v4}"),
            Some(IpAddr::V6(v6)) => {
                let mut segments = v6.segments();
                segments[4..].fill(0);
                format!("v6:{}/64", Ipv6Addr::from(segments))
            }
            None => "unknown".to_owned(),
        };
        hex::encode(hmac::sign(&self.key, named.as_bytes()))
    }

    /// Counts an attempt of `client` now and says whether it may go on.
    pub async fn count(&self, db: &Db, client: Option<IpAddr>) -> Result<Attempt, sqlx::Error> {
        let now = exchange_schema::audit::now_millis();
        let now_ms = (now.unix_timestamp_nanos() / 1_000_000) as i64;
        let window_start = now_ms - now_ms.rem_euclid(self.window_ms);
        let client_digest = self.digest(client);
        let row = sqlx::query(
            "INSERT INTO portal_sign_in_attempts (client_digest, window_start, attempts) \
             VALUES ($1, $2, 1) ON CONFLICT (client_digest, window_start) \
             DO UPDATE SET attempts = portal_sign_in_attempts.attempts + 1 \
             RETURNING attempts, refusal_audited",
        )
        .bind(&client_digest)
        .bind(window_start)
        .fetch_one(db.pool())
        .await?;
        let attempts: i64 = row.try_get("attempts")?;
        let audited: i64 = row.try_get("refusal_audited")?;
        if self
            .counted
            .fetch_add(1, Ordering::Relaxed)
            .is_multiple_of(PURGE_EVERY)
        {
            // Ended windows are no one's business; a purge that fails now
            // is tried again later and refuses no attempt.
            if let Err(error) =
                sqlx::query("DELETE FROM portal_sign_in_attempts WHERE window_start < $1")
                    .bind(window_start)
                    .execute(db.pool())
                    .await
            {
                tracing::warn!(%error, "ended sign-in attempt windows could not be deleted this time");
            }
        }
        if attempts <= self.limit {
            return Ok(Attempt::Allowed);
        }
        let until = OffsetDateTime::from_unix_timestamp_nanos(
            i128::from(window_start + self.window_ms) * 1_000_000,
        )
        .unwrap_or(now);
        Ok(Attempt::Refused {
            until,
            audited: audited != 0,
            window: RefusedWindow {
                client_digest,
                window_start,
            },
        })
    }

    /// Records that a refusal of `window` is in the audit log, after its
    /// entry is durable. A failure here only means the next refusal is
    /// audited too.
    pub async fn refusal_audited(&self, db: &Db, window: &RefusedWindow) {
        if let Err(error) = sqlx::query(
            "UPDATE portal_sign_in_attempts SET refusal_audited = 1 \
             WHERE client_digest = $1 AND window_start = $2",
        )
        .bind(&window.client_digest)
        .bind(window.window_start)
        .execute(db.pool())
        .await
        {
            tracing::warn!(%error, "a sign-in refusal's entry could not be marked; the next is audited too");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn throttle(trusted: &[&str]) -> SignInThrottle {
        let pkcs8 = aws_lc_rs::signature::Ed25519KeyPair::generate_pkcs8(
            &aws_lc_rs::rand::SystemRandom::new(),
        )
        .unwrap();
        let key = aws_lc_rs::signature::Ed25519KeyPair::from_pkcs8(pkcs8.as_ref()).unwrap();
        let mut config = PortalConfig::new("127.0.0.1:0".parse().unwrap());
        config.trusted_proxies = trusted.iter().map(|n| n.parse().unwrap()).collect();
        SignInThrottle::new(&key, &config)
    }

    fn forwarded(values: &[&str]) -> HeaderMap {
        let mut headers = HeaderMap::new();
        for value in values {
            headers.append("x-forwarded-for", value.parse().unwrap());
        }
        headers
    }

    fn peer(address: &str) -> Option<SocketAddr> {
        Some(SocketAddr::new(address.parse().unwrap(), 40000))
    }

    /// `X-Forwarded-For` is believed only from a trusted proxy, and then
    /// only as far as the first hop that is not one: a client cannot name
    /// itself someone else by writing the header.
    #[test]
    fn the_client_is_the_peer_unless_a_trusted_proxy_forwarded_it() {
        let t = throttle(&["10.0.0.0/8"]);
        let client = |from: &str, header: &[&str]| t.client(peer(from), &forwarded(header));
        let ip = |s: &str| Some(s.parse::<IpAddr>().unwrap());

        // Not from a proxy: the header is ignored.
        assert_eq!(client("203.0.113.9", &["198.51.100.1"]), ip("203.0.113.9"));
        // From the proxy: the address it appended.
        assert_eq!(client("10.1.2.3", &["198.51.100.1"]), ip("198.51.100.1"));
        // What the client wrote before the proxy's hop is not believed.
        assert_eq!(
            client("10.1.2.3", &["192.0.2.66, 198.51.100.1"]),
            ip("198.51.100.1")
        );
        // Several proxies, over several headers.
        assert_eq!(
            client("10.1.2.3", &["192.0.2.66, 198.51.100.1", "10.9.9.9"]),
            ip("198.51.100.1")
        );
        // A malformed hop stops the walk at the last trusted address.
        assert_eq!(client("10.1.2.3", &["nonsense"]), ip("10.1.2.3"));
        // No header: the proxy itself.
        assert_eq!(client("10.1.2.3", &[]), ip("10.1.2.3"));
        // An IPv4-mapped IPv6 peer is its IPv4 address.
        assert_eq!(client("::ffff:203.0.113.9", &[]), ip("203.0.113.9"));
        // Unknown peer: unknown client.
        assert_eq!(t.client(None, &HeaderMap::new()), None);
    }

    /// An IPv6 client is counted by its /64, an IPv4 one by its address;
    /// digests are keyed (another node's key gives another digest) and
    /// name no address.
    #[test]
    fn clients_are_counted_by_keyed_digests_of_their_address_or_slash_64() {
        let t = throttle(&[]);
        let d = |s: &str| t.digest(Some(s.parse().unwrap()));
        assert_eq!(d("2001:db8:1:2::1"), d("2001:db8:1:2:ffff::9"));
        assert_ne!(d("2001:db8:1:2::1"), d("2001:db8:1:3::1"));
        assert_ne!(d("192.0.2.1"), d("192.0.2.2"));
        assert_ne!(t.digest(None), d("192.0.2.1"));
        assert_ne!(throttle(&[]).digest(None), t.digest(None));
        assert_eq!(d("192.0.2.1").len(), 64);
    }
}
