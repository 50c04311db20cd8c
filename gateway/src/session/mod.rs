//! The session floor: one client's session, whatever transport carries it
//! (`ws/` for WebSockets, `stream/` for a server-sent event stream with
//! POSTed frames). Admission (`admit.rs`), the protocol's client frames
//! (`inbound.rs`), the session's life and frame handling (`run.rs`), its
//! token (`auth.rs`), close codes (`close.rs`) and error codes (`error.rs`),
//! and what every session shares (`context.rs`). A transport brings a source
//! of client frames and a writer task for the outbox.

pub mod admit;
pub mod auth;
pub mod close;
pub mod context;
pub mod error;
pub mod inbound;
pub mod run;

pub use self::context::Sessions;
