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
        metrics_catalog::grpc_auth(&["internal"]),
        metrics_catalog::redis(),
    ]
}
