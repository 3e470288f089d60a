//! What the command-line tools print on standard output. A reader that went
//! away (`... | head`) ends the output quietly instead of a panic; the exit
//! status still tells the outcome.

use std::io::Write as _;

/// Writes `text` to standard output.
pub fn write_stdout(text: &str) {
    let mut out = std::io::stdout().lock();
    if let Err(err) = out.write_all(text.as_bytes()).and_then(|()| out.flush())
        && err.kind() != std::io::ErrorKind::BrokenPipe
    {
        eprintln!("writing to standard output: {err}");
    }
}

/// Writes one line to standard output (see [`write_stdout`]).
pub fn say(line: impl std::fmt::Display) {
    write_stdout(&format!("{line}\n"));
}
