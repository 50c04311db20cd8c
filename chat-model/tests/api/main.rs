//! chat-model's formats and documents: recorded payloads of every internal
//! format in each version this build reads, and the protocol page against
//! the protocol's types.

mod formats;
mod protocol_doc;
