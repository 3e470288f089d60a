//! Keys: the public keys an agency's identity provider signs with, as read
//! from the federation file (PEM or JWKS), and signing keys for development
//! and tests.
//!
//! Only three algorithms exist here, [`TokenAlgorithm`]: EdDSA (Ed25519),
//! ES256 (ECDSA P-256) and RS256 (RSA 2048-8192 bits). A key is bound to one
//! of them when it is loaded, and a token is only ever checked with a key of
//! its own algorithm. Every key is validated with aws-lc-rs at load time, so
//! a wrong curve, a short RSA modulus or a private key pasted by mistake is an
//! error at start-up rather than a surprise at the first request.

use std::fmt;

use aws_lc_rs::encoding::{AsDer, Pkcs8V1Der};
use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{
    ECDSA_P256_SHA256_FIXED, ECDSA_P256_SHA256_FIXED_SIGNING, ED25519, EcdsaKeyPair,
    Ed25519KeyPair, KeyPair, ParsedPublicKey, RSA_PKCS1_2048_8192_SHA256, RsaKeyPair,
    RsaPublicKeyComponents,
};
use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey};
use serde_json::json;

/// Smallest and largest accepted RSA modulus, in bytes (2048 and 8192 bits).
const RSA_MIN_BYTES: usize = 256;
const RSA_MAX_BYTES: usize = 1024;

/// Longest accepted `kid`, in bytes.
pub(crate) const MAX_KID_LEN: usize = 128;

/// The signature algorithms the federation accepts. There is deliberately no
/// way to name any other (no `none`, no HMAC, no PS256, no ES384).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TokenAlgorithm {
    /// Ed25519 signatures (`"alg": "EdDSA"`).
    EdDsa,
    /// ECDSA over P-256 with SHA-256 (`"alg": "ES256"`).
    Es256,
    /// RSASSA-PKCS1-v1_5 with SHA-256 (`"alg": "RS256"`).
    Rs256,
}

impl TokenAlgorithm {
    /// Every accepted algorithm.
    pub const ALL: &'static [TokenAlgorithm] = &[Self::EdDsa, Self::Es256, Self::Rs256];

    /// Reads the `alg` of a JWS header. Exact, case-sensitive match only.
    pub fn from_header_name(alg: &str) -> Option<Self> {
        match alg {
            "EdDSA" => Some(Self::EdDsa),
            "ES256" => Some(Self::Es256),
            "RS256" => Some(Self::Rs256),
            _ => None,
        }
    }

    /// The `alg` value in a JWS header.
    pub const fn header_name(self) -> &'static str {
        match self {
            Self::EdDsa => "EdDSA",
            Self::Es256 => "ES256",
            Self::Rs256 => "RS256",
        }
    }

    pub(crate) const fn jwt(self) -> Algorithm {
        match self {
            Self::EdDsa => Algorithm::EdDSA,
            Self::Es256 => Algorithm::ES256,
            Self::Rs256 => Algorithm::RS256,
        }
    }
}

impl fmt::Display for TokenAlgorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.header_name())
    }
}

/// Why a key could not be used. Never contains key material.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyError {
    #[error(
        "not a single PEM block (expected -----BEGIN PUBLIC KEY----- ... -----END PUBLIC KEY-----)"
    )]
    NotPem,
    #[error(
        "this is a private key; the federation file must only hold public keys (and the private key should now be considered exposed)"
    )]
    PrivateKey,
    #[error("unsupported PEM type `{0}` (expected PUBLIC KEY or RSA PUBLIC KEY)")]
    UnsupportedPemLabel(String),
    #[error("unsupported key type (expected Ed25519, EC P-256 or RSA)")]
    UnsupportedKeyType,
    #[error("EC key is not on curve P-256 (only ES256 is accepted)")]
    WrongCurve,
    #[error("RSA modulus must be 2048 to 8192 bits")]
    RsaSize,
    #[error("invalid {0} key")]
    Invalid(TokenAlgorithm),
    #[error("invalid JWKS: {0}")]
    Jwks(String),
    #[error("kid must be 1 to {MAX_KID_LEN} printable ASCII characters")]
    BadKid,
    #[error("cannot create key: {0}")]
    Crypto(&'static str),
}

/// A public key of an agency's identity provider, bound to one algorithm.
#[derive(Clone)]
pub struct VerificationKey {
    kid: Option<String>,
    algorithm: TokenAlgorithm,
    key: DecodingKey,
}

impl fmt::Debug for VerificationKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("VerificationKey")
            .field("kid", &self.kid)
            .field("algorithm", &self.algorithm)
            .finish_non_exhaustive()
    }
}

impl VerificationKey {
    /// The key ID tokens name in their header, if the key has one.
    pub fn kid(&self) -> Option<&str> {
        self.kid.as_deref()
    }

    /// The only algorithm this key verifies.
    pub fn algorithm(&self) -> TokenAlgorithm {
        self.algorithm
    }

    /// Reads one public key from PEM: `PUBLIC KEY` (SPKI: Ed25519, EC P-256
    /// or RSA) or `RSA PUBLIC KEY` (PKCS#1).
    pub fn from_public_pem(pem: &str, kid: Option<String>) -> Result<Self, KeyError> {
        if let Some(kid) = &kid {
            check_kid(kid)?;
        }
        let (label, _der) = parse_single_pem(pem)?;
        match label.as_str() {
            "PUBLIC KEY" | "RSA PUBLIC KEY" => {}
            l if l.contains("PRIVATE") => return Err(KeyError::PrivateKey),
            other => {
                return Err(KeyError::UnsupportedPemLabel(
                    other.chars().take(40).collect(),
                ));
            }
        }
        let bytes = pem.as_bytes();
        let (algorithm, key) = if let Ok(key) = DecodingKey::from_ed_pem(bytes) {
            ParsedPublicKey::new(&ED25519, key.as_bytes())
                .map_err(|_| KeyError::Invalid(TokenAlgorithm::EdDsa))?;
            if key.as_bytes().len() != 32 {
                return Err(KeyError::Invalid(TokenAlgorithm::EdDsa));
            }
            (TokenAlgorithm::EdDsa, key)
        } else if let Ok(key) = DecodingKey::from_ec_pem(bytes) {
            check_p256_point(key.as_bytes())?;
            (TokenAlgorithm::Es256, key)
        } else if let Ok(key) = DecodingKey::from_rsa_pem(bytes) {
            let public = aws_lc_rs::rsa::PublicKey::from_der(key.as_bytes())
                .map_err(|_| KeyError::Invalid(TokenAlgorithm::Rs256))?;
            if !(RSA_MIN_BYTES..=RSA_MAX_BYTES).contains(&public.modulus_len()) {
                return Err(KeyError::RsaSize);
            }
            ParsedPublicKey::new(&RSA_PKCS1_2048_8192_SHA256, key.as_bytes())
                .map_err(|_| KeyError::Invalid(TokenAlgorithm::Rs256))?;
            (TokenAlgorithm::Rs256, key)
        } else {
            return Err(KeyError::UnsupportedKeyType);
        };
        Ok(Self {
            kid,
            algorithm,
            key,
        })
    }

    /// Reads every signing key of a JWKS document (`{"keys": [...]}`):
    /// `OKP`/`Ed25519`, `EC`/`P-256` and `RSA`. Keys marked `"use": "enc"`
    /// are skipped; any other key that is not one of those is an error, as is
    /// a key whose `alg` does not match its type.
    pub fn from_jwks(json: &str) -> Result<Vec<Self>, KeyError> {
        let doc: serde_json::Value =
            serde_json::from_str(json).map_err(|e| KeyError::Jwks(e.to_string()))?;
        let keys = doc
            .get("keys")
            .and_then(|k| k.as_array())
            .ok_or_else(|| KeyError::Jwks("missing `keys` array".into()))?;
        let mut out = Vec::new();
        for (i, jwk) in keys.iter().enumerate() {
            let field = |name: &str| jwk.get(name).and_then(|v| v.as_str());
            let kid = field("kid").map(str::to_owned);
            let at = || match &kid {
                Some(k) => format!("key `{}`", k.chars().take(MAX_KID_LEN).collect::<String>()),
                None => format!("keys[{i}]"),
            };
            match jwk.get("use") {
                None => {}
                Some(v) if v.as_str() == Some("sig") => {}
                Some(v) if v.as_str() == Some("enc") => continue,
                Some(_) => return Err(KeyError::Jwks(format!("{}: unknown `use`", at()))),
            }
            if let Some(kid) = &kid {
                check_kid(kid)?;
            }
            let kty =
                field("kty").ok_or_else(|| KeyError::Jwks(format!("{}: missing kty", at())))?;
            let b64 = |name: &str| -> Result<Vec<u8>, KeyError> {
                let v = field(name)
                    .ok_or_else(|| KeyError::Jwks(format!("{}: missing `{name}`", at())))?;
                URL_SAFE_NO_PAD
                    .decode(v)
                    .map_err(|_| KeyError::Jwks(format!("{}: `{name}` is not base64url", at())))
            };
            let (algorithm, key) = match (kty, field("crv")) {
                ("OKP", Some("Ed25519")) => {
                    let x = b64("x")?;
                    if x.len() != 32 {
                        return Err(KeyError::Invalid(TokenAlgorithm::EdDsa));
                    }
                    ParsedPublicKey::new(&ED25519, &x)
                        .map_err(|_| KeyError::Invalid(TokenAlgorithm::EdDsa))?;
                    (TokenAlgorithm::EdDsa, DecodingKey::from_ed_der(&x))
                }
                ("EC", Some("P-256")) => {
                    let (x, y) = (b64("x")?, b64("y")?);
                    if x.len() != 32 || y.len() != 32 {
                        return Err(KeyError::Invalid(TokenAlgorithm::Es256));
                    }
                    let mut point = Vec::with_capacity(65);
                    point.push(0x04);
                    point.extend_from_slice(&x);
                    point.extend_from_slice(&y);
                    check_p256_point(&point)?;
                    (TokenAlgorithm::Es256, DecodingKey::from_ec_der(&point))
                }
                ("EC", _) => return Err(KeyError::WrongCurve),
                ("RSA", _) => {
                    let (n, e) = (b64("n")?, b64("e")?);
                    if !(RSA_MIN_BYTES..=RSA_MAX_BYTES).contains(&n.len()) || n[0] == 0 {
                        return Err(KeyError::RsaSize);
                    }
                    RsaPublicKeyComponents { n: &n, e: &e }
                        .to_parsed_public_key(&RSA_PKCS1_2048_8192_SHA256)
                        .map_err(|_| KeyError::Invalid(TokenAlgorithm::Rs256))?;
                    (
                        TokenAlgorithm::Rs256,
                        DecodingKey::from_rsa_raw_components(&n, &e),
                    )
                }
                _ => {
                    return Err(KeyError::Jwks(format!(
                        "{}: unsupported key type (expected OKP/Ed25519, EC/P-256 or RSA)",
                        at()
                    )));
                }
            };
            if let Some(alg) = jwk.get("alg")
                && alg.as_str() != Some(algorithm.header_name())
            {
                return Err(KeyError::Jwks(format!(
                    "{}: `alg` must be {} for this key",
                    at(),
                    algorithm
                )));
            }
            out.push(Self {
                kid,
                algorithm,
                key,
            });
        }
        if out.is_empty() {
            return Err(KeyError::Jwks("no signing key in the set".into()));
        }
        Ok(out)
    }

    /// Checks `signature` (base64url, as in the token) over `message`.
    /// Only called with a token whose `alg` equals this key's algorithm.
    pub(crate) fn verify(&self, message: &[u8], signature_b64: &str) -> bool {
        jsonwebtoken::crypto::verify(signature_b64, message, &self.key, self.algorithm.jwt())
            .unwrap_or(false)
    }
}

fn check_p256_point(point: &[u8]) -> Result<(), KeyError> {
    if point.len() != 65 || point[0] != 0x04 {
        return Err(KeyError::WrongCurve);
    }
    ParsedPublicKey::new(&ECDSA_P256_SHA256_FIXED, point)
        .map(|_| ())
        .map_err(|_| KeyError::Invalid(TokenAlgorithm::Es256))
}

pub(crate) fn check_kid(kid: &str) -> Result<(), KeyError> {
    let ok = !kid.is_empty()
        && kid.len() <= MAX_KID_LEN
        && kid.bytes().all(|b| (0x21..=0x7e).contains(&b));
    if ok { Ok(()) } else { Err(KeyError::BadKid) }
}

/// Splits one PEM block into its label and DER bytes. Nothing may precede
/// or follow the block but whitespace.
pub(crate) fn parse_single_pem(text: &str) -> Result<(String, Vec<u8>), KeyError> {
    let text = text.trim();
    let rest = text.strip_prefix("-----BEGIN ").ok_or(KeyError::NotPem)?;
    let (label, rest) = rest.split_once("-----").ok_or(KeyError::NotPem)?;
    if label.len() > 64 || label.contains('\n') {
        return Err(KeyError::NotPem);
    }
    let end = format!("-----END {label}-----");
    let body = rest.strip_suffix(end.as_str()).ok_or(KeyError::NotPem)?;
    if body.contains('-') {
        return Err(KeyError::NotPem);
    }
    let b64: String = body.chars().filter(|c| !c.is_ascii_whitespace()).collect();
    let der = STANDARD.decode(b64).map_err(|_| KeyError::NotPem)?;
    if der.is_empty() {
        return Err(KeyError::NotPem);
    }
    Ok((label.to_owned(), der))
}

/// Encodes DER bytes as a PEM block with 64-character lines.
pub(crate) fn encode_pem(label: &str, der: &[u8]) -> String {
    let b64 = STANDARD.encode(der);
    let mut out = format!("-----BEGIN {label}-----\n");
    for chunk in b64.as_bytes().chunks(64) {
        out.push_str(std::str::from_utf8(chunk).unwrap_or_default());
        out.push('\n');
    }
    out.push_str(&format!("-----END {label}-----\n"));
    out
}

/// A private signing key: the development identity provider's, or one a test
/// uses to forge tokens. Its `Debug` output never shows key material.
#[derive(Clone)]
pub struct SigningKey {
    algorithm: TokenAlgorithm,
    kid: Option<String>,
    pkcs8: Vec<u8>,
    encoding: EncodingKey,
    public_spki: Vec<u8>,
    public_jwk: serde_json::Value,
}

impl fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SigningKey")
            .field("algorithm", &self.algorithm)
            .field("kid", &self.kid)
            .finish_non_exhaustive()
    }
}

impl SigningKey {
    /// Generates a fresh key (RSA keys are 2048 bits).
    pub fn generate(algorithm: TokenAlgorithm) -> Result<Self, KeyError> {
        let rng = SystemRandom::new();
        let pkcs8 = match algorithm {
            TokenAlgorithm::EdDsa => Ed25519KeyPair::generate_pkcs8(&rng)
                .map_err(|_| KeyError::Crypto("Ed25519 key generation failed"))?
                .as_ref()
                .to_vec(),
            TokenAlgorithm::Es256 => {
                EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng)
                    .map_err(|_| KeyError::Crypto("P-256 key generation failed"))?
                    .as_ref()
                    .to_vec()
            }
            TokenAlgorithm::Rs256 => {
                let pair = RsaKeyPair::generate(aws_lc_rs::rsa::KeySize::Rsa2048)
                    .map_err(|_| KeyError::Crypto("RSA key generation failed"))?;
                let der: Pkcs8V1Der<'static> = pair
                    .as_der()
                    .map_err(|_| KeyError::Crypto("RSA key encoding failed"))?;
                der.as_ref().to_vec()
            }
        };
        Self::from_pkcs8_der(algorithm, &pkcs8)
    }

    /// Reads an unencrypted PKCS#8 private key (`-----BEGIN PRIVATE KEY-----`)
    /// of any of the three accepted kinds.
    pub fn from_pkcs8_pem(pem: &str) -> Result<Self, KeyError> {
        let (label, der) = parse_single_pem(pem)?;
        if label != "PRIVATE KEY" {
            return Err(KeyError::UnsupportedPemLabel(
                label.chars().take(40).collect(),
            ));
        }
        TokenAlgorithm::ALL
            .iter()
            .find_map(|alg| Self::from_pkcs8_der(*alg, &der).ok())
            .ok_or(KeyError::UnsupportedKeyType)
    }

    /// Reads an unencrypted PKCS#8 private key (DER) for `algorithm`.
    pub fn from_pkcs8_der(algorithm: TokenAlgorithm, pkcs8: &[u8]) -> Result<Self, KeyError> {
        let invalid = |_| KeyError::Invalid(algorithm);
        let (encoding, public_spki, public_jwk) = match algorithm {
            TokenAlgorithm::EdDsa => {
                let pair = Ed25519KeyPair::from_pkcs8(pkcs8).map_err(invalid)?;
                let spki = pair
                    .public_key()
                    .as_der()
                    .map_err(|_| KeyError::Invalid(algorithm))?;
                let jwk = json!({
                    "kty": "OKP",
                    "crv": "Ed25519",
                    "x": URL_SAFE_NO_PAD.encode(pair.public_key().as_ref()),
                });
                (EncodingKey::from_ed_der(pkcs8), spki.as_ref().to_vec(), jwk)
            }
            TokenAlgorithm::Es256 => {
                let pair = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8)
                    .map_err(invalid)?;
                let spki = pair
                    .public_key()
                    .as_der()
                    .map_err(|_| KeyError::Invalid(algorithm))?;
                let point = pair.public_key().as_ref();
                if point.len() != 65 {
                    return Err(KeyError::Invalid(algorithm));
                }
                let jwk = json!({
                    "kty": "EC",
                    "crv": "P-256",
                    "x": URL_SAFE_NO_PAD.encode(&point[1..33]),
                    "y": URL_SAFE_NO_PAD.encode(&point[33..65]),
                });
                (EncodingKey::from_ec_der(pkcs8), spki.as_ref().to_vec(), jwk)
            }
            TokenAlgorithm::Rs256 => {
                let pair = RsaKeyPair::from_pkcs8(pkcs8).map_err(invalid)?;
                let public = pair.public_key();
                if !(RSA_MIN_BYTES..=RSA_MAX_BYTES).contains(&public.modulus_len()) {
                    return Err(KeyError::RsaSize);
                }
                let spki = public.as_der().map_err(|_| KeyError::Invalid(algorithm))?;
                let jwk = json!({
                    "kty": "RSA",
                    "n": URL_SAFE_NO_PAD.encode(public.modulus().big_endian_without_leading_zero()),
                    "e": URL_SAFE_NO_PAD.encode(public.exponent().big_endian_without_leading_zero()),
                });
                // jsonwebtoken signs RSA with a PKCS#1 RSAPrivateKey, which
                // its PEM reader extracts from the PKCS#8 wrapper.
                let encoding =
                    EncodingKey::from_rsa_pem(encode_pem("PRIVATE KEY", pkcs8).as_bytes())
                        .map_err(|_| KeyError::Invalid(algorithm))?;
                (encoding, spki.as_ref().to_vec(), jwk)
            }
        };
        Ok(Self {
            algorithm,
            kid: None,
            pkcs8: pkcs8.to_vec(),
            encoding,
            public_spki,
            public_jwk,
        })
    }

    /// The same key, naming `kid` in the tokens it signs.
    pub fn with_kid(mut self, kid: impl Into<String>) -> Self {
        self.kid = Some(kid.into());
        self
    }

    /// The `kid` put in the header of tokens signed with this key.
    pub fn kid(&self) -> Option<&str> {
        self.kid.as_deref()
    }

    pub fn algorithm(&self) -> TokenAlgorithm {
        self.algorithm
    }

    /// The public key as SPKI PEM (`-----BEGIN PUBLIC KEY-----`).
    pub fn public_key_pem(&self) -> String {
        encode_pem("PUBLIC KEY", &self.public_spki)
    }

    /// The public key as a JWK (with `kid` when set, `alg` and `"use": "sig"`).
    pub fn public_jwk(&self) -> serde_json::Value {
        let mut jwk = self.public_jwk.clone();
        if let Some(map) = jwk.as_object_mut() {
            map.insert("alg".into(), self.algorithm.header_name().into());
            map.insert("use".into(), "sig".into());
            if let Some(kid) = &self.kid {
                map.insert("kid".into(), kid.clone().into());
            }
        }
        jwk
    }

    /// The private key as unencrypted PKCS#8 PEM. Handle with care.
    pub fn private_key_pem(&self) -> String {
        encode_pem("PRIVATE KEY", &self.pkcs8)
    }

    pub(crate) fn public_spki_der(&self) -> &[u8] {
        &self.public_spki
    }

    pub(crate) fn encoding_key(&self) -> &EncodingKey {
        &self.encoding
    }
}
