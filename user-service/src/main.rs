use service_kit::config::ServiceConfig;
use user_service::{
    config::Config,
    startup::{Application, StartupError},
};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let config = Config::load();
    let _telemetry = service_kit::telemetry::init(config.log_format, "user-service");
    let app = match Application::build(config).await {
        Err(StartupError::Redis(e)) => {
            return Err(service_kit::config::exit_if_bad_redis_config(e).into());
        }
        built => built?,
    };
    app.run_until_stopped().await?;
    Ok(())
}
