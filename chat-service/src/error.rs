//! What can fail a batch. Every error is transient for the batch as a
//! whole (it is retried) except [`BatchError::is_content`], which the worker
//! answers by splitting the batch.

#[derive(Debug, thiserror::Error)]
pub enum BatchError {
    #[error("redis: {0}")]
    Redis(#[from] redis::RedisError),
    #[error("user-service: {0}")]
    Users(#[from] crate::members::Unavailable),
    #[error("history-service: {code:?}: {message}")]
    History { code: tonic::Code, message: String },
}

impl BatchError {
    pub fn history(status: tonic::Status) -> Self {
        Self::History {
            code: status.code(),
            message: status.message().to_owned(),
        }
    }

    /// The batch's own content was refused (history-service judged it
    /// invalid or too big): retrying the same batch fails the same way, so
    /// the worker bisects it instead.
    pub fn is_content(&self) -> bool {
        matches!(
            self,
            Self::History {
                code: tonic::Code::InvalidArgument
                    | tonic::Code::OutOfRange
                    | tonic::Code::FailedPrecondition
                    | tonic::Code::ResourceExhausted,
                ..
            }
        )
    }
}
