//! The test kit every suite uses (a dev-dependency; nothing here ships):
//!
//! * [`scratch`]: scratch PostgreSQL databases, dropped with their value,
//!   and [`fresh_postgres_database`] for the PostgreSQL suites (which never
//!   skip);
//! * [`graphql`]: a GraphQL test client ([`graphql::post`]) and the answer
//!   it returns ([`Gql`]);
//! * [`agencies`]: test agencies and token minting;
//! * [`survivors`]: synthetic survivor records;
//! * [`process`]: the workspace's commands run as processes;
//! * [`federation`]: a local federation launcher (three nodes and a
//!   gateway in-process on loopback);
//! * [`tracing_setup`]: spans captured in memory;
//! * [`browser`]: headless Chromium over WebDriver.
//!
//! A node's configuration is built with `agency_node::NodeConfig::new` and
//! field assignment, the gateway's with `GatewayConfig::new`. The package's
//! own integration tests (`tests/e2e`) are the federation's end-to-end
//! suite.

pub mod agencies;
pub mod browser;
pub mod federation;
pub mod graphql;
pub mod otlp;
pub mod process;
pub mod scratch;
pub mod survivors;
pub mod tracing_setup;

pub use federation::*;
pub use graphql::Gql;
pub use scratch::fresh_postgres_database;
pub use survivors::survivor_input;
