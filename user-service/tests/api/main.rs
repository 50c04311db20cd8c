//! user-service against a real PostgreSQL database, through its real gRPC API.

mod accounts;
mod blocks;
mod helpers;
mod links;
mod member_events;
mod migrations;
mod moderation;
mod rooms;
mod service_auth;
mod sessions;
