//! The file of checkpoints auditors collected earlier (JSON Lines, one
//! [`Checkpoint`] a line): [`load_checkpoints`].

use std::io::BufRead;

use exchange_schema::audit::Checkpoint;

/// Why a file of collected checkpoints could not be read.
#[derive(Debug, thiserror::Error)]
pub enum CheckpointFileError {
    #[error("line {line} of the checkpoint file is not a checkpoint: {reason}")]
    Line { line: u64, reason: String },
    #[error("reading the checkpoint file failed: {0}")]
    Io(#[from] std::io::Error),
}

/// Reads checkpoints collected earlier: JSON Lines, one [`Checkpoint`] a
/// line (blank lines skipped). The checkpoint lines of an export are
/// accepted too, so an auditor can keep old exports as evidence.
pub fn load_checkpoints(reader: impl BufRead) -> Result<Vec<Checkpoint>, CheckpointFileError> {
    let mut checkpoints = Vec::new();
    for (i, line) in reader.lines().enumerate() {
        let line = line?;
        if line.trim().is_empty() {
            continue;
        }
        let checkpoint = serde_json::from_str(&line).map_err(|e| CheckpointFileError::Line {
            line: i as u64 + 1,
            reason: e.to_string(),
        })?;
        checkpoints.push(checkpoint);
    }
    Ok(checkpoints)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::verify::fixtures::{LOG, new_key};

    #[test]
    fn collected_checkpoints_load_from_json_lines() {
        let key = new_key();
        let a = Checkpoint::sign(&key, LOG, 5, &[1; 32]);
        let b = Checkpoint::sign(&key, LOG, 10, &[2; 32]);
        let text = format!(
            "{}\n\n{}\n",
            serde_json::to_string(&a).unwrap(),
            serde_json::to_string(&b).unwrap()
        );
        assert_eq!(load_checkpoints(text.as_bytes()).unwrap(), vec![a, b]);
        let err = load_checkpoints(&b"{\"seq\": 1}\n"[..]).unwrap_err();
        assert!(
            err.to_string()
                .starts_with("line 1 of the checkpoint file is not a checkpoint"),
            "{err}"
        );
    }
}
