//! common's integration tests: the consumer-group runtime against a real
//! Redis, and the protocol page against the protocol types.

mod consumer_group;
mod formats;
mod pipelines;
mod protocol_doc;
mod scripts;
mod slots;
mod summary;
