//! Identity providers' keys published at JWKS URLs (`jwks_url` in the
//! federation file): fetched at start, again every `jwks_refresh_seconds`,
//! and at once when a token names a key of such a provider that is not
//! known yet (at most every [`ON_DEMAND_GAP`] per agency), so a provider
//! rolls its signing key over mid-run and its new tokens are accepted
//! without anyone editing the federation file or restarting a process.
//!
//! A fetch replaces that agency's fetched keys as a whole: a key the
//! provider no longer publishes stops verifying new tokens at the next
//! fetch. A fetch that fails (unreachable, not JSON, a bad key) keeps the
//! keys of the last good one and is logged. Keys listed in the federation
//! file itself are never touched.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

use exchange_trust::{Agency, AuthError, Principal, TokenVerifier, VerificationKey};

/// Shortest time between two fetches a token triggers for one agency.
pub const ON_DEMAND_GAP: Duration = Duration::from_secs(10);
/// Longest a fetch may take.
const FETCH_TIMEOUT: Duration = Duration::from_secs(5);
/// Largest JWKS document read, in bytes.
const MAX_JWKS_BYTES: usize = 256 * 1024;
/// The system's CA bundle (Debian, Ubuntu), for `https://` JWKS URLs.
const SYSTEM_CA_BUNDLE: &str = "/etc/ssl/certs/ca-certificates.crt";

/// Fetches the providers' keys into a [`TokenVerifier`], and verifies
/// tokens with a fetch when one names a key not yet known.
pub struct JwksRefresher {
    verifier: Arc<TokenVerifier>,
    client: reqwest::Client,
    /// When a token last made each agency's keys be fetched.
    last_on_demand: Mutex<HashMap<String, Instant>>,
}

impl JwksRefresher {
    /// A refresher for `verifier`'s federation; `https://` is checked
    /// against the federation file's `jwks_ca_file` when it names one, and
    /// the system's CA bundle otherwise.
    pub fn new(verifier: Arc<TokenVerifier>) -> anyhow::Result<Arc<Self>> {
        // The one crypto backend, if the program has not installed it yet.
        let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
        let mut client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(FETCH_TIMEOUT)
            .tls_built_in_root_certs(false);
        let authorities = match verifier.federation().jwks_ca_pem() {
            Some(pem) => Some(pem.as_bytes().to_vec()),
            None => std::fs::read(SYSTEM_CA_BUNDLE).ok(),
        };
        if let Some(pem) = authorities {
            for certificate in reqwest::Certificate::from_pem_bundle(&pem)
                .map_err(|e| anyhow::anyhow!("the CA certificates for the JWKS URLs: {e}"))?
            {
                client = client.add_root_certificate(certificate);
            }
        }
        Ok(Arc::new(Self {
            verifier,
            client: client.build()?,
            last_on_demand: Mutex::new(HashMap::new()),
        }))
    }

    /// The verifier it feeds.
    pub fn verifier(&self) -> &Arc<TokenVerifier> {
        &self.verifier
    }

    fn agencies_with_urls(&self) -> Vec<Agency> {
        self.verifier
            .federation()
            .agencies()
            .iter()
            .filter(|a| !a.jwks_urls.is_empty())
            .cloned()
            .collect()
    }

    async fn fetch(&self, url: &str) -> Result<Vec<VerificationKey>, String> {
        let mut response = self
            .client
            .get(url)
            .send()
            .await
            .map_err(|e| format!("fetching: {e}"))?;
        if !response.status().is_success() {
            return Err(format!("the provider answered {}", response.status()));
        }
        // Read chunk by chunk, so that a provider sending without end is
        // cut off at the bound, not held in memory.
        let too_large = || format!("the JWKS is larger than {MAX_JWKS_BYTES} bytes");
        if response
            .content_length()
            .is_some_and(|n| n > MAX_JWKS_BYTES as u64)
        {
            return Err(too_large());
        }
        let mut body = Vec::new();
        while let Some(chunk) = response
            .chunk()
            .await
            .map_err(|e| format!("reading: {e}"))?
        {
            if body.len() + chunk.len() > MAX_JWKS_BYTES {
                return Err(too_large());
            }
            body.extend_from_slice(&chunk);
        }
        let text = std::str::from_utf8(&body).map_err(|_| "the JWKS is not UTF-8".to_owned())?;
        VerificationKey::from_jwks(text).map_err(|e| e.to_string())
    }

    /// Fetches every JWKS URL of `agency` and replaces its fetched keys;
    /// on any failure keeps the old ones and says why.
    pub async fn refresh(&self, agency: &Agency) -> Result<usize, String> {
        let mut keys = Vec::new();
        for url in &agency.jwks_urls {
            keys.extend(self.fetch(url).await.map_err(|e| format!("{url}: {e}"))?);
        }
        let count = keys.len();
        self.verifier.set_fetched_keys(&agency.id, keys);
        Ok(count)
    }

    /// Fetches every agency's keys; logs each failure. Answers how many
    /// agencies' keys were fetched.
    pub async fn refresh_all(&self) -> usize {
        let mut fetched = 0;
        for agency in self.agencies_with_urls() {
            match self.refresh(&agency).await {
                Ok(count) => {
                    fetched += 1;
                    tracing::debug!(agency = %agency.id, keys = count, "identity provider keys fetched");
                }
                Err(err) => tracing::warn!(
                    agency = %agency.id,
                    error = %err,
                    "fetching the identity provider's keys failed; the last ones fetched stay in use"
                ),
            }
        }
        fetched
    }

    /// Fetches the keys now, then every `jwks_refresh_seconds` of the
    /// federation, until the refresher is dropped. Nothing is spawned when
    /// no agency publishes its keys at a URL.
    pub async fn start(self: &Arc<Self>) -> Option<tokio::task::JoinHandle<()>> {
        if self.agencies_with_urls().is_empty() {
            return None;
        }
        self.refresh_all().await;
        let every = self.verifier.federation().jwks_refresh();
        let weak: Weak<Self> = Arc::downgrade(self);
        Some(tokio::spawn(async move {
            loop {
                tokio::time::sleep(every).await;
                let Some(refresher) = weak.upgrade() else {
                    return;
                };
                refresher.refresh_all().await;
            }
        }))
    }

    /// Verifies a bearer token; when it names a key its issuer's JWKS did
    /// not hold at the last fetch, fetches that issuer's keys (at most
    /// every [`ON_DEMAND_GAP`]) and tries once more.
    pub async fn verify(&self, bearer: &str) -> Result<Principal, AuthError> {
        let first = self.verifier.verify(bearer);
        let Err(err @ AuthError::UnknownKey { .. }) = &first else {
            return first;
        };
        let Some(agency) = err
            .claimed_issuer()
            .and_then(|iss| self.verifier.federation().agency_by_issuer(iss))
            .filter(|a| !a.jwks_urls.is_empty())
            .cloned()
        else {
            return first;
        };
        {
            let mut last = self
                .last_on_demand
                .lock()
                .unwrap_or_else(|p| p.into_inner());
            let now = Instant::now();
            let key = agency.id.to_string();
            if last
                .get(&key)
                .is_some_and(|at| now.duration_since(*at) < ON_DEMAND_GAP)
            {
                return first;
            }
            last.insert(key, now);
        }
        if let Err(err) = self.refresh(&agency).await {
            tracing::warn!(agency = %agency.id, error = %err, "fetching the identity provider's keys failed");
            return first;
        }
        self.verifier.verify(bearer)
    }

    /// [`Self::verify`] of an `Authorization` header's value.
    pub async fn verify_authorization(&self, header: Option<&str>) -> Result<Principal, AuthError> {
        self.verify(exchange_trust::parse_authorization_header(header)?)
            .await
    }
}

#[cfg(test)]
mod tests {
    use std::sync::RwLock;
    use std::sync::atomic::{AtomicUsize, Ordering};

    use base64::Engine as _;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    use exchange_schema::{AgencyId, Role};
    use exchange_trust::{DevIdentityProvider, Federation, MintRequest};

    use super::*;
    use std::path::Path;

    const AUDIENCE: &str = "survivor-exchange";

    /// A provider's JWKS endpoint on loopback: what it publishes can change,
    /// it can fail, and it counts the fetches.
    struct Endpoint {
        jwks: Arc<RwLock<Option<String>>>,
        fetches: Arc<AtomicUsize>,
        url: String,
    }

    async fn endpoint() -> Endpoint {
        let jwks: Arc<RwLock<Option<String>>> = Arc::default();
        let fetches = Arc::new(AtomicUsize::new(0));
        let (served, counted) = (jwks.clone(), fetches.clone());
        let app = axum::Router::new().route(
            "/jwks",
            axum::routing::get(move || {
                let (served, counted) = (served.clone(), counted.clone());
                async move {
                    counted.fetch_add(1, Ordering::SeqCst);
                    match served.read().unwrap().clone() {
                        Some(body) => (axum::http::StatusCode::OK, body),
                        None => (axum::http::StatusCode::INTERNAL_SERVER_ERROR, String::new()),
                    }
                }
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/jwks", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await });
        Endpoint { jwks, fetches, url }
    }

    fn jwks_of(providers: &[&DevIdentityProvider]) -> String {
        let keys: Vec<serde_json::Value> = providers
            .iter()
            .map(|p| {
                serde_json::json!({ "kty": "OKP", "crv": "Ed25519", "alg": "EdDSA", "use": "sig",
                    "kid": p.kid(), "x": URL_SAFE_NO_PAD.encode(p.public_key_raw()) })
            })
            .collect();
        serde_json::json!({ "keys": keys }).to_string()
    }

    fn token(provider: &DevIdentityProvider, user: &str) -> String {
        provider
            .mint(&MintRequest::new(
                AgencyId::parse("shelter-north").unwrap(),
                user,
                vec![Role::Caseworker],
                AUDIENCE,
            ))
            .unwrap()
    }

    /// A provider's JWKS over https with a certificate from a private CA
    /// (`localhost`), answering every request with `jwks`.
    async fn https_endpoint(pki: &crate::tls::DevPki, jwks: String) -> String {
        use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
        let identity = pki
            .identity("idp", &["localhost".into()], true, false)
            .unwrap();
        let config =
            crate::tls::server_config_without_client_auth(&identity.cert_file, &identity.key_file)
                .unwrap();
        let mut config = (*config).clone();
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        tokio::spawn(async move {
            while let Ok((tcp, _)) = listener.accept().await {
                let (acceptor, jwks) = (acceptor.clone(), jwks.clone());
                tokio::spawn(async move {
                    let Ok(mut tls) = acceptor.accept(tcp).await else {
                        return;
                    };
                    let mut request = Vec::new();
                    let mut buf = [0u8; 1024];
                    while !request.windows(4).any(|w| w == b"\r\n\r\n") {
                        match tls.read(&mut buf).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => request.extend_from_slice(&buf[..n]),
                        }
                    }
                    let response = format!(
                        "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n\
                         content-length: {}\r\nconnection: close\r\n\r\n{jwks}",
                        jwks.len()
                    );
                    let _ = tls.write_all(response.as_bytes()).await;
                    let _ = tls.shutdown().await;
                });
            }
        });
        format!("https://localhost:{port}/jwks")
    }

    /// A federation whose providers are behind its own certificate
    /// authority names it in `jwks_ca_file`: the keys are fetched over https
    /// against that CA. Without it (the system's bundle) the same provider
    /// is not trusted and no key is fetched; a file with no certificate is
    /// refused when the federation is loaded.
    #[tokio::test]
    async fn a_jwks_url_behind_the_federations_own_ca_is_trusted_through_jwks_ca_file() {
        let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
        let agency = AgencyId::parse("shelter-north").unwrap();
        let issuer = "https://idp.shelter-north.example";
        let dir = tempfile::tempdir().unwrap();
        let pki = crate::tls::DevPki::load_or_create(&dir.path().join("pki")).unwrap();
        std::fs::copy(pki.ca_file(), dir.path().join("idp-ca.pem")).unwrap();
        std::fs::write(dir.path().join("not-a-ca.pem"), "nothing here").unwrap();
        let key = DevIdentityProvider::load_or_generate(&dir.path().join("keys"), &agency)
            .unwrap()
            .with_issuer(issuer);
        let url = https_endpoint(&pki, jwks_of(&[&key])).await;
        let federation = |ca: Option<&str>| {
            Federation::from_toml(
                &format!(
                    "audience = \"{AUDIENCE}\"\n{}[[agency]]\nid = \"shelter-north\"\n\
                     name = \"North\"\nkind = \"SHELTER\"\nservices = []\n\
                     languages = [\"en\"]\nregion = \"North\"\nissuer = \"{issuer}\"\n\
                     [[agency.keys]]\njwks_url = \"{url}\"\n",
                    ca.map(|f| format!("jwks_ca_file = \"{f}\"\n"))
                        .unwrap_or_default()
                ),
                dir.path(),
            )
        };

        let trusted = Arc::new(TokenVerifier::new(federation(Some("idp-ca.pem")).unwrap()));
        let refresher = JwksRefresher::new(trusted.clone()).unwrap();
        refresher.start().await;
        assert!(trusted.verify(&token(&key, "a")).is_ok());

        let untrusted = Arc::new(TokenVerifier::new(federation(None).unwrap()));
        let refresher = JwksRefresher::new(untrusted.clone()).unwrap();
        refresher.start().await;
        assert_eq!(
            untrusted
                .verify(&token(&key, "a"))
                .unwrap_err()
                .reason_code(),
            "UNKNOWN_KEY"
        );

        let refused = federation(Some("not-a-ca.pem")).unwrap_err().to_string();
        assert!(refused.contains("jwks_ca_file"), "{refused}");
        assert!(federation(Some("missing.pem")).is_err());
    }

    #[tokio::test]
    async fn keys_roll_over_at_the_providers_url_without_a_restart() {
        let agency = AgencyId::parse("shelter-north").unwrap();
        let issuer = "https://idp.shelter-north.example";
        let dirs: Vec<tempfile::TempDir> = (0..4).map(|_| tempfile::tempdir().unwrap()).collect();
        let keys: Vec<DevIdentityProvider> = dirs
            .iter()
            .map(|d| {
                DevIdentityProvider::load_or_generate(d.path(), &agency)
                    .unwrap()
                    .with_issuer(issuer)
            })
            .collect();
        let at = endpoint().await;
        *at.jwks.write().unwrap() = Some(jwks_of(&[&keys[0]]));
        let federation = Federation::from_toml(
            &format!(
                "audience = \"{AUDIENCE}\"\n[[agency]]\nid = \"shelter-north\"\nname = \"North\"\n\
                 kind = \"SHELTER\"\nservices = []\nlanguages = [\"en\"]\nregion = \"North\"\n\
                 issuer = \"{issuer}\"\n[[agency.keys]]\njwks_url = \"{}\"\n",
                at.url
            ),
            Path::new("."),
        )
        .unwrap();
        let verifier = Arc::new(TokenVerifier::new(federation));
        let refresher = JwksRefresher::new(verifier.clone()).unwrap();

        // Nothing fetched yet: no key.
        assert_eq!(
            verifier
                .verify(&token(&keys[0], "a"))
                .unwrap_err()
                .reason_code(),
            "UNKNOWN_KEY"
        );
        assert!(refresher.start().await.is_some());
        assert!(verifier.verify(&token(&keys[0], "a")).is_ok());

        // The provider rolls over to key 1 and drops key 0: after a fetch,
        // new tokens of key 0 are refused and key 1's accepted.
        *at.jwks.write().unwrap() = Some(jwks_of(&[&keys[1]]));
        assert_eq!(refresher.refresh_all().await, 1);
        assert_eq!(
            verifier
                .verify(&token(&keys[0], "b"))
                .unwrap_err()
                .reason_code(),
            "UNKNOWN_KEY"
        );
        assert!(verifier.verify(&token(&keys[1], "b")).is_ok());

        // The endpoint fails: the last good keys stay.
        *at.jwks.write().unwrap() = None;
        assert_eq!(refresher.refresh_all().await, 0);
        assert!(verifier.verify(&token(&keys[1], "c")).is_ok());

        // A token naming a key published since the last fetch is accepted
        // at once (one fetch), and the next unknown key within the gap
        // triggers no fetch.
        *at.jwks.write().unwrap() = Some(jwks_of(&[&keys[1], &keys[2]]));
        let before = at.fetches.load(Ordering::SeqCst);
        assert!(refresher.verify(&token(&keys[2], "d")).await.is_ok());
        assert_eq!(at.fetches.load(Ordering::SeqCst), before + 1);
        let unknown = refresher.verify(&token(&keys[3], "e")).await.unwrap_err();
        assert_eq!(unknown.reason_code(), "UNKNOWN_KEY");
        assert_eq!(
            at.fetches.load(Ordering::SeqCst),
            before + 1,
            "no fetch within the gap"
        );
    }

    /// A provider that sends a JWKS without end, or announces one above the
    /// bound, is cut off at the bound: the fetch fails, nothing is held,
    /// and the keys fetched before stay in use.
    #[tokio::test]
    async fn an_oversized_or_endless_jwks_is_cut_off_and_the_last_keys_stay() {
        let agency = AgencyId::parse("shelter-north").unwrap();
        let issuer = "https://idp.shelter-north.example";
        let dir = tempfile::tempdir().unwrap();
        let key = DevIdentityProvider::load_or_generate(dir.path(), &agency)
            .unwrap()
            .with_issuer(issuer);
        let good = jwks_of(&[&key]);
        let mode = Arc::new(AtomicUsize::new(0));
        let m = mode.clone();
        let app = axum::Router::new().route(
            "/jwks",
            axum::routing::get(move || {
                let (good, m) = (good.clone(), m.clone());
                async move {
                    match m.load(Ordering::SeqCst) {
                        0 => axum::body::Body::from(good),
                        1 => axum::body::Body::from(vec![b' '; MAX_JWKS_BYTES + 1]),
                        _ => axum::body::Body::from_stream(futures::stream::repeat_with(|| {
                            Ok::<_, std::io::Error>(axum::body::Bytes::from_static(&[b' '; 4096]))
                        })),
                    }
                }
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/jwks", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await });
        let federation = Federation::from_toml(
            &format!(
                "audience = \"{AUDIENCE}\"\n[[agency]]\nid = \"shelter-north\"\nname = \"North\"\n\
                 kind = \"SHELTER\"\nservices = []\nlanguages = [\"en\"]\nregion = \"North\"\n\
                 issuer = \"{issuer}\"\n[[agency.keys]]\njwks_url = \"{url}\"\n"
            ),
            Path::new("."),
        )
        .unwrap();
        let verifier = Arc::new(TokenVerifier::new(federation.clone()));
        let refresher = JwksRefresher::new(verifier.clone()).unwrap();
        let shelter = federation.agency(&agency).unwrap().clone();
        assert_eq!(refresher.refresh(&shelter).await, Ok(1));

        mode.store(1, Ordering::SeqCst);
        let err = refresher.refresh(&shelter).await.unwrap_err();
        assert!(err.contains("larger than"), "{err}");
        // Without the bound, reading would go on until the fetch's time
        // limit and fail with a read error, having held all it read.
        mode.store(2, Ordering::SeqCst);
        let err = refresher.refresh(&shelter).await.unwrap_err();
        assert!(err.contains("larger than"), "{err}");
        assert!(verifier.verify(&token(&key, "a")).is_ok());
    }

    #[test]
    fn a_jwks_url_must_be_https_or_loopback_and_names_its_own_keys() {
        let file = |keys: &str| {
            format!(
                "audience = \"a\"\n[[agency]]\nid = \"shelter-north\"\nname = \"N\"\nkind = \"SHELTER\"\n\
                 services = []\nlanguages = [\"en\"]\nregion = \"N\"\nissuer = \"https://i\"\n[[agency.keys]]\n{keys}\n"
            )
        };
        let load = |keys: &str| Federation::from_toml(&file(keys), Path::new("."));
        assert!(load("jwks_url = \"https://idp.example/jwks\"").is_ok());
        assert!(load("jwks_url = \"http://127.0.0.1:8080/jwks\"").is_ok());
        for bad in [
            "jwks_url = \"http://idp.example/jwks\"",
            "jwks_url = \"ftp://idp.example/jwks\"",
            "jwks_url = \"not a url\"",
            "jwks_url = \"https://idp.example/jwks\"\nkid = \"k1\"",
            "jwks_url = \"https://idp.example/jwks\"\npem = \"x\"",
        ] {
            assert!(load(bad).is_err(), "{bad}");
        }
        let refresh = |seconds: u64| {
            Federation::from_toml(
                &format!(
                    "jwks_refresh_seconds = {seconds}\n{}",
                    file("jwks_url = \"https://i/j\"")
                ),
                Path::new("."),
            )
        };
        assert_eq!(refresh(60).unwrap().jwks_refresh(), Duration::from_secs(60));
        assert!(refresh(5).is_err());
        assert!(refresh(100_000).is_err());
    }
}
