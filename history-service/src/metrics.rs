//! Every metric history-service records (see `service_kit::metrics_catalog`).

use service_kit::metrics_catalog::{self, Metric};

pub fn catalog() -> Vec<Metric> {
    vec![
        Metric::counter(
            "history_appended_total",
            "messages appended (recent window, backlog, offline queues)",
        ),
        Metric::counter(
            "history_enqueued_total",
            "messages put into offline queues only",
        ),
        Metric::counter("history_archived_total", "messages inserted into MongoDB"),
        Metric::counter(
            "history_archive_duplicates_total",
            "archive inserts MongoDB already had",
        ),
        Metric::counter(
            "history_archive_conflicts_total",
            "archive entries whose seq another message holds (dead-lettered)",
        ),
        Metric::counter(
            "history_archive_corrupt_total",
            "unreadable archive entries (dead-lettered)",
        ),
        Metric::counter(
            "history_archive_failures_total",
            "archive batches that failed and are retried",
        ),
        Metric::gauge(
            "history_archive_backlog",
            "entries waiting in the archive stream",
        ),
        Metric::gauge(
            "history_archive_lag_seconds",
            "age of the oldest entry of the last archive batch",
        ),
        Metric::histogram("history_archive_batch_entries", "archive entries per batch"),
        Metric::histogram(
            "history_archive_age_seconds",
            "how long each message waited in the backlog before MongoDB had it",
        ),
        metrics_catalog::claimed(crate::archive::GROUP),
        metrics_catalog::consumers_removed(crate::archive::GROUP),
        metrics_catalog::grpc_auth(&["public", "internal"]),
        metrics_catalog::redis(),
        metrics_catalog::scripts(),
    ]
}
