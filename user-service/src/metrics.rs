//! Every metric user-service records (see `service_kit::metrics_catalog`).

use service_kit::metrics_catalog::{self, Metric};

pub fn catalog() -> Vec<Metric> {
    vec![
        Metric::counter(
            "user_hash_refused_total",
            "password hashes refused because HASH_QUEUE was full (a login burst)",
        ),
        metrics_catalog::grpc_auth(&["internal"]),
        metrics_catalog::redis(),
    ]
}
