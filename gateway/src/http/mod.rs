//! What every HTTP route shares, whether it is the REST API (`api/`) or the
//! WebSocket upgrade (`ws/`): the error answer, the extractors (the caller,
//! the client address, JSON bodies and queries), and the access log.

pub mod access_log;
pub mod error;
pub mod extract;
