//! The audit log's own failures, as its callers see them.

/// Why an entry (or a change with its entry) was not made durable.
#[derive(Debug, thiserror::Error)]
pub enum AuditError {
    /// The storage refused or did not confirm the write in time (disk full,
    /// I/O error, a locked or read-only database, PostgreSQL restarted or
    /// its backend terminated). The caller answers `AUDIT_UNAVAILABLE` and
    /// discloses nothing.
    #[error("the audit log cannot be written")]
    Unavailable(#[source] anyhow::Error),
    /// Anything else: a fault of the code, never of the request.
    #[error("internal error")]
    Internal(#[source] anyhow::Error),
}

impl AuditError {
    /// The underlying cause, for the log (never shown to a client).
    pub fn into_source(self) -> anyhow::Error {
        match self {
            Self::Unavailable(source) | Self::Internal(source) => source,
        }
    }
}
