//! chat-service workers against real Redis, with real user-service and
//! history-service upstreams started in-process. Entries are put on the
//! ingress stream directly, as a gateway would, and deliveries are read from
//! a gateway's pub/sub channel.

mod delivery;
mod events;
mod helpers;
mod linger;
mod members;
mod recovery;
mod relay;
mod retries;
mod users;
mod wedge;
