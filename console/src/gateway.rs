//! The console's only way to data: the gateway's public GraphQL API, with
//! the signed-in caseworker's own bearer token and the purpose the action
//! needs. The console adds no authority of its own: whatever it shows, the
//! gateway and the owning node decided to disclose to that caseworker.

use exchange_schema::{ErrorCode, JUSTIFICATION_HEADER, PURPOSE_HEADER, Purpose};
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
        self.execute_justified(token, purpose, None, query, variables)
            .await
    }

    /// For a query scattered to every node where some nodes are expected to
    /// refuse (a supervisor's audit-log read is refused by every node but
    /// their own): the `data` as `T`, with the agencies whose nodes refused
    /// with `FORBIDDEN`. Any other error refuses the whole request.
    pub async fn execute_scattered<T: DeserializeOwned>(
        &self,
        token: &str,
        purpose: Purpose,
        query: &str,
        variables: Value,
    ) -> Result<(T, Vec<String>), ConsoleError> {
        let body = self.post(token, purpose, None, query, variables).await?;
        let mut refused_by = Vec::new();
        for error in body["errors"].as_array().into_iter().flatten() {
            let code = error["extensions"]["code"]
                .as_str()
                .and_then(ErrorCode::parse);
            match (code, error["extensions"]["agency"].as_str()) {
                (Some(ErrorCode::Forbidden), Some(agency)) => refused_by.push(agency.to_owned()),
                _ => return Err(gateway_error(error)),
            }
        }
        let data = serde_json::from_value(body["data"].clone())
            .map_err(|e| ConsoleError::Internal(format!("unexpected answer shape: {e}")))?;
        Ok((data, refused_by))
    }

    /// [`GatewayClient::execute`] with a break-glass justification, sent
    /// as the `x-exchange-justification` header ([`justification_header`]).
    pub async fn execute_justified<T: DeserializeOwned>(
        &self,
        token: &str,
        purpose: Purpose,
        justification: Option<&str>,
        query: &str,
        variables: Value,
    ) -> Result<T, ConsoleError> {
        let body = self
            .post(token, purpose, justification, query, variables)
            .await?;
        if let Some(error) = body["errors"].as_array().and_then(|e| e.first()) {
            return Err(gateway_error(error));
        }
        serde_json::from_value(body["data"].clone())
            .map_err(|e| ConsoleError::Internal(format!("unexpected answer shape: {e}")))
    }

    /// Posts one operation; the answer's JSON body.
    async fn post(
        &self,
        token: &str,
        purpose: Purpose,
        justification: Option<&str>,
        query: &str,
        variables: Value,
    ) -> Result<Value, ConsoleError> {
        let mut request = self
            .http
            .post(&self.url)
            .bearer_auth(token)
            .header(PURPOSE_HEADER, purpose.as_str());
        if let Some(justification) = justification {
            request = request.header(JUSTIFICATION_HEADER, justification_header(justification));
        }
        let response = request
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
        serde_json::from_slice(&bytes).map_err(|_| {
            ConsoleError::GatewayUnavailable(format!("answer with status {status} is not JSON"))
        })
    }
}

/// A GraphQL error of the gateway's answer as a refusal with its code.
fn gateway_error(error: &Value) -> ConsoleError {
    let code = error["extensions"]["code"]
        .as_str()
        .and_then(ErrorCode::parse)
        .unwrap_or(ErrorCode::Internal);
    let message = error["message"].as_str().unwrap_or_default().to_owned();
    ConsoleError::Gateway { code, message }
}

/// A justification as the header carries it: visible ASCII as written;
/// every other character (a justification written in Arabic, say)
/// percent-encoded as UTF-8, so the header stays ASCII as the exchange
/// requires and the text can be decoded from the audit entry.
pub fn justification_header(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.trim().chars() {
        if c == ' ' || c.is_ascii_graphic() && c != '%' {
            out.push(c);
        } else {
            let mut buffer = [0u8; 4];
            for byte in c.encode_utf8(&mut buffer).bytes() {
                out.push_str(&format!("%{byte:02X}"));
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_justification_header_is_ascii_with_everything_else_percent_encoded() {
        assert_eq!(
            justification_header("  Unconscious, allergies unknown  "),
            "Unconscious, allergies unknown"
        );
        assert_eq!(
            justification_header("فاقد الوعي"),
            "%D9%81%D8%A7%D9%82%D8%AF %D8%A7%D9%84%D9%88%D8%B9%D9%8A"
        );
        assert_eq!(justification_header("100% sure\n"), "100%25 sure");
        assert!(justification_header("é\u{202E}x").is_ascii());
    }
}
