//! Tracing setup shared by all binaries: logs (`LOG_FORMAT=json|pretty`,
//! filtered by `RUST_LOG`), and, when `OTEL_EXPORTER_OTLP_ENDPOINT` is set,
//! spans exported over OTLP/gRPC (see [`crate::trace`] for how one trace
//! follows a message across the services). Without the endpoint no exporter
//! or span layer exists at all, so tracing off costs nothing.

use opentelemetry::trace::TracerProvider as _;
use opentelemetry_sdk::{Resource, trace::SdkTracerProvider};
use tracing_subscriber::{EnvFilter, Layer, filter::LevelFilter, fmt, prelude::*};

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    Json,
    #[default]
    Pretty,
}

/// The standard variable that switches span export on.
pub const OTLP_ENDPOINT: &str = "OTEL_EXPORTER_OTLP_ENDPOINT";

/// Keeps the span exporter alive; dropping it flushes what is buffered.
pub struct Telemetry(Option<SdkTracerProvider>);

impl Drop for Telemetry {
    fn drop(&mut self) {
        if let Some(provider) = self.0.take() {
            let _ = provider.shutdown();
        }
    }
}

/// Installs the global subscriber for `service`. Safe to call more than once
/// (tests start several services in one process); later calls do nothing.
/// Must run inside the Tokio runtime when span export is on.
pub fn init(format: LogFormat, service: &'static str) -> Telemetry {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let logs = match format {
        LogFormat::Json => fmt::layer()
            .json()
            .with_current_span(false)
            .with_filter(filter)
            .boxed(),
        LogFormat::Pretty => fmt::layer().compact().with_filter(filter).boxed(),
    };
    let provider = std::env::var_os(OTLP_ENDPOINT)
        .filter(|v| !v.is_empty())
        .and_then(|_| exporter(service));
    // Spans are exported whatever RUST_LOG says about logs.
    let spans = provider.as_ref().map(|p| {
        tracing_opentelemetry::layer()
            .with_tracer(p.tracer(service))
            .with_filter(LevelFilter::INFO)
    });
    let installed = tracing_subscriber::registry()
        .with(logs)
        .with(spans)
        .try_init()
        .is_ok();
    if installed && provider.is_some() {
        opentelemetry::global::set_text_map_propagator(
            opentelemetry_sdk::propagation::TraceContextPropagator::new(),
        );
        crate::trace::enable();
    }
    Telemetry(provider)
}

/// An OTLP/gRPC span exporter to OTEL_EXPORTER_OTLP_ENDPOINT, batching
/// (OTEL_BSP_* settings apply).
fn exporter(service: &'static str) -> Option<SdkTracerProvider> {
    let exporter = opentelemetry_otlp::SpanExporter::builder()
        .with_tonic()
        .build()
        .map_err(|e| eprintln!("{OTLP_ENDPOINT}: cannot build the span exporter: {e}"))
        .ok()?;
    Some(
        SdkTracerProvider::builder()
            .with_resource(Resource::builder().with_service_name(service).build())
            .with_batch_exporter(exporter)
            .build(),
    )
}
