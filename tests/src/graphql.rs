//! A GraphQL answer as the suites read it: its HTTP status and body, with
//! helpers that fail the test with the whole answer when it is not what the
//! test expected.

use serde_json::{Value, json};

/// A GraphQL answer with its HTTP status.
#[derive(Debug)]
pub struct Gql {
    pub status: u16,
    pub body: Value,
}

impl Gql {
    pub async fn read(response: reqwest::Response) -> Self {
        let status = response.status().as_u16();
        let text = response.text().await.expect("body");
        let body =
            serde_json::from_str(&text).unwrap_or_else(|_| panic!("not JSON ({status}): {text}"));
        Self { status, body }
    }

    /// `data`, asserting there were no errors.
    pub fn data(&self) -> &Value {
        assert!(
            self.body.get("errors").is_none(),
            "unexpected errors: {}",
            self.body
        );
        &self.body["data"]
    }

    /// The `id` of `data.<field>` (a created record's global ID), asserting
    /// there were no errors.
    pub fn id(&self, field: &str) -> String {
        self.data()[field]["id"]
            .as_str()
            .unwrap_or_else(|| panic!("no {field}.id in {}", self.body))
            .to_owned()
    }

    /// The errors (empty when none).
    pub fn errors(&self) -> Vec<Value> {
        self.body["errors"].as_array().cloned().unwrap_or_default()
    }

    /// The code of the first error.
    pub fn code(&self) -> &str {
        self.body["errors"][0]["extensions"]["code"]
            .as_str()
            .unwrap_or_else(|| panic!("expected an error with a code: {}", self.body))
    }

    /// Category names returned with data, and withheld ones with reasons,
    /// of the survivor at `data.<field>`.
    pub fn survivor_view(&self, field: &str) -> (Vec<String>, Vec<(String, String)>) {
        let s = &self.data()[field];
        let shown = ["identity", "contact", "case", "health", "legal"]
            .into_iter()
            .filter(|c| !s[*c].is_null())
            .map(|c| c.to_uppercase())
            .collect();
        let withheld = s["withheld"]
            .as_array()
            .unwrap_or_else(|| panic!("no withheld list: {}", self.body))
            .iter()
            .map(|w| {
                (
                    w["category"].as_str().unwrap_or_default().to_owned(),
                    w["reason"].as_str().unwrap_or_default().to_owned(),
                )
            })
            .collect();
        (shown, withheld)
    }
}

/// Sends an operation to `base`'s `/graphql` with the headers a caller
/// declares: bearer token, purpose and break-glass justification.
pub async fn post(
    client: &reqwest::Client,
    base: &str,
    token: Option<&str>,
    purpose: Option<&str>,
    justification: Option<&str>,
    query: &str,
    variables: Value,
) -> Gql {
    let mut request = client
        .post(format!("{base}/graphql"))
        .json(&json!({ "query": query, "variables": variables }));
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    if let Some(purpose) = purpose {
        request = request.header(exchange_schema::PURPOSE_HEADER, purpose);
    }
    if let Some(justification) = justification {
        request = request.header(exchange_schema::JUSTIFICATION_HEADER, justification);
    }
    Gql::read(request.send().await.expect("request sent")).await
}
