//! chat-redis against a real Redis (a single node, or the cluster of
//! `scripts/test`'s second run): the consumer-group runtime, pipelines over
//! slots, every Lua script and its key slots, the conversation summaries.

mod consumer_group;
mod pipelines;
mod scripts;
mod slots;
mod summary;
