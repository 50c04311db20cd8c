//! chat-service: workers of the ingress stream's consumer group. For each
//! message: dedup on (sender, client_id), per-conversation seq, authorization,
//! persistence through history-service, delivery to the recipients' gateways,
//! offline marking, the sender's `sent` ack, and XACK last.

pub mod blocklists;
pub mod chunks;
pub mod config;
pub mod error;
pub mod members;
pub mod metrics;
pub mod pipeline;
pub mod progress;
pub mod sequencer;
pub mod startup;
pub mod worker;
