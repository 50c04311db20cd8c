//! Every metric user-service records (see `service_kit::metrics_catalog`).

use service_kit::metrics_catalog::{self, Metric};

pub fn catalog() -> Vec<Metric> {
    vec![
        Metric::counter(
            "user_hash_refused_total",
            "password hashes refused because HASH_QUEUE was full (a login burst)",
        ),
        Metric::counter(
            "user_sessions_revoked_total",
            "sessions revoked and announced (sign-outs, password changes, deletions)",
        ),
        Metric::counter(
            "user_refresh_reuse_total",
            "spent refresh tokens presented again: their sessions were revoked",
        ),
        Metric::counter(
            "user_events_relayed_total",
            "membership events written to their rooms' ingress streams",
        ),
        Metric::counter(
            "user_event_relay_failures_total",
            "relay passes that failed (PostgreSQL or Redis down): their events wait in the outbox",
        ),
        Metric::gauge(
            "user_event_outbox_rows",
            "membership events waiting in the outbox at the relay's last pass",
        ),
        metrics_catalog::grpc_auth(&["internal"]),
        metrics_catalog::redis(),
    ]
}
