//! The federation gateway: one GraphQL endpoint over every agency node.
//!
//! It routes, it does not re-model. Each client operation is validated
//! against the federation schema (`schema/federation.graphql`), split by root
//! field, and each field is either sent to the node that owns the record its
//! global ID names, sent to the caller's own node, scattered to every node
//! and merged by the rule declared next to it, or answered by the gateway
//! (the agency directory and node health). Nodes get exactly the client's
//! selection and the client's token, unchanged, and decide every disclosure
//! themselves; the gateway never widens an answer or adds to a record.
//!
//! * [`app`]: [`Application`], built on a port (0 in tests) and run.
//! * [`config`]: the configuration file and its environment overrides.
//! * [`routing`]: the federation schema and its routing rules.
//! * [`plan`]: the planner's parts: checking an operation, routing its
//!   root fields, building each node's document.
//! * [`merge`]: merging scattered connections; the composite cursor.
//! * [`nodes`]: calling nodes: timeouts, circuit breakers, readiness.
//! * [`pipeline`]: one operation's path, a stage a file: authenticate,
//!   check, plan, fan out, audit, merge, respond.
//! * [`audit`]: federated audit exports and checkpoint collection.
//! * [`directory`]: the gateway's own fields.
//! * [`subscriptions`]: the notification subscription (graphql-transport-ws).
//! * [`http`]: the HTTP surface.
//! * [`telemetry`]: logs, spans and W3C trace context.
//! * [`error`]: errors and their stable codes.

pub mod app;
pub mod audit;
pub mod config;
pub mod dashboard;
pub mod directory;
pub mod error;
pub mod http;
pub mod merge;
pub mod nodes;
pub mod pipeline;
pub mod plan;
pub mod regions;
pub mod routing;
pub mod statistics;
pub mod subscriptions;
pub mod telemetry;

pub use app::Application;
pub use config::GatewayConfig;
