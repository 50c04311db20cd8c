//! Domain errors as `error` frames: the protocol code of each kind, mapped
//! here once.

use chat_model::protocol::ErrorCode;

use crate::domain::{Error, Kind};

/// The protocol's code for `error`. A conflict from an upstream (there is
/// none on the paths a session calls today) reads as `bad_request`: the
/// protocol's `conflict` means a client_id that names another request.
pub fn code(error: &Error) -> ErrorCode {
    match error.kind() {
        Kind::BadRequest | Kind::Conflict => ErrorCode::BadRequest,
        Kind::Unauthorized => ErrorCode::Unauthorized,
        Kind::Forbidden => ErrorCode::Forbidden,
        Kind::NotFound => ErrorCode::NotFound,
        Kind::TooLarge => ErrorCode::TooLarge,
        Kind::RateLimited => ErrorCode::RateLimited,
        Kind::Unavailable => ErrorCode::Unavailable,
        Kind::Internal => ErrorCode::Internal,
    }
}
