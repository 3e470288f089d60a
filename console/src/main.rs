//! `exchange-console`: loads the configuration and serves the caseworker
//! console until Ctrl-C or SIGTERM.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;
use exchange_console::Application;
use exchange_console::config::ConsoleConfig;

/// The caseworker console of the survivor data exchange.
#[derive(Parser)]
#[command(version)]
struct Cli {
    /// The configuration file (`deploy/console.toml` is the reference);
    /// `EXCHANGE_CONSOLE__…` variables override it.
    #[arg(long, env = "EXCHANGE_CONSOLE_CONFIG")]
    config: Option<PathBuf>,
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    let config = match ConsoleConfig::load(cli.config.as_deref()) {
        Ok(config) => config,
        Err(err) => {
            eprintln!("error: {err}");
            return ExitCode::from(2);
        }
    };
    exchange_service::telemetry::init(config.log_format);
    let app = match Application::build(config).await {
        Ok(app) => app,
        Err(err) => {
            eprintln!("error: {err:#}");
            return ExitCode::FAILURE;
        }
    };
    match app.address() {
        Ok(address) => tracing::info!(%address, "console listening"),
        Err(err) => tracing::warn!(%err, "console address unknown"),
    }
    match app
        .run_until(exchange_service::shutdown::shutdown_signal())
        .await
    {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {err}");
            ExitCode::FAILURE
        }
    }
}
