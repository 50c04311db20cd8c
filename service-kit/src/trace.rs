//! One trace per message, across the services, in W3C `traceparent` form:
//!
//! 1. the gateway's `send` span; its traceparent rides in the ingress entry;
//! 2. chat-service's `chat.message` span, a child of it; its traceparent
//!    rides in the `Append` call's gRPC metadata (history-service's
//!    `history.append` span) and in the delivery frame;
//! 3. the delivering gateway's `gateway.deliver` span.
//!
//! When span export is off (no OTEL_EXPORTER_OTLP_ENDPOINT) every function
//! here returns at once and no traceparent is written anywhere.

use std::{
    collections::HashMap,
    sync::atomic::{AtomicBool, Ordering},
};

use opentelemetry::propagation::TextMapPropagator;
use opentelemetry_sdk::propagation::TraceContextPropagator;
use tracing::Span;
use tracing_opentelemetry::OpenTelemetrySpanExt;

/// The gRPC metadata key and JSON field name of the context.
pub const TRACEPARENT: &str = "traceparent";

static ENABLED: AtomicBool = AtomicBool::new(false);

pub(crate) fn enable() {
    ENABLED.store(true, Ordering::Relaxed);
}

pub fn enabled() -> bool {
    ENABLED.load(Ordering::Relaxed)
}

/// `span`'s context as a traceparent (None when tracing is off).
pub fn traceparent(span: &Span) -> Option<String> {
    if !enabled() {
        return None;
    }
    let mut carrier = HashMap::new();
    TraceContextPropagator::new().inject_context(&span.context(), &mut carrier);
    carrier.remove(TRACEPARENT)
}

/// Makes `span` a child of the context in `traceparent`, if any.
pub fn set_parent(span: &Span, traceparent: Option<&str>) {
    let Some(tp) = traceparent.filter(|_| enabled()) else {
        return;
    };
    let carrier = HashMap::from([(TRACEPARENT.to_owned(), tp.to_owned())]);
    let cx = TraceContextPropagator::new().extract(&carrier);
    let _ = span.set_parent(cx);
}

/// Puts `traceparent` into a gRPC request's metadata.
pub fn to_grpc<T>(request: &mut tonic::Request<T>, traceparent: Option<&str>) {
    if let Some(value) = traceparent.and_then(|tp| tp.parse().ok()) {
        request.metadata_mut().insert(TRACEPARENT, value);
    }
}

/// The traceparent a gRPC request carries.
pub fn from_grpc(metadata: &tonic::metadata::MetadataMap) -> Option<String> {
    if !enabled() {
        return None;
    }
    metadata
        .get(TRACEPARENT)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
}
