//! user-service errors, mapped once to gRPC status codes.

use tonic::Status;

#[derive(Debug, thiserror::Error)]
pub enum UserError {
    #[error("{0}")]
    InvalidArgument(String),
    #[error("invalid username or password")]
    BadCredentials,
    /// A refresh token or session that is not (or no longer) valid.
    #[error("{0}")]
    Unauthenticated(String),
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    AlreadyExists(String),
    /// The caller's role does not allow it (docs/protocol.md, permissions).
    #[error("{0}")]
    PermissionDenied(String),
    #[error("{0}")]
    FailedPrecondition(String),
    #[error("database unavailable: {0}")]
    Unavailable(String),
    /// Too much work queued (password hashing); the caller should retry.
    #[error("{0}")]
    Busy(String),
    #[error("internal error: {0}")]
    Internal(String),
}

impl From<sqlx::Error> for UserError {
    fn from(e: sqlx::Error) -> Self {
        match e {
            sqlx::Error::PoolTimedOut | sqlx::Error::Io(_) | sqlx::Error::PoolClosed => {
                Self::Unavailable(e.to_string())
            }
            other => Self::Internal(other.to_string()),
        }
    }
}

impl From<UserError> for Status {
    fn from(e: UserError) -> Self {
        let msg = e.to_string();
        match e {
            UserError::InvalidArgument(_) => Status::invalid_argument(msg),
            UserError::BadCredentials | UserError::Unauthenticated(_) => {
                Status::unauthenticated(msg)
            }
            UserError::NotFound(_) => Status::not_found(msg),
            UserError::AlreadyExists(_) => Status::already_exists(msg),
            UserError::PermissionDenied(_) => Status::permission_denied(msg),
            UserError::FailedPrecondition(_) => Status::failed_precondition(msg),
            UserError::Unavailable(_) => Status::unavailable(msg),
            UserError::Busy(_) => Status::resource_exhausted(msg),
            UserError::Internal(_) => {
                tracing::error!(error = %msg, "internal error");
                Status::internal("internal error")
            }
        }
    }
}

/// Whether a database error is a unique-constraint violation (SQLSTATE 23505).
pub fn is_unique_violation(e: &sqlx::Error) -> bool {
    matches!(e, sqlx::Error::Database(db) if db.code().as_deref() == Some("23505"))
}
