//! Every metric the gateway records (see `service_kit::metrics_catalog`).

use service_kit::metrics_catalog::Metric;

use chat_model::protocol::ErrorCode;

pub fn catalog() -> Vec<Metric> {
    let codes: Vec<&'static str> = ErrorCode::ALL.iter().map(|c| c.as_str()).collect();
    vec![
        Metric::gauge(
            "gateway_connections",
            "WebSocket connections open on this gateway",
        ),
        Metric::counter("gateway_sessions_total", "WebSocket sessions opened"),
        Metric::counter(
            "gateway_rejected_connections_total",
            "upgrades refused because the gateway holds MAX_CONNECTIONS sockets",
        ),
        Metric::counter(
            "gateway_limited_total",
            "HTTP requests refused with 429 by an abuse limit",
        )
        .by(
            "limit",
            &[
                "failed logins",
                "registrations from this address",
                "rooms created",
                "tickets",
                "export pages",
                "account messages",
            ],
        ),
        Metric::counter("gateway_streams_total", "streams (GET /api/stream) opened"),
        Metric::counter(
            "gateway_polls_opened_total",
            "long-poll connections (POST /api/poll) opened",
        ),
        Metric::counter(
            "gateway_stream_frames_forwarded_total",
            "POSTed frames published to the gateway that holds their stream",
        ),
        Metric::counter(
            "gateway_revoked_sockets_total",
            "sockets closed with 4001 because their session was signed out",
        ),
        Metric::counter(
            "gateway_expired_sockets_total",
            "sockets closed with 4002: their token expired without an auth frame",
        ),
        Metric::counter(
            "gateway_erasures_incomplete_total",
            "deleted accounts whose Redis state could not be erased",
        ),
        Metric::counter("gateway_ingress_total", "frames put on the ingress stream"),
        Metric::histogram(
            "gateway_ingress_pipeline_entries",
            "ingress entries written per round trip to Redis",
        ),
        Metric::gauge(
            "gateway_ingress_backlog",
            "length of the ingress stream, as last polled",
        ),
        Metric::gauge(
            "gateway_ingress_wait_seconds",
            "how long the oldest ingress entry no worker has read has waited, as last polled",
        ),
        Metric::counter(
            "gateway_backpressure_total",
            "sends refused (and typing notices dropped) over INGRESS_BACKLOG_LIMIT or INGRESS_MAX_WAIT_MS",
        ),
        Metric::counter(
            "gateway_read_markers_moved_total",
            "read markers moved forward by a read frame or PUT .../read",
        ),
        Metric::counter("gateway_error_frames_total", "error frames sent to clients")
            .by("code", &codes),
        Metric::counter(
            "gateway_deliveries_total",
            "frames handed to sockets from the delivery channel",
        ),
        Metric::counter(
            "gateway_slow_consumers_total",
            "sockets whose outbound queue overflowed",
        ),
        Metric::counter(
            "gateway_closed_total",
            "sockets closed by the server, by reason",
        )
        .by("reason", &["slow_consumer"]),
        Metric::counter(
            "gateway_pubsub_reconnects_total",
            "times the delivery subscription was lost and re-established",
        ),
        Metric::counter(
            "gateway_delivery_gaps_total",
            "gaps in the numbered deliveries",
        ),
        Metric::counter(
            "gateway_resync_frames_total",
            "resync frames sent to sockets",
        ),
        Metric::counter(
            "gateway_bad_deliveries_total",
            "delivery payloads the gateway could not read",
        ),
        Metric::counter(
            "gateway_presence_repairs_total",
            "presence hashes found wrong and rewritten",
        ),
        Metric::counter(
            "gateway_presence_swept_total",
            "silent gateways whose presence this gateway swept",
        ),
        Metric::histogram(
            "gateway_send_to_sent_seconds",
            "from a send read off a socket to its sent ack queued for that socket",
        ),
        Metric::histogram(
            "gateway_send_to_delivered_seconds",
            "from a send read off a socket (at its gateway) to the message queued for its recipients' sockets (at theirs)",
        ),
        service_kit::metrics_catalog::redis(),
    ]
}
