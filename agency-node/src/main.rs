//! The `agency-node` binary: parses the command line and runs it.

use std::process::ExitCode;

use clap::Parser;

/// mimalloc rather than the C library's allocator: under concurrent
/// requests the system allocator took about an eighth of the gateway's CPU
/// (docs/benchmarks.md, Gateway). Built without transparent huge pages,
/// which would otherwise grow resident memory in 2 MB steps.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> ExitCode {
    agency_node::cli::run(agency_node::cli::Cli::parse()).await
}
