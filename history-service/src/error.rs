//! history-service errors, mapped once to gRPC status codes.

use tonic::Status;

#[derive(Debug, thiserror::Error)]
pub enum HistoryError {
    #[error("{0}")]
    InvalidArgument(String),
    #[error("{0}")]
    PermissionDenied(String),
    #[error("user-service: {}", .0.message())]
    Upstream(tonic::Status),
    #[error("redis: {0}")]
    Redis(#[from] redis::RedisError),
    #[error("archive unavailable")]
    Archive(#[from] crate::mongo::ArchiveError),
    #[error("corrupt stored message: {0}")]
    Corrupt(#[from] serde_json::Error),
}

impl From<HistoryError> for Status {
    fn from(e: HistoryError) -> Self {
        let msg = e.to_string();
        match e {
            HistoryError::InvalidArgument(_) => Status::invalid_argument(msg),
            HistoryError::PermissionDenied(_) => Status::permission_denied(msg),
            HistoryError::Upstream(status) => {
                tracing::warn!(error = %msg, "membership check failed");
                match status.code() {
                    tonic::Code::InvalidArgument => Status::invalid_argument(status.message()),
                    _ => Status::unavailable("membership check unavailable"),
                }
            }
            HistoryError::Redis(_) | HistoryError::Archive(_) => {
                tracing::warn!(error = %msg, "storage unavailable");
                Status::unavailable(msg)
            }
            HistoryError::Corrupt(_) => {
                tracing::error!(error = %msg, "corrupt data");
                Status::internal("internal error")
            }
        }
    }
}
