//! Which CPUs this process may run on, and pinning every thread of it to
//! some of them (to give a server a core of its own).

use nix::sched::{CpuSet, sched_getaffinity, sched_setaffinity};
use nix::unistd::Pid;

/// The CPUs this process may run on.
pub fn allowed_cpus() -> anyhow::Result<Vec<usize>> {
    let set = sched_getaffinity(Pid::from_raw(0))?;
    Ok((0..CpuSet::count())
        .filter(|&cpu| set.is_set(cpu).unwrap_or(false))
        .collect())
}

/// Pins every thread of this process to `cpus`; threads they start later
/// inherit the mask. Passes over the threads until a pass finds none it has
/// not pinned, so a thread started meanwhile is not missed.
pub fn pin_this_process(cpus: &[usize]) -> anyhow::Result<()> {
    let mut set = CpuSet::new();
    for &cpu in cpus {
        set.set(cpu)?;
    }
    let mut pinned = std::collections::BTreeSet::new();
    loop {
        let mut new = 0;
        for entry in std::fs::read_dir("/proc/self/task")? {
            let tid: i32 = entry?.file_name().to_string_lossy().parse()?;
            if pinned.insert(tid) {
                new += 1;
                // A thread may end between the listing and here.
                let _ = sched_setaffinity(Pid::from_raw(tid), &set);
            }
        }
        if new == 0 {
            return Ok(());
        }
    }
}
