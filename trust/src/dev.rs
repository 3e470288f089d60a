//! A development identity provider, so a newcomer can query a node in
//! minutes, and a one-call development federation for the demo and tests.
//!
//! [`DevIdentityProvider`] keeps an Ed25519 key per agency in a directory
//! (private PKCS#8 PEM, mode 0600, generated on first use; public SPKI PEM
//! beside it) and mints EdDSA tokens. [`DevFederation::create`] writes a
//! federation file for a set of such agencies. Never use either in production:
//! the issuers are `https://dev-idp.<agency>.example` so a development
//! federation file is recognisable at a glance.

use std::path::{Path, PathBuf};
use std::time::Duration;

use aws_lc_rs::digest::{SHA256, digest};
use exchange_schema::{AgencyId, AgencyKind, Role, ServiceKind};
use jsonwebtoken::Header;
use serde_json::json;
use time::OffsetDateTime;

use crate::error::TrustError;
use crate::federation::{AgencyEntry, Federation, FederationFile, KeyEntry};
use crate::keys::{SigningKey, TokenAlgorithm};

/// What to put in a development token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MintRequest {
    /// The `agency` claim. Not checked against the provider's own agency, so
    /// tests can mint mismatching tokens.
    pub agency: AgencyId,
    /// The `sub` claim.
    pub user: String,
    /// The `roles` claim.
    pub roles: Vec<Role>,
    /// The `aud` claim.
    pub audience: String,
    /// `exp` is `iat` plus this.
    pub ttl: Duration,
    /// The `nbf` claim, if any.
    pub not_before: Option<OffsetDateTime>,
}

impl MintRequest {
    /// A request for a one-hour token without `nbf`.
    pub fn new(
        agency: AgencyId,
        user: impl Into<String>,
        roles: Vec<Role>,
        audience: impl Into<String>,
    ) -> Self {
        Self {
            agency,
            user: user.into(),
            roles,
            audience: audience.into(),
            ttl: Duration::from_secs(3600),
            not_before: None,
        }
    }
}

/// Signs `claims` (a JSON object) as a compact JWS with `key`: the header has
/// the key's `alg`, its `kid` when set, and `"typ": "JWT"`. Performs no check
/// on the claims, so tests can forge any token a key holder could.
pub fn mint_with_key(key: &SigningKey, claims: &serde_json::Value) -> Result<String, TrustError> {
    let mut header = Header::new(key.algorithm().jwt());
    header.kid = key.kid().map(str::to_owned);
    jsonwebtoken::encode(&header, claims, key.encoding_key())
        .map_err(|e| TrustError::Signing(e.to_string()))
}

/// A development identity provider for one agency.
#[derive(Debug, Clone)]
pub struct DevIdentityProvider {
    agency: AgencyId,
    issuer: String,
    key: SigningKey,
    private_key_path: PathBuf,
    public_key_path: PathBuf,
}

impl DevIdentityProvider {
    /// The issuer a development provider uses for `agency`.
    pub fn issuer_for(agency: &AgencyId) -> String {
        format!("https://dev-idp.{agency}.example")
    }

    /// File name of the public key of `agency`'s development provider.
    pub fn public_key_file_name(agency: &AgencyId) -> String {
        format!("{agency}-idp.pub.pem")
    }

    /// Loads the agency's key from `dir`, or generates and stores one there
    /// on first use (`<agency>-idp.key.pem`, 0600, and
    /// `<agency>-idp.pub.pem`). Refuses a private key file that group or
    /// others may read.
    pub fn load_or_generate(dir: &Path, agency: &AgencyId) -> Result<Self, TrustError> {
        let private_key_path = dir.join(format!("{agency}-idp.key.pem"));
        let public_key_path = dir.join(Self::public_key_file_name(agency));
        let io = |path: &Path| {
            let path = path.to_owned();
            move |source| TrustError::Io { path, source }
        };
        std::fs::create_dir_all(dir).map_err(io(dir))?;
        let key = match std::fs::symlink_metadata(&private_key_path) {
            Ok(meta) => {
                check_private_key_file(&private_key_path, &meta)?;
                let pem =
                    std::fs::read_to_string(&private_key_path).map_err(io(&private_key_path))?;
                let key = SigningKey::from_pkcs8_pem(&pem).map_err(|e| TrustError::DevKey {
                    path: private_key_path.clone(),
                    message: e.to_string(),
                })?;
                if key.algorithm() != TokenAlgorithm::EdDsa {
                    return Err(TrustError::DevKey {
                        path: private_key_path,
                        message: "not an Ed25519 key".into(),
                    });
                }
                key
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let key = SigningKey::generate(TokenAlgorithm::EdDsa)?;
                write_private(&private_key_path, key.private_key_pem().as_bytes())?;
                key
            }
            Err(e) => return Err(io(&private_key_path)(e)),
        };
        let kid = format!("dev-{}", hex_prefix(key.public_spki_der()));
        let key = key.with_kid(kid);
        let public_pem = key.public_key_pem();
        if std::fs::read_to_string(&public_key_path).ok().as_deref() != Some(public_pem.as_str()) {
            std::fs::write(&public_key_path, &public_pem).map_err(io(&public_key_path))?;
        }
        Ok(Self {
            issuer: Self::issuer_for(agency),
            agency: agency.clone(),
            key,
            private_key_path,
            public_key_path,
        })
    }

    pub fn agency(&self) -> &AgencyId {
        &self.agency
    }

    /// The `iss` of the tokens it mints.
    pub fn issuer(&self) -> &str {
        &self.issuer
    }

    /// The `kid` of the tokens it mints (derived from the public key).
    pub fn kid(&self) -> &str {
        self.key.kid().unwrap_or_default()
    }

    /// The public key, SPKI PEM.
    pub fn public_key_pem(&self) -> String {
        self.key.public_key_pem()
    }

    /// Where the public key is stored.
    pub fn public_key_path(&self) -> &Path {
        &self.public_key_path
    }

    /// Where the private key is stored.
    pub fn private_key_path(&self) -> &Path {
        &self.private_key_path
    }

    /// The same provider issuing as `issuer` instead of the development
    /// default (the development OpenID provider serves each agency at an
    /// issuer URL of its own, `<base>/<agency>`).
    pub fn with_issuer(mut self, issuer: impl Into<String>) -> Self {
        self.issuer = issuer.into();
        self
    }

    /// The raw 32-byte Ed25519 public key, for a JWKS (`x` of an OKP key).
    pub fn public_key_raw(&self) -> &[u8] {
        let der = self.key.public_spki_der();
        &der[der.len().saturating_sub(32)..]
    }

    /// The signing key, for tests that forge tokens with [`mint_with_key`].
    pub fn signing_key(&self) -> &SigningKey {
        &self.key
    }

    /// Mints an EdDSA token: `iss` is this provider, `iat` now, `exp` now
    /// plus `ttl`, and `sub`, `aud`, `agency`, `roles`, `nbf` from `request`.
    pub fn mint(&self, request: &MintRequest) -> Result<String, TrustError> {
        let now = OffsetDateTime::now_utc().unix_timestamp();
        let ttl = i64::try_from(request.ttl.as_secs())
            .map_err(|_| TrustError::Signing("ttl too long".into()))?;
        let mut claims = json!({
            "iss": self.issuer,
            "sub": request.user,
            "aud": request.audience,
            "iat": now,
            "exp": now.saturating_add(ttl),
            "agency": request.agency.as_str(),
            "roles": request.roles.iter().map(|r| r.as_str()).collect::<Vec<_>>(),
        });
        if let Some(nbf) = request.not_before {
            claims["nbf"] = nbf.unix_timestamp().into();
        }
        mint_with_key(&self.key, &claims)
    }
}

/// One agency of a development federation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AgencySpec {
    pub id: AgencyId,
    pub name: String,
    pub kind: AgencyKind,
    pub services: Vec<ServiceKind>,
    pub languages: Vec<String>,
    pub region: String,
    pub node_url: Option<String>,
    pub tls_identity: Option<String>,
    /// The agency's notification endpoint, if it runs its own system.
    pub webhook: Option<crate::federation::WebhookEntry>,
}

/// A development federation on disk: the file, its parsed form and every
/// agency's identity provider.
#[derive(Debug, Clone)]
pub struct DevFederation {
    /// The federation file (`<dir>/federation.toml`).
    pub path: PathBuf,
    /// The file, loaded back and validated.
    pub federation: Federation,
    /// One provider per agency, in the order given.
    pub providers: Vec<DevIdentityProvider>,
}

impl DevFederation {
    /// Name of the federation file inside the directory.
    pub const FILE_NAME: &'static str = "federation.toml";

    /// Writes `<dir>/federation.toml` for `agencies`, with each agency's
    /// development key under `<dir>/keys/` (reused if already there), and
    /// loads it back.
    pub fn create(dir: &Path, agencies: &[AgencySpec], audience: &str) -> Result<Self, TrustError> {
        Self::create_with_issuers(dir, agencies, audience, None)
    }

    /// As [`DevFederation::create`], but with every agency's issuer at
    /// `<issuer_base>/<agency>` when `issuer_base` is given: the issuers of
    /// the development OpenID provider (`dev_oidc`) listening at that base.
    pub fn create_with_issuers(
        dir: &Path,
        agencies: &[AgencySpec],
        audience: &str,
        issuer_base: Option<&str>,
    ) -> Result<Self, TrustError> {
        let keys_dir = dir.join("keys");
        let mut providers = Vec::with_capacity(agencies.len());
        let mut entries = Vec::with_capacity(agencies.len());
        for spec in agencies {
            let mut idp = DevIdentityProvider::load_or_generate(&keys_dir, &spec.id)?;
            if let Some(base) = issuer_base {
                idp = idp.with_issuer(format!("{}/{}", base.trim_end_matches('/'), spec.id));
            }
            entries.push(AgencyEntry {
                id: spec.id.to_string(),
                name: spec.name.clone(),
                kind: spec.kind.as_str().to_owned(),
                services: spec
                    .services
                    .iter()
                    .map(|s| s.as_str().to_owned())
                    .collect(),
                languages: spec.languages.clone(),
                region: spec.region.clone(),
                node_url: spec.node_url.clone(),
                tls_identity: spec.tls_identity.clone(),
                webhook: spec.webhook.clone(),
                issuer: idp.issuer().to_owned(),
                keys: vec![KeyEntry {
                    kid: Some(idp.kid().to_owned()),
                    pem_file: Some(format!(
                        "keys/{}",
                        DevIdentityProvider::public_key_file_name(&spec.id)
                    )),
                    ..KeyEntry::default()
                }],
            });
            providers.push(idp);
        }
        let file = FederationFile {
            audience: audience.to_owned(),
            agencies: entries,
            jwks_refresh_seconds: None,
            jwks_ca_file: None,
        };
        let text = format!(
            "# Development federation, generated by exchange-trust. Not for production.\n{}",
            file.to_toml()?
        );
        let path = dir.join(Self::FILE_NAME);
        let tmp = dir.join(format!(".{}.tmp", Self::FILE_NAME));
        let io = |source| TrustError::Io {
            path: path.clone(),
            source,
        };
        std::fs::write(&tmp, text).map_err(io)?;
        std::fs::rename(&tmp, &path).map_err(io)?;
        let federation = Federation::load(&path)?;
        Ok(Self {
            path,
            federation,
            providers,
        })
    }

    /// The provider of `agency`.
    pub fn provider(&self, agency: &AgencyId) -> Option<&DevIdentityProvider> {
        self.providers.iter().find(|p| p.agency() == agency)
    }
}

fn hex_prefix(bytes: &[u8]) -> String {
    digest(&SHA256, bytes).as_ref()[..8]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn write_private(path: &Path, contents: &[u8]) -> Result<(), TrustError> {
    crate::files::write_private(path, contents).map_err(|source| TrustError::Io {
        path: path.to_owned(),
        source,
    })
}

#[cfg(unix)]
fn check_private_key_file(path: &Path, meta: &std::fs::Metadata) -> Result<(), TrustError> {
    use std::os::unix::fs::PermissionsExt;
    if !meta.is_file() {
        return Err(TrustError::DevKey {
            path: path.to_owned(),
            message: "not a regular file".into(),
        });
    }
    if meta.permissions().mode() & 0o077 != 0 {
        return Err(TrustError::DevKey {
            path: path.to_owned(),
            message: "readable by group or others; run `chmod 600` on it".into(),
        });
    }
    Ok(())
}

#[cfg(not(unix))]
fn check_private_key_file(path: &Path, meta: &std::fs::Metadata) -> Result<(), TrustError> {
    if !meta.is_file() {
        return Err(TrustError::DevKey {
            path: path.to_owned(),
            message: "not a regular file".into(),
        });
    }
    Ok(())
}
