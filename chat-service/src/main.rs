use chat_service::{config::Config, startup::Application};
use common::config::ServiceConfig;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let config = Config::load();
    let _telemetry = common::telemetry::init(config.log_format, "chat-service");
    let app = Application::build(config).await?;
    app.run_until_stopped().await?;
    Ok(())
}
