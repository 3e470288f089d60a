//! The test harness: a development federation of five agencies in a temp
//! directory, one agency node (`shelter-north`) started on a loopback port
//! on SQLite or on a fresh PostgreSQL database, and typed helpers to mint
//! tokens and send GraphQL operations.
//!
//! The PostgreSQL suite needs `EXCHANGE_TEST_POSTGRES_URL` (an account that
//! may create databases); `scripts/test.sh` starts the machine's server and
//! sets it. Without it the PostgreSQL tests fail: they never skip.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use agency_node::state::NodeState;
use agency_node::{Application, NodeConfig};
use exchange_schema::{AgencyId, AgencyKind, Role, ServiceKind};
pub use exchange_test_kit::Gql;
use exchange_test_kit::agencies::agency_spec as spec;
pub use exchange_test_kit::fresh_postgres_database;
use exchange_test_kit::scratch::ScratchDatabase;
pub use exchange_test_kit::survivors::{SURVIVOR_QUERY, survivor_input as full_survivor_input};
use exchange_trust::DevFederation;
use serde_json::{Value, json};
use tokio::sync::oneshot;

pub const AUDIENCE: &str = "survivor-exchange-test";
/// The node under test.
pub const OWNER: &str = "shelter-north";
/// Another shelter: may receive contact details under consent.
pub const SHELTER: &str = "shelter-south";
pub const LEGAL: &str = "legal-aid-city";
pub const CLINIC: &str = "clinic-east";
pub const POLICE: &str = "police-central";
pub const OVERSIGHT: &str = "oversight-board";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// Runs each named `async fn(Backend)` once on SQLite and once on PostgreSQL.
macro_rules! on_both_backends {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name($crate::common::Backend::Sqlite).await
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name($crate::common::Backend::Postgres).await
                }
            )*
        }
    };
}
pub(crate) use on_both_backends;

/// A running node with its federation.
pub struct TestNode {
    pub base: String,
    pub client: reqwest::Client,
    pub federation: DevFederation,
    pub state: Arc<NodeState>,
    pub database_url: String,
    pub data_dir: PathBuf,
    pub backend: Backend,
    /// The survivor portal's base URL, when the test turned it on.
    pub portal: Option<String>,
    /// The metrics listener's base URL, when the test turned it on.
    pub metrics: Option<String>,
    _dir: tempfile::TempDir,
    shutdown: Option<oneshot::Sender<()>>,
    server: Option<tokio::task::JoinHandle<anyhow::Result<()>>>,
    /// The PostgreSQL database, dropped with the node (declared last so it
    /// goes after everything that uses it).
    _scratch: Option<ScratchDatabase>,
}

impl TestNode {
    pub async fn start(backend: Backend) -> Self {
        Self::start_with(backend, |_| {}).await
    }

    /// Starts a node after letting the test adjust its configuration.
    pub async fn start_with(backend: Backend, adjust: impl FnOnce(&mut NodeConfig)) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let federation = DevFederation::create(
            dir.path(),
            &[
                spec(
                    OWNER,
                    "North Star Shelter",
                    AgencyKind::Shelter,
                    vec![ServiceKind::Shelter],
                ),
                spec(
                    SHELTER,
                    "South Harbour Shelter",
                    AgencyKind::Shelter,
                    vec![ServiceKind::Shelter],
                ),
                spec(
                    LEGAL,
                    "City Legal Aid",
                    AgencyKind::LegalAid,
                    vec![ServiceKind::LegalAid],
                ),
                spec(
                    CLINIC,
                    "East Clinic",
                    AgencyKind::HealthClinic,
                    vec![ServiceKind::Medical],
                ),
                spec(POLICE, "Central Police", AgencyKind::LawEnforcement, vec![]),
                spec(OVERSIGHT, "Oversight Board", AgencyKind::Oversight, vec![]),
            ],
            AUDIENCE,
        )
        .unwrap();
        let data_dir = dir.path().join("node");
        let scratch = match backend {
            Backend::Sqlite => None,
            Backend::Postgres => Some(fresh_postgres_database().await),
        };
        let database_url = scratch.as_ref().map_or_else(
            || agency_node::store::sqlite_url(&data_dir),
            |db| db.url().to_owned(),
        );
        let mut config =
            NodeConfig::new(AgencyId::parse(OWNER).unwrap(), &federation.path, &data_dir);
        config.database_url = Some(agency_node::config::DatabaseUrl(database_url));
        adjust(&mut config);
        // The test may have moved the database (or the data directory).
        let database_url = config.database_url();
        let app = Application::build(config).await.expect("node starts");
        let base = format!("http://{}", app.address());
        let portal = app.portal_address().map(|a| format!("http://{a}"));
        let metrics = app.metrics_address().map(|a| format!("http://{a}"));
        let state = app.state();
        let (tx, rx) = oneshot::channel();
        let server = tokio::spawn(app.run(async {
            let _ = rx.await;
        }));
        Self {
            base,
            client: reqwest::Client::new(),
            federation,
            state,
            database_url,
            data_dir,
            backend,
            portal,
            metrics,
            _dir: dir,
            shutdown: Some(tx),
            server: Some(server),
            _scratch: scratch,
        }
    }

    /// Stops the node gracefully and waits for it.
    pub async fn stop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(server) = self.server.take() {
            server.await.unwrap().unwrap();
        }
    }

    pub fn federation_path(&self) -> &Path {
        &self.federation.path
    }

    /// A valid token for a user of `agency` with `roles`.
    pub fn token(&self, agency: &str, roles: &[Role]) -> String {
        exchange_test_kit::agencies::mint(&self.federation, agency, roles, AUDIENCE)
    }

    pub fn caseworker(&self, agency: &str) -> String {
        self.token(agency, &[Role::Caseworker])
    }

    /// Sends an operation with a bearer token and a declared purpose.
    pub async fn gql(
        &self,
        token: Option<&str>,
        purpose: Option<&str>,
        query: &str,
        variables: Value,
    ) -> Gql {
        exchange_test_kit::graphql::post(
            &self.client,
            &self.base,
            token,
            purpose,
            None,
            query,
            variables,
        )
        .await
    }

    /// Sends a raw body (for malformed-input tests).
    pub async fn raw(&self, token: &str, content_type: &str, body: Vec<u8>) -> Gql {
        let response = self
            .client
            .post(format!("{}/graphql", self.base))
            .bearer_auth(token)
            .header("content-type", content_type)
            .header("x-exchange-purpose", "CASE_MANAGEMENT")
            .body(body)
            .send()
            .await
            .unwrap();
        Gql::read(response).await
    }

    /// Registers a survivor with every category filled; returns its global ID.
    /// A survivor registered at the owner with every category filled, who
    /// has shared IDENTITY (only) with the other shelter for
    /// SERVICE_COORDINATION; the survivor's ID and the grant's.
    pub async fn survivor_sharing_identity_with_shelter(
        &self,
        given_name: &str,
    ) -> (String, String) {
        let survivor = self.register_full_survivor(given_name).await;
        let grant = self
            .grant(
                &survivor,
                SHELTER,
                &["IDENTITY"],
                &["SERVICE_COORDINATION"],
                json!({}),
            )
            .await;
        (survivor, grant)
    }

    pub async fn register_full_survivor(&self, given_name: &str) -> String {
        let owner = self.caseworker(OWNER);
        let response = self
            .gql(
                Some(&owner),
                Some("CASE_MANAGEMENT"),
                exchange_test_kit::survivors::REGISTER_SURVIVOR,
                json!({ "input": full_survivor_input(given_name) }),
            )
            .await;
        response.id("registerSurvivor")
    }

    /// Records a witnessed consent; returns the grant's global ID.
    pub async fn grant(
        &self,
        survivor: &str,
        grantee: &str,
        categories: &[&str],
        purposes: &[&str],
        extra: Value,
    ) -> String {
        let response = self
            .record_consent(survivor, grantee, categories, purposes, extra)
            .await;
        response.id("recordConsent")
    }

    /// Sends `recordConsent` as the owner's caseworker (a witnessed verbal
    /// consent, `extra` fields merged into the input); the raw answer.
    pub async fn record_consent(
        &self,
        survivor: &str,
        grantee: &str,
        categories: &[&str],
        purposes: &[&str],
        extra: Value,
    ) -> Gql {
        let owner = self.caseworker(OWNER);
        let mut input = exchange_test_kit::survivors::witnessed_consent(
            survivor, grantee, categories, purposes,
        );
        if let (Some(input), Some(extra)) = (input.as_object_mut(), extra.as_object()) {
            input.extend(extra.clone());
        }
        self.gql(
            Some(&owner),
            Some("CASE_MANAGEMENT"),
            exchange_test_kit::survivors::RECORD_CONSENT,
            json!({ "input": input }),
        )
        .await
    }

    pub async fn revoke(&self, grant: &str) {
        let owner = self.caseworker(OWNER);
        let response = self
            .gql(
                Some(&owner),
                Some("CASE_MANAGEMENT"),
                "mutation($id: ID!) { revokeConsent(grantId: $id, reason: \"survivor asked\") { revokedAt } }",
                json!({ "id": grant }),
            )
            .await;
        assert!(
            response.data()["revokeConsent"]["revokedAt"].is_string(),
            "{response:?}"
        );
    }

    /// Reads a survivor with every category selected.
    pub async fn read_survivor(&self, token: &str, purpose: &str, id: &str) -> Gql {
        self.gql(
            Some(token),
            Some(purpose),
            SURVIVOR_QUERY,
            json!({ "id": id }),
        )
        .await
    }

    /// The audit entries (as stored events), oldest first.
    pub async fn audit_events(&self) -> Vec<exchange_schema::AuditEvent> {
        exchange_test_kit::events(&self.state.db).await
    }

    /// Counts rows of a table.
    /// Makes the audit log refuse every new entry, as a full disk or a
    /// broken database would (a trigger on `audit_log`), until
    /// [`Self::accept_audit_entries`].
    pub async fn refuse_audit_entries(&self) {
        let statements: &[&str] = match self.backend {
            Backend::Sqlite => &[
                "CREATE TRIGGER audit_log_unwritable BEFORE INSERT ON audit_log \
                 BEGIN SELECT RAISE(ABORT, 'disk full'); END",
            ],
            Backend::Postgres => &[
                "CREATE FUNCTION audit_log_unwritable() RETURNS trigger AS $$ \
                 BEGIN RAISE EXCEPTION 'disk full'; END $$ LANGUAGE plpgsql",
                "CREATE TRIGGER audit_log_unwritable BEFORE INSERT ON audit_log \
                 FOR EACH ROW EXECUTE FUNCTION audit_log_unwritable()",
            ],
        };
        for sql in statements {
            sqlx::query(sql)
                .execute(self.state.db.pool())
                .await
                .unwrap();
        }
    }

    /// Ends [`Self::refuse_audit_entries`].
    pub async fn accept_audit_entries(&self) {
        let statements: &[&str] = match self.backend {
            Backend::Sqlite => &["DROP TRIGGER audit_log_unwritable"],
            Backend::Postgres => &[
                "DROP TRIGGER audit_log_unwritable ON audit_log",
                "DROP FUNCTION audit_log_unwritable()",
            ],
        };
        for sql in statements {
            sqlx::query(sql)
                .execute(self.state.db.pool())
                .await
                .unwrap();
        }
    }

    pub async fn count(&self, table: &str) -> i64 {
        use sqlx::Row as _;
        sqlx::query(&format!("SELECT COUNT(*) AS n FROM {table}"))
            .fetch_one(self.state.db.pool())
            .await
            .unwrap()
            .get::<i64, _>("n")
    }

    /// Runs `agency-node` with arguments; returns (exit success, stdout+stderr).
    /// Writes `<data_dir>/<name>`: a configuration for the node's commands
    /// (`backup`, `keys`, …) naming this node's agency, federation, data
    /// directory and database, followed by `extra` (TOML); answers its path.
    pub fn command_config(&self, name: &str, extra: &str) -> std::path::PathBuf {
        let path = self.data_dir.join(name);
        std::fs::write(
            &path,
            format!(
                "agency = \"{OWNER}\"\nfederation = {:?}\ndata_dir = {:?}\ndatabase_url = {:?}\n{extra}",
                self.federation_path().display().to_string(),
                self.data_dir.display().to_string(),
                self.database_url,
            ),
        )
        .unwrap();
        path
    }

    pub fn cli(&self, args: &[&str]) -> (bool, String) {
        let (code, text) = exchange_test_kit::process::run(env!("CARGO_BIN_EXE_agency-node"), args);
        (code == 0, text)
    }
}

impl Drop for TestNode {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
    }
}
