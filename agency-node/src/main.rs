//! The `agency-node` binary: parses the command line and runs it.

use std::process::ExitCode;

use clap::Parser;

#[tokio::main]
async fn main() -> ExitCode {
    agency_node::cli::run(agency_node::cli::Cli::parse()).await
}
