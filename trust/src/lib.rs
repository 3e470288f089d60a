//! The federation trust list and bearer-token verification, shared by every
//! agency node and the gateway so both check tokens by the same rules.
//!
//! * [`federation`]: the federation file (agencies, issuers, keys) and its
//!   validated form, [`Federation`].
//! * [`verify`]: [`TokenVerifier`], which turns a bearer token into a
//!   [`Principal`] or an [`AuthError`] with a stable reason code.
//! * [`keys`]: the accepted algorithms (EdDSA, ES256, RS256) and key parsing.
//! * [`dev`]: a development identity provider and a one-call development
//!   federation, for the demo and tests.
//! * `dev_oidc` (feature `dev-oidc`): a development OpenID provider in front
//!   of those keys, for the demo's caseworker console and its tests.
//! * [`error`]: [`TrustError`] and [`AuthError`].
//! * [`files`]: secret files, written by the owner for the owner only.

pub mod dev;
#[cfg(feature = "dev-oidc")]
pub mod dev_oidc;
pub mod error;
pub mod federation;
pub mod files;
pub mod keys;
pub mod verify;

pub use dev::{AgencySpec, DevFederation, DevIdentityProvider, MintRequest, mint_with_key};
pub use error::{AuthError, TrustError, UnverifiedClaims};
pub use federation::{
    Agency, AgencyEntry, Federation, FederationFile, KeyEntry, Webhook, WebhookEntry,
};
pub use keys::{KeyError, SigningKey, TokenAlgorithm, VerificationKey};
pub use verify::{
    DEFAULT_CACHE_CAPACITY, MAX_LEEWAY, MAX_TOKEN_BYTES, Principal, TokenVerifier, VerifierConfig,
    parse_authorization_header,
};
