//! The federation file: which agencies exist, what they are, where their
//! nodes listen, and which identity provider (issuer and public keys) speaks
//! for each. Read by every node and by the gateway.
//!
//! The file is TOML; [`FederationFile`], [`AgencyEntry`] and [`KeyEntry`]
//! document every field. Unknown fields are errors, as are duplicate agency
//! IDs or issuers, unknown enum values and unusable keys; each error names the
//! agency and the field. Example:
//!
//! ```toml
//! audience = "survivor-exchange"
//!
//! [[agency]]
//! id = "shelter-north"
//! name = "North Star Shelter"
//! kind = "SHELTER"
//! services = ["SHELTER", "PSYCHOSOCIAL"]
//! languages = ["en", "es"]
//! region = "North"
//! node_url = "https://127.0.0.1:7101"
//! tls_identity = "node.shelter-north"
//! issuer = "https://idp.shelter-north.example"
//!
//! [[agency.keys]]
//! kid = "2026-01"
//! pem_file = "keys/shelter-north-idp.pub.pem"
//! ```

use std::collections::HashMap;
use std::collections::hash_map::Entry;
use std::path::{Path, PathBuf};

use exchange_schema::{AgencyId, AgencyKind, ServiceKind};
use serde::{Deserialize, Serialize};

use crate::error::TrustError;
use crate::keys::{KeyError, VerificationKey};

/// Largest federation, PEM or JWKS file read, in bytes.
const MAX_FILE_BYTES: u64 = 1024 * 1024;
/// Most keys one agency may list.
const MAX_KEYS_PER_AGENCY: usize = 16;
/// How often keys at a `jwks_url` are fetched again by default.
pub const DEFAULT_JWKS_REFRESH: std::time::Duration = std::time::Duration::from_secs(300);

/// The federation file as written on disk.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FederationFile {
    /// The `aud` every token of this federation must carry (exactly this
    /// string, or a one-element array holding it). 1 to 256 characters, no
    /// whitespace.
    pub audience: String,
    /// The member agencies, as `[[agency]]` tables. At least one.
    #[serde(rename = "agency", default)]
    pub agencies: Vec<AgencyEntry>,
    /// How often the keys published at a `jwks_url` are fetched again, in
    /// seconds (30 to 86400; default 300). A token naming a key not yet
    /// fetched makes its issuer's keys be fetched at once, at most every
    /// 10 seconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jwks_refresh_seconds: Option<u64>,
    /// Optional: a PEM file of the certificate authorities trusted for the
    /// `jwks_url`s, relative to this file, instead of the system's bundle:
    /// for identity providers behind a federation's own CA (the Kubernetes
    /// demo's). At most 1 MiB, with at least one certificate.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jwks_ca_file: Option<String>,
}

/// One `[[agency]]` table.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AgencyEntry {
    /// The agency ID (`[a-z0-9-]`, 2-40 characters), unique in the file.
    pub id: String,
    /// Display name for the directory.
    pub name: String,
    /// What the agency is: an `AgencyKind` wire name such as `SHELTER`.
    pub kind: String,
    /// Services it offers: `ServiceKind` wire names such as `LEGAL_AID`.
    pub services: Vec<String>,
    /// Languages its staff speak, as BCP 47 tags (`en`, `pt-BR`).
    pub languages: Vec<String>,
    /// Region it serves, free text for the directory.
    pub region: String,
    /// Optional: the base URL (`https://` or `http://`) of its node. The
    /// gateway routes to it; an agency without one has no node.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node_url: Option<String>,
    /// Optional: the DNS name in its node's TLS certificate, checked by the
    /// gateway on mutual TLS.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls_identity: Option<String>,
    /// The `iss` of tokens from its identity provider, unique in the file.
    pub issuer: String,
    /// The public keys of its identity provider, as `[[agency.keys]]`: one or
    /// more (more than one during a key rotation).
    pub keys: Vec<KeyEntry>,
    /// Optional: where the nodes send the agency's notifications, for an
    /// agency that runs its own system (`[agency.webhook]`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub webhook: Option<WebhookEntry>,
}

/// An `[agency.webhook]` table: the agency's endpoint for notifications and
/// the file holding the secret every node signs them with (HMAC-SHA256, as
/// Standard Webhooks). The path is relative to the federation file; the
/// secret is at least 32 bytes and is never printed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebhookEntry {
    /// An absolute `https://` URL (`http://` on loopback only).
    pub url: String,
    pub secret_file: String,
}

/// A validated webhook: the URL and the signing secret.
#[derive(Clone)]
pub struct Webhook {
    pub url: String,
    secret: std::sync::Arc<Vec<u8>>,
}

impl Webhook {
    /// The signing secret's bytes.
    pub fn secret(&self) -> &[u8] {
        &self.secret
    }
}

impl std::fmt::Debug for Webhook {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Webhook")
            .field("url", &self.url)
            .field("secret", &"<redacted>")
            .finish()
    }
}

/// Shortest webhook secret accepted, in bytes.
pub const MIN_WEBHOOK_SECRET: usize = 32;

/// One `[[agency.keys]]` table: exactly one of `pem_file`, `pem` and
/// `jwks_file`. Relative paths are relative to the federation file.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeyEntry {
    /// Optional key ID. A token naming a `kid` is checked only with keys of
    /// that `kid` and keys without one; a token without `kid` with every key
    /// of its issuer whose algorithm matches. Not allowed with `jwks_file`
    /// (a JWKS names its own keys).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kid: Option<String>,
    /// Path to a PEM public key: `PUBLIC KEY` (Ed25519, EC P-256 or RSA SPKI)
    /// or `RSA PUBLIC KEY`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pem_file: Option<String>,
    /// The same PEM, inline.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pem: Option<String>,
    /// Path to a JWKS document (`{"keys": [...]}`) with OKP/Ed25519, EC/P-256
    /// or RSA keys; keys with `"use": "enc"` are skipped.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jwks_file: Option<String>,
    /// The identity provider's JWKS URL (`https://`; `http://` on loopback
    /// only), fetched at start and every `jwks_refresh_seconds`: the
    /// provider rolls its keys over without anyone editing this file.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jwks_url: Option<String>,
}

impl FederationFile {
    /// Renders the file as TOML.
    pub fn to_toml(&self) -> Result<String, TrustError> {
        toml::to_string(self).map_err(|e| TrustError::Federation {
            field: "agency",
            message: e.to_string(),
        })
    }
}

/// A member agency, validated.
#[derive(Debug, Clone)]
pub struct Agency {
    pub id: AgencyId,
    pub name: String,
    pub kind: AgencyKind,
    pub services: Vec<ServiceKind>,
    pub languages: Vec<String>,
    pub region: String,
    pub node_url: Option<String>,
    pub tls_identity: Option<String>,
    pub issuer: String,
    pub keys: Vec<VerificationKey>,
    /// Where its provider publishes its keys; the verifier fetches them
    /// ([`crate::TokenVerifier::set_fetched_keys`]).
    pub jwks_urls: Vec<String>,
    pub webhook: Option<Webhook>,
}

/// The validated trust list: the audience and every member agency, with
/// lookup by agency ID and by issuer.
#[derive(Debug, Clone)]
pub struct Federation {
    audience: String,
    jwks_refresh: std::time::Duration,
    /// The PEM of `jwks_ca_file`, when given.
    jwks_ca_pem: Option<String>,
    agencies: Vec<Agency>,
    by_id: HashMap<AgencyId, usize>,
    by_issuer: HashMap<String, usize>,
}

impl Federation {
    /// Reads and validates a federation file. Key files are resolved relative
    /// to the file's directory.
    pub fn load(path: impl AsRef<Path>) -> Result<Self, TrustError> {
        let path = path.as_ref();
        let text = read_bounded(path)?;
        let base = path.parent().unwrap_or_else(|| Path::new("."));
        let file: FederationFile = toml::from_str(&text).map_err(|e| TrustError::Parse {
            path: path.to_owned(),
            message: e.to_string(),
        })?;
        Self::from_file(file, base)
    }

    /// Parses and validates federation TOML; relative key paths are resolved
    /// against `base_dir`.
    pub fn from_toml(text: &str, base_dir: &Path) -> Result<Self, TrustError> {
        let file: FederationFile = toml::from_str(text).map_err(|e| TrustError::Parse {
            path: PathBuf::from("<inline>"),
            message: e.to_string(),
        })?;
        Self::from_file(file, base_dir)
    }

    /// Validates an already parsed federation file.
    pub fn from_file(file: FederationFile, base_dir: &Path) -> Result<Self, TrustError> {
        check_audience(&file.audience)?;
        let jwks_refresh = match file.jwks_refresh_seconds {
            None => DEFAULT_JWKS_REFRESH,
            Some(seconds) if (30..=86_400).contains(&seconds) => {
                std::time::Duration::from_secs(seconds)
            }
            Some(_) => {
                return Err(TrustError::Federation {
                    field: "jwks_refresh_seconds",
                    message: "must be between 30 and 86400".into(),
                });
            }
        };
        let jwks_ca_pem = match &file.jwks_ca_file {
            None => None,
            Some(name) => {
                let pem = read_bounded(&base_dir.join(name))?;
                check_ca_certificates(&pem).map_err(|why| TrustError::Federation {
                    field: "jwks_ca_file",
                    message: format!("{name}: {why}"),
                })?;
                Some(pem)
            }
        };
        if file.agencies.is_empty() {
            return Err(TrustError::Federation {
                field: "agency",
                message: "the federation lists no agency".into(),
            });
        }
        let mut agencies = Vec::with_capacity(file.agencies.len());
        let mut by_id = HashMap::new();
        let mut by_issuer: HashMap<String, usize> = HashMap::new();
        for (index, entry) in file.agencies.into_iter().enumerate() {
            let agency = validate_agency(index, entry, base_dir)?;
            if by_id.insert(agency.id.clone(), index).is_some() {
                return Err(TrustError::DuplicateAgency {
                    agency: agency.id.to_string(),
                });
            }
            match by_issuer.entry(agency.issuer.clone()) {
                Entry::Occupied(first) => {
                    let first: &Agency = &agencies[*first.get()];
                    return Err(TrustError::DuplicateIssuer {
                        issuer: agency.issuer.clone(),
                        first: first.id.to_string(),
                        second: agency.id.to_string(),
                    });
                }
                Entry::Vacant(slot) => {
                    slot.insert(index);
                }
            }
            agencies.push(agency);
        }
        Ok(Self {
            audience: file.audience,
            jwks_refresh,
            jwks_ca_pem,
            agencies,
            by_id,
            by_issuer,
        })
    }

    /// The `aud` every token must carry.
    pub fn audience(&self) -> &str {
        &self.audience
    }

    /// How often keys published at a `jwks_url` are fetched again.
    pub fn jwks_refresh(&self) -> std::time::Duration {
        self.jwks_refresh
    }

    /// The certificate authorities (PEM) trusted for the `jwks_url`s
    /// instead of the system's, when the file names a `jwks_ca_file`.
    pub fn jwks_ca_pem(&self) -> Option<&str> {
        self.jwks_ca_pem.as_deref()
    }

    /// Every member agency, in file order: the directory.
    pub fn agencies(&self) -> &[Agency] {
        &self.agencies
    }

    /// The agency with this ID.
    pub fn agency(&self, id: &AgencyId) -> Option<&Agency> {
        self.by_id.get(id).map(|&i| &self.agencies[i])
    }

    /// The agency whose identity provider is `issuer` (exact match).
    pub fn agency_by_issuer(&self, issuer: &str) -> Option<&Agency> {
        self.by_issuer.get(issuer).map(|&i| &self.agencies[i])
    }
}

/// A JWKS URL the verifier may fetch: https, or http to a loopback host.
fn jwks_url_allowed(url: &str) -> bool {
    let Ok(parsed) = url.parse::<http::Uri>() else {
        return false;
    };
    match (parsed.scheme_str(), parsed.host()) {
        (Some("https"), Some(_)) => true,
        (Some("http"), Some(host)) => {
            matches!(host, "localhost" | "127.0.0.1" | "[::1]" | "::1")
        }
        _ => false,
    }
}

fn read_bounded(path: &Path) -> Result<String, TrustError> {
    let io = |source| TrustError::Io {
        path: path.to_owned(),
        source,
    };
    let meta = std::fs::metadata(path).map_err(io)?;
    if meta.len() > MAX_FILE_BYTES {
        return Err(io(std::io::Error::other(format!(
            "file larger than {MAX_FILE_BYTES} bytes"
        ))));
    }
    std::fs::read_to_string(path).map_err(io)
}

fn check_audience(audience: &str) -> Result<(), TrustError> {
    if audience.is_empty()
        || audience.len() > 256
        || audience
            .chars()
            .any(|c| c.is_whitespace() || c.is_control())
    {
        return Err(TrustError::Federation {
            field: "audience",
            message: "must be 1 to 256 characters without whitespace".into(),
        });
    }
    Ok(())
}

fn validate_agency(index: usize, entry: AgencyEntry, base: &Path) -> Result<Agency, TrustError> {
    let id = AgencyId::parse(&entry.id).map_err(|e| TrustError::Agency {
        agency: format!("agency[{index}]"),
        field: "id".into(),
        message: e.to_string(),
    })?;
    let err = |field: &str, message: String| TrustError::Agency {
        agency: id.to_string(),
        field: field.into(),
        message,
    };
    let text_ok = |s: &str, max: usize| {
        !s.trim().is_empty() && s.len() <= max && !s.chars().any(char::is_control)
    };
    if !text_ok(&entry.name, 200) {
        return Err(err("name", "must be 1 to 200 characters".into()));
    }
    let kind: AgencyKind = entry
        .kind
        .parse()
        .map_err(|e: exchange_schema::VocabularyError| err("kind", e.to_string()))?;
    let mut services = Vec::with_capacity(entry.services.len());
    for (i, s) in entry.services.iter().enumerate() {
        let service: ServiceKind = s.parse().map_err(|e: exchange_schema::VocabularyError| {
            err(&format!("services[{i}]"), e.to_string())
        })?;
        if !services.contains(&service) {
            services.push(service);
        }
    }
    for (i, lang) in entry.languages.iter().enumerate() {
        let ok = (2..=35).contains(&lang.len())
            && lang.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
            && !lang.starts_with('-')
            && !lang.ends_with('-');
        if !ok {
            return Err(err(
                &format!("languages[{i}]"),
                "must be a BCP 47 language tag such as `en` or `pt-BR`".into(),
            ));
        }
    }
    if !text_ok(&entry.region, 200) {
        return Err(err("region", "must be 1 to 200 characters".into()));
    }
    if let Some(url) = &entry.node_url {
        check_node_url(url).map_err(|m| err("node_url", m))?;
    }
    if let Some(name) = &entry.tls_identity
        && !is_dns_name(name)
    {
        return Err(err("tls_identity", "must be a DNS name".into()));
    }
    let webhook = match &entry.webhook {
        None => None,
        Some(hook) => {
            check_webhook_url(&hook.url).map_err(|m| err("webhook.url", m))?;
            let path = base.join(&hook.secret_file);
            let secret = std::fs::read_to_string(&path)
                .map_err(|e| err("webhook.secret_file", format!("{}: {e}", path.display())))?;
            let secret = secret.trim().as_bytes().to_vec();
            if secret.len() < MIN_WEBHOOK_SECRET {
                return Err(err(
                    "webhook.secret_file",
                    format!("the secret must be at least {MIN_WEBHOOK_SECRET} bytes"),
                ));
            }
            Some(Webhook {
                url: hook.url.clone(),
                secret: std::sync::Arc::new(secret),
            })
        }
    };
    if entry.issuer.is_empty()
        || entry.issuer.len() > 512
        || entry
            .issuer
            .chars()
            .any(|c| c.is_whitespace() || c.is_control())
    {
        return Err(err(
            "issuer",
            "must be 1 to 512 characters without whitespace".into(),
        ));
    }
    if entry.keys.is_empty() {
        return Err(err("keys", "at least one key is required".into()));
    }
    let mut keys: Vec<VerificationKey> = Vec::new();
    let mut jwks_urls: Vec<String> = Vec::new();
    for (i, key) in entry.keys.iter().enumerate() {
        let field = format!("keys[{i}]");
        let key_err = |field: String, source: KeyError| TrustError::Key {
            agency: id.to_string(),
            field,
            source,
        };
        let loaded = match (&key.pem_file, &key.pem, &key.jwks_file, &key.jwks_url) {
            (None, None, None, Some(url)) => {
                if key.kid.is_some() {
                    return Err(err(
                        &format!("{field}.kid"),
                        "not allowed with jwks_url: the JWKS names its own keys".into(),
                    ));
                }
                if !jwks_url_allowed(url) {
                    return Err(err(
                        &format!("{field}.jwks_url"),
                        "must be an https:// URL (http:// only on a loopback address)".into(),
                    ));
                }
                jwks_urls.push(url.clone());
                Vec::new()
            }
            (Some(file), None, None, None) => {
                let path = base.join(file);
                let text = read_bounded(&path)
                    .map_err(|e| err(&format!("{field}.pem_file"), e.to_string()))?;
                vec![
                    VerificationKey::from_public_pem(&text, key.kid.clone())
                        .map_err(|e| key_err(format!("{field}.pem_file"), e))?,
                ]
            }
            (None, Some(pem), None, None) => vec![
                VerificationKey::from_public_pem(pem, key.kid.clone())
                    .map_err(|e| key_err(format!("{field}.pem"), e))?,
            ],
            (None, None, Some(file), None) => {
                if key.kid.is_some() {
                    return Err(err(
                        &format!("{field}.kid"),
                        "not allowed with jwks_file: the JWKS names its own keys".into(),
                    ));
                }
                let path = base.join(file);
                let text = read_bounded(&path)
                    .map_err(|e| err(&format!("{field}.jwks_file"), e.to_string()))?;
                VerificationKey::from_jwks(&text)
                    .map_err(|e| key_err(format!("{field}.jwks_file"), e))?
            }
            _ => {
                return Err(err(
                    &field,
                    "exactly one of `pem_file`, `pem`, `jwks_file` and `jwks_url` is required"
                        .into(),
                ));
            }
        };
        for k in loaded {
            if let Some(kid) = k.kid()
                && keys.iter().any(|other| other.kid() == Some(kid))
            {
                return Err(err(
                    &format!("{field}.kid"),
                    format!("kid `{kid}` is used twice"),
                ));
            }
            keys.push(k);
        }
    }
    if keys.len() > MAX_KEYS_PER_AGENCY {
        return Err(err(
            "keys",
            format!("at most {MAX_KEYS_PER_AGENCY} keys per agency"),
        ));
    }
    Ok(Agency {
        id,
        name: entry.name,
        kind,
        services,
        languages: entry.languages,
        region: entry.region,
        node_url: entry.node_url,
        tls_identity: entry.tls_identity,
        issuer: entry.issuer,
        keys,
        jwks_urls,
        webhook,
    })
}

/// A webhook URL: `https://`, or `http://` to a loopback address only.
fn check_webhook_url(url: &str) -> Result<(), String> {
    check_node_url(url)?;
    let uri: http::Uri = url.parse().map_err(|_| "not a URL".to_string())?;
    let host = uri.host().unwrap_or_default();
    let loopback = host == "localhost"
        || host
            .trim_matches(['[', ']'])
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback());
    if uri.scheme_str() == Some("http") && !loopback {
        return Err("must be https (http only to a loopback address)".into());
    }
    Ok(())
}

fn check_node_url(url: &str) -> Result<(), String> {
    let uri: http::Uri = url
        .parse()
        .map_err(|_| "must be an absolute http(s) URL".to_string())?;
    match uri.scheme_str() {
        Some("https" | "http") => {}
        _ => return Err("scheme must be https or http".into()),
    }
    let Some(authority) = uri.authority() else {
        return Err("must name a host".into());
    };
    if authority.as_str().contains('@') {
        return Err("must not contain credentials".into());
    }
    if uri.query().is_some() {
        return Err("must not contain a query".into());
    }
    Ok(())
}

fn is_dns_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 253
        && name.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-')
                && !label.starts_with('-')
                && !label.ends_with('-')
        })
}

/// Refuses a `jwks_ca_file` unless it holds at least one certificate and
/// every certificate in it is one a TLS client can trust as a CA, so that a
/// bad file is refused when the federation loads, naming the field, and not
/// later when a process builds its HTTP client.
fn check_ca_certificates(pem: &str) -> Result<(), String> {
    use rustls::pki_types::CertificateDer;
    use rustls::pki_types::pem::PemObject;
    let mut roots = rustls::RootCertStore::empty();
    for (n, certificate) in CertificateDer::pem_slice_iter(pem.as_bytes()).enumerate() {
        let certificate =
            certificate.map_err(|e| format!("certificate {} is not readable PEM: {e}", n + 1))?;
        roots
            .add(certificate)
            .map_err(|e| format!("certificate {} is not a usable CA certificate: {e}", n + 1))?;
    }
    if roots.is_empty() {
        return Err("holds no PEM certificate".into());
    }
    Ok(())
}
