//! The skeleton every service shares (zero-to-production's `startup.rs`):
//! `build(config)` binds every listener (port 0 in tests, read back with
//! [`Listeners::port`]) and connects what it needs, `run_until` serves
//! until a signal, and a binary's `main` is [`main`]. The flags every
//! service has are [`ServiceArgs`]; the ways a start can fail are
//! [`StartupError`].

use std::{
    error::Error,
    future::Future,
    net::SocketAddr,
    path::{Path, PathBuf},
    process::ExitCode,
};

use tokio::net::TcpListener;

use crate::{
    config::{ServiceConfig, exit_if_bad_redis_config},
    error::Chain,
    ops::{self, BindError},
    ready::ReadyFile,
    shutdown::shutdown_signal,
    telemetry::{self, LogFormat},
};

/// The settings every service has, flattened into its configuration.
#[derive(clap::Args, Debug, Clone)]
pub struct ServiceArgs {
    /// HTTP address of /healthz, /readyz and /metrics; keep it off load
    /// balancers and Ingresses.
    #[arg(long, env = "OPS_ADDR", default_value = "0.0.0.0:9090")]
    pub ops_addr: SocketAddr,
    /// Where to write, once every listener is bound, a JSON file naming the
    /// bound addresses (removed at exit); for launchers and test harnesses.
    #[arg(long, env = "READY_FILE")]
    pub ready_file: Option<PathBuf>,
    #[arg(long, env = "LOG_FORMAT", value_enum, default_value = "pretty")]
    pub log_format: LogFormat,
}

/// Why a service could not start, or stopped serving.
#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    #[error("cannot write the ready file")]
    ReadyFile(#[source] std::io::Error),
    #[error("cannot connect to Redis")]
    Redis(#[from] redis::RedisError),
    #[error(transparent)]
    Bind(#[from] BindError),
    #[error("bad upstream")]
    Upstream(#[from] crate::grpc::ChannelError),
    #[error("gRPC reflection")]
    Reflection(#[from] tonic_reflection::server::Error),
    /// A store of the service's own (PostgreSQL, MongoDB, migrations).
    #[error("{what}")]
    Storage {
        what: &'static str,
        #[source]
        source: Box<dyn Error + Send + Sync>,
    },
    #[error("the {what} server failed")]
    Serve {
        what: &'static str,
        #[source]
        source: Box<dyn Error + Send + Sync>,
    },
}

impl StartupError {
    pub fn storage(what: &'static str, source: impl Error + Send + Sync + 'static) -> Self {
        Self::Storage {
            what,
            source: Box::new(source),
        }
    }

    pub fn serve(what: &'static str, source: impl Error + Send + Sync + 'static) -> Self {
        Self::Serve {
            what,
            source: Box::new(source),
        }
    }
}

/// A service's named listeners, bound when it is built.
pub struct Listeners {
    service: &'static str,
    bound: Vec<(&'static str, Option<TcpListener>, Option<SocketAddr>)>,
}

impl Listeners {
    /// Binds every `(name, address)`; port 0 picks a free port.
    pub async fn bind(
        service: &'static str,
        addresses: &[(&'static str, SocketAddr)],
    ) -> Result<Self, StartupError> {
        let mut bound = Vec::with_capacity(addresses.len());
        for (name, addr) in addresses {
            let listener = ops::bind(*addr).await?;
            let local = listener.local_addr().ok();
            bound.push((*name, Some(listener), local));
        }
        Ok(Self { service, bound })
    }

    /// The port listener `name` is bound to (0 if there is none).
    pub fn port(&self, name: &str) -> u16 {
        self.bound
            .iter()
            .find(|(n, _, _)| *n == name)
            .and_then(|(_, _, a)| a.map(|a| a.port()))
            .unwrap_or(0)
    }

    /// Hands listener `name` to its server, once.
    pub fn take(&mut self, name: &str) -> TcpListener {
        self.bound
            .iter_mut()
            .find(|(n, _, _)| *n == name)
            .and_then(|(_, l, _)| l.take())
            .unwrap_or_else(|| panic!("no listener {name}, or it was taken"))
    }

    /// Logs the bound addresses and writes the ready file (removed when the
    /// returned guard drops: keep it until the service stops).
    pub fn announce(&self, ready_file: Option<&Path>) -> Result<ReadyFile, StartupError> {
        let addresses: Vec<(&str, std::io::Result<SocketAddr>)> = self
            .bound
            .iter()
            .map(|(name, _, addr)| {
                (
                    *name,
                    addr.ok_or_else(|| std::io::Error::other("not bound")),
                )
            })
            .collect();
        let shown: Vec<String> = self
            .bound
            .iter()
            .map(|(name, _, addr)| {
                format!("{name}={}", addr.map(|a| a.to_string()).unwrap_or_default())
            })
            .collect();
        tracing::info!(service = self.service, listeners = %shown.join(" "), "listening");
        ReadyFile::write(ready_file, self.service, &addresses).map_err(StartupError::ReadyFile)
    }
}

/// A service binary: what [`main`] builds and runs.
pub trait Service: Sized + Send {
    type Config: ServiceConfig + Send;
    /// Its name, in logs, spans and the ready file.
    const NAME: &'static str;

    fn args(config: &Self::Config) -> &ServiceArgs;

    fn build(config: Self::Config) -> impl Future<Output = Result<Self, StartupError>> + Send;

    /// Serves until `signal` completes, then stops within its grace period.
    fn run_until(
        self,
        signal: impl Future<Output = ()> + Send + 'static,
    ) -> impl Future<Output = Result<(), StartupError>> + Send;

    /// Serves until Ctrl-C or SIGTERM.
    fn run_until_stopped(self) -> impl Future<Output = Result<(), StartupError>> + Send {
        self.run_until(shutdown_signal())
    }
}

/// A service's `main`: its settings (one line naming a bad one, exit 2),
/// telemetry, build, serve; a failure prints its whole cause and exits 1.
pub async fn main<S: Service>() -> ExitCode {
    let config = S::Config::load();
    let _telemetry = telemetry::init(S::args(&config).log_format, S::NAME);
    let run = async {
        let app = match S::build(config).await {
            Err(StartupError::Redis(e)) => Err(StartupError::Redis(exit_if_bad_redis_config(e))),
            built => built,
        }?;
        app.run_until_stopped().await
    };
    match run.await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!(error = %Chain(&e), "{} stopped", S::NAME);
            eprintln!("error: {}", Chain(&e));
            ExitCode::FAILURE
        }
    }
}
