//! Every metric a service records is declared up front, with its help text,
//! and starts at zero: a fresh service's `/metrics` lists everything the
//! dashboards and alerts query (the exporter renders only what was touched),
//! and `rate()` sees a counter's first increment. Each service's
//! `metrics.rs` holds its list; docs/operations.md explains them.

/// What one declared series is.
pub enum Kind {
    Counter,
    Gauge,
    Histogram,
}

/// A metric name, its kind and help text, and the label sets it is
/// recorded with (one empty set for an unlabelled metric).
pub struct Metric {
    pub name: &'static str,
    pub kind: Kind,
    pub help: &'static str,
    pub labels: Vec<Vec<(&'static str, &'static str)>>,
}

impl Metric {
    pub fn counter(name: &'static str, help: &'static str) -> Self {
        Self::new(name, Kind::Counter, help)
    }

    pub fn gauge(name: &'static str, help: &'static str) -> Self {
        Self::new(name, Kind::Gauge, help)
    }

    pub fn histogram(name: &'static str, help: &'static str) -> Self {
        Self::new(name, Kind::Histogram, help)
    }

    fn new(name: &'static str, kind: Kind, help: &'static str) -> Self {
        Self {
            name,
            kind,
            help,
            labels: vec![Vec::new()],
        }
    }

    /// Recorded with `label` set to each of `values`.
    pub fn by(mut self, label: &'static str, values: &[&'static str]) -> Self {
        self.labels = values.iter().map(|v| vec![(label, *v)]).collect();
        self
    }
}

/// Describes and zero-initializes every series of `catalog`.
pub fn register(catalog: &[Metric]) {
    // The recorder first: what is recorded before it exists is lost.
    let _ = crate::ops::metrics_handle();
    for m in catalog {
        match m.kind {
            Kind::Counter => metrics::describe_counter!(m.name, m.help),
            Kind::Gauge => metrics::describe_gauge!(m.name, m.help),
            Kind::Histogram => metrics::describe_histogram!(m.name, m.help),
        }
        for labels in &m.labels {
            match m.kind {
                Kind::Counter => metrics::counter!(m.name, labels).increment(0),
                Kind::Gauge => metrics::gauge!(m.name, labels).increment(0.0),
                // Registering the handle is enough: it renders empty buckets.
                Kind::Histogram => drop(metrics::histogram!(m.name, labels)),
            }
        }
    }
}

/// Metrics of the shared Redis connection, in every service.
pub fn redis() -> Metric {
    Metric::counter(
        "redis_connection_replaced_total",
        "Redis connections replaced after a command timed out (a silent link)",
    )
}

/// Calls refused by a gRPC listener's authentication.
pub fn grpc_auth(listeners: &[&'static str]) -> Metric {
    Metric::counter(
        "grpc_auth_refused_total",
        "gRPC calls refused for a missing or bad credential, by listener",
    )
    .by("listener", listeners)
}

/// Entries a consumer group took over from a dead consumer.
pub fn claimed(group: &'static str) -> Metric {
    Metric::counter(
        "stream_claimed_total",
        "stream entries taken over from a dead consumer, by group",
    )
    .by("group", &[group])
}

/// Consumers removed from a group because their process is gone.
pub fn consumers_removed(group: &'static str) -> Metric {
    Metric::counter(
        "stream_consumers_removed_total",
        "consumers with nothing pending removed from a group after GONE_AFTER idle, by group",
    )
    .by("group", &[group])
}

/// Pipelines sent again after Redis had lost their Lua scripts.
pub fn scripts() -> Metric {
    Metric::counter(
        "redis_scripts_reloaded_total",
        "pipelines sent again after Redis answered NOSCRIPT (it had lost its scripts: a restart)",
    )
}
