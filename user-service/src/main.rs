use common::config::ServiceConfig;
use user_service::{config::Config, startup::Application};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let config = Config::load();
    let _telemetry = common::telemetry::init(config.log_format, "user-service");
    let app = Application::build(config).await?;
    app.run_until_stopped().await?;
    Ok(())
}
