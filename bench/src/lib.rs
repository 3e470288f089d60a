//! The shared parts of the exchange's benchmarks (`gateway-bench`,
//! `hive-bench`): nodes started in this process, servers in child
//! processes, timed load and its figures. The binaries in `src/bin/` own
//! what they measure and print; nothing here asserts or passes or fails.
//!
//! * [`nodes`]: agency nodes in this process with a development federation,
//!   tokens, and the data the benches seed through the nodes' mutations.
//! * [`child`]: servers in child processes (this binary in a child mode, or
//!   another program), their CPU time and memory from `/proc`.
//! * [`load`]: requests to a target, taking turns between targets, and the
//!   figures made from them.
//! * [`cpus`]: which CPUs this process may use, and pinning it to some.
//! * [`hive`]: Hive Router in a child process, configured from a
//!   development federation, for `hive-bench`.

pub mod child;
pub mod cpus;
pub mod hive;
pub mod load;
pub mod nodes;
