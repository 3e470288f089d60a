//! Why a policy set could not be loaded: every problem names the file, the
//! policy (its `@id`) and the reason, so a data-protection officer can fix it.

use std::fmt;
use std::path::PathBuf;

/// One problem found in a policy set.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PolicyProblem {
    /// The file the problem is in (file name, or path for schema problems).
    pub file: String,
    /// The policy's `@id`, or a description such as `unnamed policy at line 12`.
    pub policy: String,
    /// 1-based line of the problem in the file, when known.
    pub line: Option<usize>,
    /// 1-based column of the problem in the file, when known.
    pub column: Option<usize>,
    /// What is wrong, in plain words.
    pub reason: String,
}

impl fmt::Display for PolicyProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.file)?;
        if let Some(line) = self.line {
            write!(f, ":{line}")?;
            if let Some(column) = self.column {
                write!(f, ":{column}")?;
            }
        }
        write!(f, ": policy \"{}\": {}", self.policy, self.reason)
    }
}

/// A list of problems, displayed one a line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PolicyProblems(pub Vec<PolicyProblem>);

impl fmt::Display for PolicyProblems {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, problem) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str("\n")?;
            }
            write!(f, "  {problem}")?;
        }
        Ok(())
    }
}

/// Why a policy engine could not be built.
#[derive(Debug, thiserror::Error)]
pub enum PolicyError {
    /// The configured policy directory could not be listed.
    #[error("cannot read policy directory {dir}: {source}")]
    ReadDir {
        dir: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// A policy file could not be read.
    #[error("cannot read policy file {file}: {source}")]
    ReadFile {
        file: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The directory holds no `.cedar` file: a node never starts without rules.
    #[error("policy directory {dir} holds no .cedar policy file")]
    EmptySet { dir: PathBuf },
    /// The Cedar schema itself does not parse.
    #[error("schema {file} is invalid: {reason}")]
    Schema { file: String, reason: String },
    /// One or more policies are invalid.
    #[error("invalid policy set ({} problem{}):\n{problems}", problems.0.len(), if problems.0.len() == 1 { "" } else { "s" })]
    Invalid { problems: PolicyProblems },
}

impl PolicyError {
    /// The individual problems, when the set itself was invalid.
    pub fn problems(&self) -> &[PolicyProblem] {
        match self {
            Self::Invalid { problems } => &problems.0,
            _ => &[],
        }
    }
}
