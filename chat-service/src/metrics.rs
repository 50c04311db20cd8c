//! Every metric chat-service records (see `service_kit::metrics_catalog`).

use service_kit::metrics_catalog::{self, Metric};

pub fn catalog() -> Vec<Metric> {
    vec![
        Metric::counter("chat_messages_total", "ingress entries handled, by result")
            .by("result", &["fresh", "replayed", "rejected"]),
        Metric::histogram(
            "chat_batch_seconds",
            "time to handle one batch of ingress entries",
        ),
        Metric::histogram("chat_batch_entries", "ingress entries per batch"),
        Metric::histogram(
            "chat_append_seconds",
            "one Append call to history-service (a batch's messages made durable)",
        ),
        Metric::counter(
            "chat_batch_failures_total",
            "batches that failed and stay pending",
        ),
        Metric::counter(
            "chat_batch_bisections_total",
            "batches split to isolate an entry refused for its content",
        ),
        Metric::counter(
            "chat_dead_letter_total",
            "entries moved to the dead-letter stream",
        ),
        Metric::counter(
            "chat_tombstones_total",
            "tombstones stored for dead-lettered messages",
        ),
        Metric::counter(
            "chat_readmitted_total",
            "refused sends let through because an earlier try stored them",
        ),
        Metric::counter(
            "chat_slow_mode_refused_total",
            "room messages refused by the room's slow mode",
        ),
        Metric::counter(
            "chat_unheard_deliveries_total",
            "deliveries published to a channel nobody listened on",
        ),
        Metric::counter(
            "chat_rerouted_messages_total",
            "messages of unheard deliveries queued offline and sent where their users are now",
        ),
        Metric::counter(
            "chat_connect_race_deliveries_total",
            "offline recipients who connected while their message was on its way, given it live",
        ),
        Metric::counter("chat_refused_total", "requests refused, by error code").by(
            "code",
            &[
                "bad_request",
                "forbidden",
                "not_found",
                "conflict",
                "failed",
            ],
        ),
        Metric::counter(
            "chat_user_service_calls_total",
            "calls to user-service on cache misses, by RPC",
        )
        .by("rpc", &["get_user", "get_users", "list_room_members"]),
        metrics_catalog::claimed(crate::worker::GROUP),
        metrics_catalog::consumers_removed(crate::worker::GROUP),
        metrics_catalog::redis(),
        metrics_catalog::scripts(),
    ]
}
