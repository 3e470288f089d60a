//! The node's error type and its mapping to stable GraphQL error codes.
//!
//! Clients see a short message and `extensions.code`; anything internal
//! (database errors, I/O) is logged with the trace ID and replaced by a
//! generic message, so no record content or system detail leaks.

use exchange_schema::ErrorCode;

/// An error a request can end with.
///
/// Deliberately not `Display` (and so not `std::error::Error`): async-graphql
/// converts any `Display` type into a GraphQL error *without* an
/// `extensions.code`, so a `?` could silently drop the code. The only
/// conversion is the one below, which always sets it.
#[derive(Debug)]
pub enum NodeError {
    Unauthenticated(String),
    Forbidden(String),
    ConsentRequired(String),
    PurposeRequired(String),
    JustificationRequired,
    /// What was not found ("survivor", "referral", ...).
    NotFound(&'static str),
    BadInput(String),
    Conflict(String),
    /// The audit log (and so the storage it shares with the records) could
    /// not be written or did not confirm in time: nothing was disclosed.
    /// Logged with its detail.
    AuditUnavailable(anyhow::Error),
    /// The `Idempotency-Key` was used before with another request.
    IdempotencyKeyReused,
    /// Logged with its detail; the client sees only "internal error".
    Internal(anyhow::Error),
    /// The record moved to another node in a case transfer: its new
    /// global ID (what the tombstone left here says).
    Moved(exchange_schema::GlobalId),
    /// Another agency's node, called by this one (a case transfer), did
    /// not answer; what it did is not known.
    PeerUnavailable(String),
    /// The survivor's record was erased: when, and under which rule (none
    /// known when only the key store says its key is gone).
    Erased {
        at: time::OffsetDateTime,
        rule: Option<String>,
    },
}

impl NodeError {
    /// The message the client sees.
    pub fn message(&self) -> String {
        match self {
            Self::Unauthenticated(why) => format!("authentication required: {why}"),
            Self::Forbidden(why)
            | Self::ConsentRequired(why)
            | Self::BadInput(why)
            | Self::Conflict(why) => why.clone(),
            Self::PurposeRequired(why) => format!(
                "this request can disclose data: declare a purpose in the `x-exchange-purpose` header ({why})"
            ),
            Self::JustificationRequired => "a break-glass request needs a written justification \
                (at least a sentence) in the `x-exchange-justification` header or argument"
                .into(),
            Self::NotFound(what) => format!("{what} not found"),
            Self::AuditUnavailable(_) => "the audit log cannot be written right now, so nothing \
                is disclosed or changed; retry later (a change with the same Idempotency-Key)"
                .into(),
            Self::IdempotencyKeyReused => {
                "this Idempotency-Key was used with a different request; \
                send a new request with a new key"
                    .into()
            }
            Self::Internal(_) => "internal error".into(),
            Self::PeerUnavailable(why) => why.clone(),
            Self::Moved(to) => format!(
                "the record moved to {} in a case transfer; ask for {to}",
                to.agency()
            ),
            Self::Erased { at, rule } => match rule {
                Some(rule) => format!(
                    "the record was erased on {} under the rule {rule}",
                    at.date()
                ),
                None => format!("the record was erased on {}", at.date()),
            },
        }
    }

    pub fn code(&self) -> ErrorCode {
        match self {
            Self::Unauthenticated(_) => ErrorCode::Unauthenticated,
            Self::Forbidden(_) => ErrorCode::Forbidden,
            Self::ConsentRequired(_) => ErrorCode::ConsentRequired,
            Self::PurposeRequired(_) => ErrorCode::PurposeRequired,
            Self::JustificationRequired => ErrorCode::JustificationRequired,
            Self::NotFound(_) => ErrorCode::NotFound,
            Self::BadInput(_) => ErrorCode::BadUserInput,
            Self::Conflict(_) => ErrorCode::Conflict,
            Self::AuditUnavailable(_) => ErrorCode::AuditUnavailable,
            Self::IdempotencyKeyReused => ErrorCode::IdempotencyKeyReused,
            Self::Internal(_) => ErrorCode::Internal,
            Self::Moved(_) => ErrorCode::Moved,
            Self::PeerUnavailable(_) => ErrorCode::NodeUnavailable,
            Self::Erased { .. } => ErrorCode::Erased,
        }
    }

    pub fn bad_input(message: impl Into<String>) -> Self {
        Self::BadInput(message.into())
    }

    /// An internal error, or [`NodeError::AuditUnavailable`] when it is a
    /// storage fault (see [`is_storage_fault`]).
    pub fn internal(err: impl Into<anyhow::Error>) -> Self {
        Self::from(err.into())
    }
}

impl From<sqlx::Error> for NodeError {
    /// A storage fault (the database is full, failing, read-only, locked,
    /// restarting or unreachable) is [`NodeError::AuditUnavailable`]: the
    /// log shares that storage, so nothing can be disclosed or changed;
    /// anything else is internal.
    fn from(err: sqlx::Error) -> Self {
        if is_storage_fault(&err) {
            Self::AuditUnavailable(err.into())
        } else {
            Self::Internal(err.into())
        }
    }
}

pub use exchange_service::db::is_storage_fault;

impl From<exchange_audit::AuditError> for NodeError {
    fn from(err: exchange_audit::AuditError) -> Self {
        match err {
            exchange_audit::AuditError::Unavailable(source) => Self::AuditUnavailable(source),
            exchange_audit::AuditError::Internal(source) => Self::Internal(source),
        }
    }
}

impl exchange_audit::ChangeError for NodeError {
    fn is_audit_unavailable(&self) -> bool {
        matches!(self, Self::AuditUnavailable(_))
    }
}

impl From<anyhow::Error> for NodeError {
    /// As for [`sqlx::Error`]: a storage fault anywhere in the chain is
    /// [`NodeError::AuditUnavailable`].
    fn from(err: anyhow::Error) -> Self {
        let err = match err.downcast::<crate::vault::VaultError>() {
            Ok(vault) => return Self::from(vault),
            Err(err) => err,
        };
        let err = match err.downcast::<crate::store::survivors::ErasedRecord>() {
            Ok(erased) => {
                return Self::Erased {
                    at: erased.at,
                    rule: erased.rule,
                };
            }
            Err(err) => err,
        };
        let storage_fault = err.chain().any(|cause| {
            cause
                .downcast_ref::<sqlx::Error>()
                .is_some_and(is_storage_fault)
        });
        if storage_fault {
            Self::AuditUnavailable(err)
        } else {
            Self::Internal(err)
        }
    }
}

impl From<crate::vault::VaultError> for NodeError {
    /// A destroyed key is an erased record; a key store or key service that
    /// cannot answer is a storage fault (nothing is disclosed or changed);
    /// a value that does not open is internal (logged, never shown).
    fn from(err: crate::vault::VaultError) -> Self {
        match err {
            crate::vault::VaultError::Destroyed { at, .. } => Self::Erased { at, rule: None },
            err if err.is_unavailable() => Self::AuditUnavailable(err.into()),
            err => Self::Internal(err.into()),
        }
    }
}

impl From<exchange_schema::IdError> for NodeError {
    fn from(err: exchange_schema::IdError) -> Self {
        Self::BadInput(err.to_string())
    }
}

impl From<NodeError> for async_graphql::Error {
    fn from(err: NodeError) -> Self {
        use async_graphql::ErrorExtensions;
        match &err {
            NodeError::Internal(source) => tracing::error!(error = ?source, "request failed"),
            NodeError::AuditUnavailable(source) => {
                tracing::error!(error = ?source, "refused: the audit log cannot be written")
            }
            _ => {}
        }
        async_graphql::Error::new(err.message()).extend_with(|_, ext| {
            ext.set("code", err.code().as_str());
            if let NodeError::Moved(to) = &err {
                ext.set("movedTo", to.to_string());
            }
            if let NodeError::Erased { at, rule } = &err {
                ext.set(
                    "erasedAt",
                    at.format(&time::format_description::well_known::Rfc3339)
                        .unwrap_or_default(),
                );
                if let Some(rule) = rule {
                    ext.set("erasureRule", rule.as_str());
                }
            }
        })
    }
}

pub type NodeResult<T> = Result<T, NodeError>;
