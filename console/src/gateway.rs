//! The console's only way to data: the gateway's public GraphQL API, with
//! the signed-in caseworker's own bearer token and the purpose the action
//! needs. The console adds no authority of its own: whatever it shows, the
//! gateway and the owning node decided to disclose to that caseworker.

use exchange_schema::{ErrorCode, PURPOSE_HEADER, Purpose};
use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::error::ConsoleError;

/// Largest answer the console reads from the gateway.
const MAX_ANSWER_BYTES: usize = 4 * 1024 * 1024;

/// A client of the gateway's GraphQL endpoint.
#[derive(Debug, Clone)]
pub struct GatewayClient {
    url: String,
    http: reqwest::Client,
}

impl GatewayClient {
    pub fn new(url: String, http: reqwest::Client) -> Self {
        Self { url, http }
    }

    /// Runs `query` with `variables` as the caseworker holding `token`, for
    /// `purpose`; the `data` read as `T`. Any GraphQL error refuses the
    /// whole request with the first error's code.
    pub async fn execute<T: DeserializeOwned>(
        &self,
        token: &str,
        purpose: Purpose,
        query: &str,
        variables: Value,
    ) -> Result<T, ConsoleError> {
        let response = self
            .http
            .post(&self.url)
            .bearer_auth(token)
            .header(PURPOSE_HEADER, purpose.as_str())
            .json(&serde_json::json!({ "query": query, "variables": variables }))
            .send()
            .await
            .map_err(|e| ConsoleError::GatewayUnavailable(e.to_string()))?;
        let status = response.status();
        let bytes = response
            .bytes()
            .await
            .map_err(|e| ConsoleError::GatewayUnavailable(e.to_string()))?;
        if bytes.len() > MAX_ANSWER_BYTES {
            return Err(ConsoleError::GatewayUnavailable("answer too large".into()));
        }
        let body: Value = serde_json::from_slice(&bytes).map_err(|_| {
            ConsoleError::GatewayUnavailable(format!("answer with status {status} is not JSON"))
        })?;
        if let Some(error) = body["errors"].as_array().and_then(|e| e.first()) {
            let code = error["extensions"]["code"]
                .as_str()
                .and_then(ErrorCode::parse)
                .unwrap_or(ErrorCode::Internal);
            let message = error["message"].as_str().unwrap_or_default().to_owned();
            return Err(ConsoleError::Gateway { code, message });
        }
        serde_json::from_value(body["data"].clone())
            .map_err(|e| ConsoleError::Internal(format!("unexpected answer shape: {e}")))
    }
}
