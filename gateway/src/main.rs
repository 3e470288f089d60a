//! `exchange-gateway`: serves the federation gateway from a configuration
//! file (see `deploy/gateway.toml`) until SIGTERM or Ctrl-C.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;
use exchange_gateway::{Application, GatewayConfig, telemetry};

/// The federation gateway of the survivor data exchange: one GraphQL
/// endpoint that routes each operation to the agency nodes that own the
/// records, checks tokens with the nodes' own rules and audits every
/// federated operation.
#[derive(Parser, Debug)]
#[command(name = "exchange-gateway", version)]
struct Cli {
    /// Configuration file (TOML). Environment variables
    /// `EXCHANGE_GATEWAY__*` override it; see deploy/gateway.toml.
    #[arg(long, short, env = "EXCHANGE_GATEWAY_CONFIG")]
    config: Option<PathBuf>,
}

/// mimalloc rather than the C library's allocator: under concurrent
/// requests the system allocator took about an eighth of the gateway's CPU
/// (docs/benchmarks.md, Gateway). Built without transparent huge pages,
/// which would otherwise grow resident memory in 2 MB steps.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    let cli = Cli::parse();
    let config = match GatewayConfig::load(cli.config.as_deref()) {
        Ok(config) => config,
        Err(err) => {
            eprintln!("error: {err}");
            return ExitCode::from(2);
        }
    };
    // The runtime is sized by the configuration, so it is built after it.
    match config.runtime.build() {
        Ok(runtime) => runtime.block_on(serve(config)),
        Err(err) => {
            eprintln!("error: starting the runtime: {err}");
            ExitCode::FAILURE
        }
    }
}

async fn serve(config: GatewayConfig) -> ExitCode {
    let _telemetry = match telemetry::init(config.log_format, "exchange-gateway") {
        Ok(guard) => guard,
        Err(err) => {
            eprintln!("error: {err}");
            return ExitCode::from(2);
        }
    };
    let app = match Application::build(config).await {
        Ok(app) => app,
        Err(err) => {
            eprintln!("error: {err:#}");
            return ExitCode::from(2);
        }
    };
    match app.run(exchange_service::shutdown::shutdown_signal()).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {err:#}");
            ExitCode::FAILURE
        }
    }
}
