//! history-service against real Redis and a real MongoDB-wire server, through
//! its real gRPC API.

mod archive;
mod events;
mod helpers;
mod history;
mod layers;
mod offline;
mod public_auth;
mod states;
mod validation;
