//! The federation contract shared by every agency node and the gateway.
//!
//! * [`ids`]: agency IDs and the global IDs that name the owning agency.
//! * [`vocabulary`]: the closed lists the federation agrees on (data
//!   categories, purposes, roles, agency kinds, referral states).
//! * [`intake`]: the coded vocabularies of a survivor's intake (sex and
//!   gender identity, age band, ISO 3166-1 countries, the Washington Group
//!   Short Set, exploitation types, BCP 47 languages).
//! * [`case`]: the coded lists of case management (service and follow-up
//!   states, follow-up kinds).
//! * [`audit`]: the audit event every node and the gateway append.
//! * [`error`]: the stable `extensions.code` values clients can rely on.
//! * [`idempotency`]: the `Idempotency-Key` header of mutations.
//! * [`headers`]: the purpose, justification and trace-context headers.
//! * [`limits`]: the operation limits the gateway and every node enforce.
//! * [`statistics`]: the catalogue of counted tables and how a release
//!   of their sums is protected.
//! * [`SUBGRAPH_SDL`]: the checked-in SDL every node must serve.

pub mod audit;
pub mod case;
pub mod error;
pub mod headers;
pub mod idempotency;
pub mod ids;
pub mod intake;
pub mod limits;
pub mod statistics;
pub mod vocabulary;

pub use audit::{AuditEvent, AuditKind, Decision};
pub use case::{
    CaseClosureReason, FollowUpKind, FollowUpStatus, NotificationKind, PlanActionStatus,
    ServiceStatus,
};
pub use error::ErrorCode;
pub use headers::{
    HeaderError, JUSTIFICATION_HEADER, PURPOSE_HEADER, TRACEPARENT_HEADER, TraceContext,
};
pub use idempotency::{IDEMPOTENCY_KEY_HEADER, IdempotencyKey, IdempotencyKeyError};
pub use ids::{AgencyId, GlobalId, IdError, RecordKind};
pub use vocabulary::{
    AgencyKind, Category, ConsentMethod, Purpose, ReferralStatus, Role, ServiceKind, Urgency,
    VocabularyError, WithheldReason,
};

/// The subgraph SDL every agency node serves (Apollo Federation v2), as
/// checked in. A node's test fails when what it serves drifts from this.
pub const SUBGRAPH_SDL: &str = include_str!("../subgraph.graphql");

/// Path of the checked-in SDL relative to the workspace root, for messages.
pub const SUBGRAPH_SDL_PATH: &str = "schema/subgraph.graphql";
