//! The gateway's integration suite: the federation schema's contract with
//! the nodes' subgraph, and the `exchange-gateway` command. (The federation
//! end to end, with real nodes, is tested in `tests/`.)

mod cli;
mod schema_contract;
