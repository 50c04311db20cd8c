//! What can fail a batch. Every error is transient for the batch as a
//! whole (it is retried) except [`BatchError::is_content`], which the worker
//! answers by splitting the batch.

#[derive(Debug, thiserror::Error)]
pub enum BatchError {
    #[error("Redis failed")]
    Redis(#[from] redis::RedisError),
    #[error("asking user-service")]
    Users(#[from] crate::members::Unavailable),
    #[error("history-service answered {code:?}", code = .0.code())]
    History(#[source] tonic::Status),
}

impl BatchError {
    pub fn history(status: tonic::Status) -> Self {
        Self::History(status)
    }

    /// The batch's own content was refused (history-service judged it
    /// invalid or too big): retrying the same batch fails the same way, so
    /// the worker bisects it instead.
    pub fn is_content(&self) -> bool {
        matches!(
            self,
            Self::History(status) if matches!(
                status.code(),
                tonic::Code::InvalidArgument
                    | tonic::Code::OutOfRange
                    | tonic::Code::FailedPrecondition
                    | tonic::Code::ResourceExhausted
            )
        )
    }
}
