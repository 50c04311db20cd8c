//! Builds the worker (Redis, upstream channels, ops listener) and runs it until
//! shutdown: the current batch finishes, nothing new is read.

use std::{sync::Arc, time::Duration};

use chat_redis::{
    connection,
    consumer::{self, Consumer, Group},
    keys::Keys,
    presence::Lookup,
    publish::Publisher,
    summary::Summaries,
};
use proto::{
    history::internal::v1::history_internal_client::HistoryInternalClient,
    user::v1::user_service_client::UserServiceClient,
};
use service_kit::{
    grpc::internal_channel,
    ops::{self, Readiness},
    service::{Listeners, Service, ServiceArgs, StartupError},
    shutdown::{Shutdown, shutdown_signal},
};

use crate::{
    blocklists::BlockLists,
    config::Config,
    members::Members,
    pipeline::{
        BatchProcessor, admit::Admit, deliver::Deliver, persist::Persist, sequence::Sequence,
        targets::Targets,
    },
    sequencer::Sequencer,
    worker::{GROUP, Worker},
};

/// How much longer a client_id's claim lives than its dedup record.
const CLAIM_MARGIN_SECS: u64 = 60;

pub struct Application {
    listeners: Listeners,
    /// One consumer and worker per ingress partition.
    partitions: Vec<(Consumer, Worker)>,
    redis: chat_redis::connection::Redis,
    stall_timeout_ms: i64,
    ready_file: Option<std::path::PathBuf>,
}

impl Service for Application {
    type Config = Config;
    const NAME: &'static str = "chat-service";

    fn args(config: &Config) -> &ServiceArgs {
        &config.service
    }

    async fn build(config: Config) -> Result<Self, StartupError> {
        Application::build(config).await
    }

    async fn run_until(
        self,
        signal: impl std::future::Future<Output = ()> + Send + 'static,
    ) -> Result<(), StartupError> {
        Application::run_until(self, signal).await
    }
}

impl Application {
    pub async fn build(config: Config) -> Result<Self, StartupError> {
        service_kit::metrics_catalog::register(&crate::metrics::catalog());
        let conn =
            connection::connect_with_retry(&config.redis.endpoints(), Duration::from_secs(30))
                .await?;
        let keys = config.redis.keys();
        let token = config.service_token.get().expose();
        let users = UserServiceClient::new(internal_channel(&config.user_service_url, token)?);
        let history =
            HistoryInternalClient::new(internal_channel(&config.history_service_url, token)?)
                .max_encoding_message_size(config.grpc_max_message_bytes);
        let presence = Lookup::new(keys.clone(), config.gateway_ttl_ms);
        let processor = BatchProcessor {
            conn: conn.clone(),
            admit: Admit {
                keys: keys.clone(),
                members: Members::new(
                    users.clone(),
                    Duration::from_millis(config.membership_ttl_ms),
                ),
                blocks: BlockLists::new(users),
                targets: Targets {
                    history: history.clone(),
                    edit_window_ms: (config.edit_window_secs > 0)
                        .then(|| config.edit_window_secs as i64 * 1000),
                },
                claim_ttl_secs: config.dedup_ttl_secs + CLAIM_MARGIN_SECS,
            },
            sequence: Sequence {
                keys: keys.clone(),
                sequencer: Sequencer::new(keys.clone(), config.dedup_ttl_secs),
                partitions: config.ingress_partitions,
            },
            presence: presence.clone(),
            persist: Persist {
                keys: keys.clone(),
                summaries: Summaries::new(keys.clone()),
                history: history.clone(),
                max_message_bytes: config.grpc_max_message_bytes,
            },
            deliver: Deliver {
                keys: keys.clone(),
                publisher: Publisher::new(keys.clone()),
                history,
                presence,
                summaries: Summaries::new(keys.clone()),
                dm_list_limit: config.dm_list_limit,
            },
            group: ingress_group(&config, &keys, 0),
        };
        // Every worker reads every partition, each on a blocking connection
        // of its own (a blocking read would stall a shared one).
        let mut partitions = Vec::with_capacity(config.ingress_partitions);
        for partition in 0..config.ingress_partitions {
            let group = ingress_group(&config, &keys, partition);
            let reader = connection::connect(&config.redis.endpoints()).await?;
            let worker = Worker {
                processor: BatchProcessor {
                    group: group.clone(),
                    ..processor.clone()
                },
                linger: Duration::from_millis(config.batch_linger_ms),
                narrow_linger: Duration::from_millis(config.narrow_batch_linger_ms),
                wide: false,
                progress: Arc::default(),
            };
            partitions.push((Consumer::new(group, reader), worker));
        }
        let listeners =
            Listeners::bind("chat-service", &[("ops", config.service.ops_addr)]).await?;
        Ok(Self {
            listeners,
            partitions,
            redis: conn,
            stall_timeout_ms: config.stall_timeout_ms as i64,
            ready_file: config.service.ready_file.clone(),
        })
    }

    pub fn ops_port(&self) -> u16 {
        self.listeners.port("ops")
    }

    pub async fn run_until_stopped(self) -> Result<(), StartupError> {
        self.run_until(shutdown_signal()).await
    }

    pub async fn run_until(
        self,
        signal: impl std::future::Future<Output = ()> + Send + 'static,
    ) -> Result<(), StartupError> {
        let shutdown = Shutdown::new(signal);
        tracing::info!(
            consumer = %self.partitions[0].0.group.consumer,
            partitions = self.partitions.len(),
            "chat-service worker starting"
        );
        let mut listeners = self.listeners;
        let _ready = listeners.announce(self.ready_file.as_deref())?;
        let progress: Vec<_> = self
            .partitions
            .iter()
            .map(|(_, w)| w.progress.clone())
            .collect();
        let workers: Vec<_> = self
            .partitions
            .into_iter()
            .map(|(consumer, worker)| {
                tokio::spawn(consumer::run(consumer, worker, shutdown.clone()))
            })
            .collect();
        let redis_ready = chat_redis::connection::redis_readiness(self.redis);
        let stall = self.stall_timeout_ms;
        // Ready when Redis answers and the worker is not stuck on its work.
        let ready: ops::ReadyCheck = Arc::new(move || {
            let redis_ready = redis_ready.clone();
            let progress = progress.clone();
            Box::pin(async move {
                if let Some(ms) = progress.iter().find_map(|p| p.stalled_for(stall)) {
                    return Readiness::Unavailable(format!(
                        "no progress on pending entries for {} s",
                        ms / 1000
                    ));
                }
                redis_ready().await
            })
        });
        let served = ops::serve(listeners.take("ops"), ops::router(ready), shutdown.wait()).await;
        for worker in workers {
            let _ = worker.await;
        }
        served.map_err(|e| StartupError::serve("ops", e))?;
        tracing::info!("chat-service stopped");
        Ok(())
    }
}

/// Ingress partition `partition`'s consumer group, as this worker works it.
fn ingress_group(config: &Config, keys: &Keys, partition: usize) -> Group {
    Group {
        stream: keys.ingress(partition),
        group: GROUP.to_owned(),
        consumer: config.consumer_name.clone(),
        batch: config.batch_size as usize,
        claim_idle: Duration::from_millis(config.claim_idle_ms),
        max_deliveries: Some(config.max_deliveries as usize),
        dead_letter: keys.dead_letter(partition),
        field: chat_model::message::INGRESS_FIELD,
    }
}
