//! Sign-in with each agency's identity provider by OpenID Connect: the
//! authorization code flow with PKCE (S256), a state and a nonce per
//! attempt, the ID token checked by `openidconnect`, and the access token
//! checked by the same [`TokenVerifier`] the gateway and the nodes use, so
//! the console accepts exactly the tokens they would and learns the
//! caseworker's agency and roles from them. Sign-out ends the provider's
//! session too where it offers RP-initiated logout.
//!
//! Discovery documents are read when first needed and kept ten minutes, so
//! the console starts while a provider is down and follows its key
//! rotations.

use std::collections::HashMap;
use std::str::FromStr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use exchange_trust::Federation;
use openidconnect::core::{
    CoreAuthenticationFlow, CoreClient, CoreIdToken, CoreJwsSigningAlgorithm,
};
use openidconnect::{
    AuthorizationCode, ClientId, ClientSecret, CsrfToken, IssuerUrl, LogoutRequest, Nonce,
    OAuth2TokenResponse, PkceCodeChallenge, PkceCodeVerifier, PostLogoutRedirectUrl,
    ProviderMetadataWithLogout, RedirectUrl, RefreshToken, RequestTokenError, Scope, TokenResponse,
};

use crate::config::{ConsoleConfig, SignInConfig};
use crate::error::ConsoleError;
use crate::session::{PendingSignIn, SignedIn};

/// How long a discovery document is trusted before it is read again.
const DISCOVERY_LIFETIME: Duration = Duration::from_secs(600);

/// An agency whose staff can sign in here.
#[derive(Debug, Clone)]
pub struct SignInAgency {
    pub agency: String,
    pub name: String,
}

struct Provider {
    config: SignInConfig,
    issuer: String,
    client_secret: Option<String>,
}

/// The console's sign-in with every configured provider.
pub struct SignIn {
    providers: Vec<Provider>,
    agencies: Vec<SignInAgency>,
    discovered: Mutex<HashMap<String, (Instant, Arc<ProviderMetadataWithLogout>)>>,
    http: reqwest::Client,
    redirect_uri: String,
    after_sign_out: String,
    /// Verifies access tokens, fetching a provider's keys again when one
    /// names a key not yet known (its `jwks_url`).
    verifier: Arc<exchange_service::jwks::JwksRefresher>,
}

impl std::fmt::Debug for SignIn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SignIn")
            .field("agencies", &self.agencies)
            .finish_non_exhaustive()
    }
}

impl SignIn {
    /// Sign-in for `config`'s agencies, which must be in `federation`;
    /// client secrets are read from their files now.
    pub fn new(
        config: &ConsoleConfig,
        federation: &Federation,
        verifier: Arc<exchange_service::jwks::JwksRefresher>,
        http: reqwest::Client,
    ) -> anyhow::Result<Self> {
        let mut providers = Vec::new();
        let mut agencies = Vec::new();
        for entry in &config.sign_in {
            let agency = federation
                .agencies()
                .iter()
                .find(|a| a.id.as_str() == entry.agency)
                .ok_or_else(|| {
                    anyhow::anyhow!(
                        "sign_in: agency {} is not in the federation file",
                        entry.agency
                    )
                })?;
            let client_secret = match &entry.client_secret_file {
                Some(path) => Some(
                    std::fs::read_to_string(path)
                        .map_err(|e| {
                            anyhow::anyhow!("reading the client secret {}: {e}", path.display())
                        })?
                        .trim()
                        .to_owned(),
                ),
                None => None,
            };
            providers.push(Provider {
                config: entry.clone(),
                issuer: agency.issuer.clone(),
                client_secret,
            });
            agencies.push(SignInAgency {
                agency: entry.agency.clone(),
                name: agency.name.clone(),
            });
        }
        Ok(Self {
            providers,
            agencies,
            discovered: Mutex::new(HashMap::new()),
            http,
            redirect_uri: config.redirect_uri(),
            after_sign_out: format!("{}/", config.public_url),
            verifier,
        })
    }

    /// The agencies offered on the sign-in page.
    pub fn agencies(&self) -> &[SignInAgency] {
        &self.agencies
    }

    /// The survivor portal of `agency`, if configured.
    pub fn portal_url(&self, agency: &str) -> Option<&str> {
        self.providers
            .iter()
            .find(|p| p.config.agency == agency)
            .and_then(|p| p.config.portal_url.as_deref())
    }

    fn provider(&self, agency: &str) -> Result<&Provider, ConsoleError> {
        self.providers
            .iter()
            .find(|p| p.config.agency == agency)
            .ok_or(ConsoleError::BadRequest("unknown agency"))
    }

    async fn metadata(
        &self,
        provider: &Provider,
    ) -> Result<Arc<ProviderMetadataWithLogout>, ConsoleError> {
        let agency = &provider.config.agency;
        if let Some((at, metadata)) = self
            .discovered
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(agency)
            && at.elapsed() < DISCOVERY_LIFETIME
        {
            return Ok(metadata.clone());
        }
        let issuer = IssuerUrl::new(provider.issuer.clone()).map_err(|e| {
            ConsoleError::IdentityProvider(format!("issuer of {agency} is not a URL: {e}"))
        })?;
        let metadata = ProviderMetadataWithLogout::discover_async(issuer, &self.http)
            .await
            .map_err(|e| {
                ConsoleError::IdentityProvider(format!("discovery for {agency} failed: {e}"))
            })?;
        let metadata = Arc::new(metadata);
        self.discovered
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(agency.clone(), (Instant::now(), metadata.clone()));
        Ok(metadata)
    }

    fn client(
        &self,
        provider: &Provider,
        metadata: &ProviderMetadataWithLogout,
    ) -> Result<
        CoreClient<
            openidconnect::EndpointSet,
            openidconnect::EndpointNotSet,
            openidconnect::EndpointNotSet,
            openidconnect::EndpointNotSet,
            openidconnect::EndpointMaybeSet,
            openidconnect::EndpointMaybeSet,
        >,
        ConsoleError,
    > {
        let redirect = RedirectUrl::new(self.redirect_uri.clone())
            .map_err(|e| ConsoleError::Internal(format!("redirect URI: {e}")))?;
        Ok(CoreClient::from_provider_metadata(
            metadata.clone(),
            ClientId::new(provider.config.client_id.clone()),
            provider.client_secret.clone().map(ClientSecret::new),
        )
        .set_redirect_uri(redirect))
    }

    /// Starts a sign-in at `agency`'s provider: the address to send the
    /// browser to, and what the callback needs to finish it.
    pub async fn start(&self, agency: &str) -> Result<(String, PendingSignIn), ConsoleError> {
        let provider = self.provider(agency)?;
        let metadata = self.metadata(provider).await?;
        let client = self.client(provider, &metadata)?;
        let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
        let mut request = client
            .authorize_url(
                CoreAuthenticationFlow::AuthorizationCode,
                CsrfToken::new_random,
                Nonce::new_random,
            )
            .set_pkce_challenge(challenge);
        for scope in &provider.config.scopes {
            request = request.add_scope(Scope::new(scope.clone()));
        }
        for (name, value) in &provider.config.extra_parameters {
            request = request.add_extra_param(name.clone(), value.clone());
        }
        let (url, state, nonce) = request.url();
        Ok((
            url.to_string(),
            PendingSignIn::new(
                agency.to_owned(),
                state.secret().clone(),
                nonce.secret().clone(),
                verifier.secret().clone(),
            ),
        ))
    }

    /// Finishes a sign-in with the provider's `code`: exchanges it (with
    /// the PKCE verifier), checks the ID token (signature, issuer, audience,
    /// expiry, nonce) and the access token (as the gateway would).
    pub async fn finish(
        &self,
        pending: &PendingSignIn,
        code: &str,
    ) -> Result<SignedIn, ConsoleError> {
        let provider = self.provider(&pending.agency)?;
        let metadata = self.metadata(provider).await?;
        let client = self.client(provider, &metadata)?;
        let response = client
            .exchange_code(AuthorizationCode::new(code.to_owned()))
            .map_err(|e| ConsoleError::IdentityProvider(format!("no token endpoint: {e}")))?
            .set_pkce_verifier(PkceCodeVerifier::new(pending.pkce_verifier.clone()))
            .request_async(&self.http)
            .await
            .map_err(|e| ConsoleError::SignInRefused(format!("code exchange failed: {e}")))?;
        let id_token = response
            .id_token()
            .ok_or_else(|| ConsoleError::SignInRefused("no ID token in the answer".into()))?;
        let id_verifier = client.id_token_verifier().set_allowed_algs(vec![
            CoreJwsSigningAlgorithm::EdDsa,
            CoreJwsSigningAlgorithm::EcdsaP256Sha256,
            CoreJwsSigningAlgorithm::RsaSsaPkcs1V15Sha256,
        ]);
        let claims = id_token
            .claims(&id_verifier, &Nonce::new(pending.nonce.clone()))
            .map_err(|e| ConsoleError::SignInRefused(format!("ID token refused: {e}")))?;
        let access_token = response.access_token().secret().clone();
        let principal = self
            .verifier
            .verify(&access_token)
            .await
            .map_err(|e| ConsoleError::SignInRefused(format!("access token refused: {e}")))?;
        if principal.agency.as_str() != pending.agency {
            return Err(ConsoleError::SignInRefused(format!(
                "the access token is for agency {}, not {}",
                principal.agency, pending.agency
            )));
        }
        if claims.subject().as_str() != principal.user {
            return Err(ConsoleError::SignInRefused(
                "the ID token and the access token name different users".into(),
            ));
        }
        let display_name = claims
            .name()
            .and_then(|n| n.get(None))
            .map(|n| n.as_str().to_owned());
        Ok(SignedIn::new(
            principal,
            display_name,
            access_token,
            id_token.to_string(),
            response.refresh_token().map(|t| t.secret().clone()),
        ))
    }

    /// Renews `signed_in`'s access token with its refresh token. The
    /// provider refusing (`invalid_grant`: the grant was revoked, the
    /// account disabled) is [`ConsoleError::SignInRevoked`]; the new access
    /// token is checked as at sign-in and must name the same user.
    pub async fn refresh(&self, signed_in: &SignedIn) -> Result<SignedIn, ConsoleError> {
        let Some(refresh_token) = &signed_in.refresh_token else {
            return Err(ConsoleError::SessionExpired);
        };
        let provider = self.provider(signed_in.principal.agency.as_str())?;
        let metadata = self.metadata(provider).await?;
        let client = self.client(provider, &metadata)?;
        let response = client
            .exchange_refresh_token(&RefreshToken::new(refresh_token.clone()))
            .map_err(|e| ConsoleError::IdentityProvider(format!("no token endpoint: {e}")))?
            .request_async(&self.http)
            .await
            .map_err(|e| match e {
                RequestTokenError::ServerResponse(answer) => ConsoleError::SignInRevoked(format!(
                    "the provider refused the refresh: {:?}",
                    answer.error()
                )),
                other => ConsoleError::IdentityProvider(format!("refresh failed: {other}")),
            })?;
        let access_token = response.access_token().secret().clone();
        let principal = self.verifier.verify(&access_token).await.map_err(|e| {
            ConsoleError::SignInRevoked(format!("renewed access token refused: {e}"))
        })?;
        if principal.agency != signed_in.principal.agency
            || principal.user != signed_in.principal.user
        {
            return Err(ConsoleError::SignInRevoked(
                "the renewed access token names someone else".into(),
            ));
        }
        let renewed = SignedIn::new(
            principal,
            None,
            access_token,
            response
                .id_token()
                .map_or_else(|| signed_in.id_token.clone(), |t| t.to_string()),
            response.refresh_token().map(|t| t.secret().clone()),
        );
        Ok(signed_in.renewed(renewed))
    }

    /// Where to send the browser at sign-out to end the provider's session
    /// too: its end-session endpoint with the ID token as hint and the
    /// console's start page to come back to; `None` when it has none.
    pub async fn sign_out_url(&self, signed_in: &SignedIn) -> Option<String> {
        let provider = self.provider(signed_in.principal.agency.as_str()).ok()?;
        let metadata = self.metadata(provider).await.ok()?;
        let endpoint = metadata
            .additional_metadata()
            .end_session_endpoint
            .clone()?;
        let hint = CoreIdToken::from_str(&signed_in.id_token).ok()?;
        let back = PostLogoutRedirectUrl::new(self.after_sign_out.clone()).ok()?;
        Some(
            LogoutRequest::from(endpoint)
                .set_id_token_hint(&hint)
                .set_client_id(ClientId::new(provider.config.client_id.clone()))
                .set_post_logout_redirect_uri(back)
                .http_get_url()
                .to_string(),
        )
    }
}
