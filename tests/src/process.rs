//! Running a command-line tool of the workspace as a process, the way an
//! operator or auditor does.

/// Runs `program` with `args` and waits: its exit code and what it printed
/// (standard output, then standard error). A process killed by a signal
/// fails the test.
pub fn run(program: &str, args: &[&str]) -> (i32, String) {
    let output = std::process::Command::new(program)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("starting {program}: {e}"));
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    let code = output
        .status
        .code()
        .unwrap_or_else(|| panic!("{program} was killed by a signal: {text}"));
    (code, text)
}
