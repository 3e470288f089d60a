//! Loading a policy set: reading the `.cedar` files of a directory (or the
//! embedded baseline), parsing each file on its own so every problem names
//! its file, requiring an `@id` on every policy, validating the whole set
//! against the schema in strict mode, and hashing schema + files into the
//! set's version.

use std::collections::BTreeMap;
use std::path::Path;

use aws_lc_rs::digest;
use cedar_policy::{Effect, Policy, PolicyId, PolicySet, Schema, ValidationMode, Validator};
use miette::Diagnostic;

use crate::error::{PolicyError, PolicyProblem, PolicyProblems};

/// File name of the schema, as hashed and as shown in messages.
pub const SCHEMA_FILE: &str = "exchange.cedarschema";

/// The Cedar schema every policy set is validated against. It is part of the
/// engine (the engine builds requests to its shape), so it ships in the binary.
pub const SCHEMA_TEXT: &str = include_str!("../exchange.cedarschema");

/// The shipped baseline policy files, `(file name, text)`, sorted by name.
pub const BASELINE_FILES: &[(&str, &str)] = &[
    ("10-owner.cedar", include_str!("../baseline/10-owner.cedar")),
    (
        "20-consent.cedar",
        include_str!("../baseline/20-consent.cedar"),
    ),
    (
        "30-limits.cedar",
        include_str!("../baseline/30-limits.cedar"),
    ),
    (
        "40-break-glass.cedar",
        include_str!("../baseline/40-break-glass.cedar"),
    ),
    (
        "50-actions.cedar",
        include_str!("../baseline/50-actions.cedar"),
    ),
];

/// The annotation that names a policy; required on every policy.
pub const ID_ANNOTATION: &str = "id";

/// The annotation holding a policy's plain-language description.
pub const DESCRIPTION_ANNOTATION: &str = "description";

/// One policy file: its name (no directory) and its text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PolicyFile {
    pub name: String,
    pub text: String,
}

/// Whether a policy allows or forbids.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PolicyEffect {
    Permit,
    Forbid,
}

impl PolicyEffect {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Permit => "permit",
            Self::Forbid => "forbid",
        }
    }
}

/// What the engine knows about one loaded policy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PolicyInfo {
    /// The `@id` annotation: the policy's stable name in decisions and logs.
    pub id: String,
    /// The file it came from.
    pub file: String,
    pub effect: PolicyEffect,
    /// The `@description` annotation, if any.
    pub description: Option<String>,
    /// The policy's source text, annotations included.
    pub text: String,
}

/// A validated policy set.
pub(crate) struct CompiledSet {
    pub schema: Schema,
    pub policies: PolicySet,
    pub info: Vec<PolicyInfo>,
    pub hash: String,
}

/// Reads every `*.cedar` file directly in `dir`, sorted by file name.
pub fn read_policy_dir(dir: &Path) -> Result<Vec<PolicyFile>, PolicyError> {
    let read_dir = |source| PolicyError::ReadDir {
        dir: dir.to_path_buf(),
        source,
    };
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(read_dir)? {
        let path = entry.map_err(read_dir)?.path();
        let is_policy = path.extension().is_some_and(|ext| ext == "cedar") && path.is_file();
        if !is_policy {
            continue;
        }
        let text = std::fs::read_to_string(&path).map_err(|source| PolicyError::ReadFile {
            file: path.clone(),
            source,
        })?;
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        files.push(PolicyFile { name, text });
    }
    if files.is_empty() {
        return Err(PolicyError::EmptySet {
            dir: dir.to_path_buf(),
        });
    }
    files.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(files)
}

/// The embedded baseline files.
pub fn baseline_files() -> Vec<PolicyFile> {
    BASELINE_FILES
        .iter()
        .map(|(name, text)| PolicyFile {
            name: (*name).to_owned(),
            text: (*text).to_owned(),
        })
        .collect()
}

/// The version of a policy set: hex SHA-256 over a domain tag, then the
/// schema and each policy file sorted by name, each as
/// `name '\n' byte-length '\n' text`.
pub fn policy_set_hash(schema_text: &str, files: &[PolicyFile]) -> String {
    let mut sorted: Vec<&PolicyFile> = files.iter().collect();
    sorted.sort_by(|a, b| a.name.cmp(&b.name));
    let mut ctx = digest::Context::new(&digest::SHA256);
    ctx.update(b"exchange-policy-set-v1\n");
    let mut add = |name: &str, text: &str| {
        ctx.update(name.as_bytes());
        ctx.update(b"\n");
        ctx.update(text.len().to_string().as_bytes());
        ctx.update(b"\n");
        ctx.update(text.as_bytes());
    };
    add(SCHEMA_FILE, schema_text);
    for file in sorted {
        add(&file.name, &file.text);
    }
    hex::encode(ctx.finish().as_ref())
}

/// Parses the schema; the embedded one always parses (a unit test checks).
pub(crate) fn parse_schema(schema_text: &str) -> Result<Schema, PolicyError> {
    Schema::from_cedarschema_str(schema_text)
        .map(|(schema, _warnings)| schema)
        .map_err(|err| PolicyError::Schema {
            file: SCHEMA_FILE.to_owned(),
            reason: err.to_string(),
        })
}

/// Parses, names and validates a set of policy files.
pub(crate) fn compile(schema_text: &str, files: &[PolicyFile]) -> Result<CompiledSet, PolicyError> {
    let schema = parse_schema(schema_text)?;
    let mut problems = Vec::new();
    let mut set = PolicySet::new();
    let mut info: Vec<PolicyInfo> = Vec::new();
    // policy id -> index of its file, to name the file of a validation error.
    let mut file_of: BTreeMap<String, usize> = BTreeMap::new();

    let mut sorted: Vec<&PolicyFile> = files.iter().collect();
    sorted.sort_by(|a, b| a.name.cmp(&b.name));

    for (file_index, file) in sorted.iter().enumerate() {
        let parsed = match file.text.parse::<PolicySet>() {
            Ok(parsed) => parsed,
            Err(errors) => {
                for error in errors.iter() {
                    let offset = first_label_offset(error);
                    let (line, column) = offset.map(|o| line_col(&file.text, o)).unzip();
                    let policy = offset
                        .and_then(|o| last_id_before(&file.text, o))
                        .unwrap_or_else(|| "unnamed policy".to_owned());
                    problems.push(PolicyProblem {
                        file: file.name.clone(),
                        policy,
                        line,
                        column,
                        reason: format!("syntax error: {}", diagnostic_text(error)),
                    });
                }
                continue;
            }
        };
        for template in parsed.templates() {
            let text = template.to_string();
            problems.push(PolicyProblem {
                file: file.name.clone(),
                policy: template
                    .annotation(ID_ANNOTATION)
                    .map(str::to_owned)
                    .unwrap_or_else(|| unnamed(&file.text, &text)),
                line: find_line(&file.text, &text),
                column: None,
                reason: "templates (policies with ?principal or ?resource slots) are not used in this federation".to_owned(),
            });
        }
        let mut policies: Vec<&Policy> = parsed.policies().collect();
        policies.sort_by_key(|p| {
            let text = p.to_string();
            file.text.find(&text).unwrap_or(usize::MAX)
        });
        for policy in policies {
            let text = policy.to_string();
            let line = find_line(&file.text, &text);
            let Some(id) = policy.annotation(ID_ANNOTATION).map(str::to_owned) else {
                problems.push(PolicyProblem {
                    file: file.name.clone(),
                    policy: unnamed(&file.text, &text),
                    line,
                    column: None,
                    reason: "missing @id(\"...\") annotation: every policy needs a stable name"
                        .to_owned(),
                });
                continue;
            };
            if !is_valid_id(&id) {
                problems.push(PolicyProblem {
                    file: file.name.clone(),
                    policy: id.clone(),
                    line,
                    column: None,
                    reason: "an @id must be 1 to 80 characters of a-z, 0-9 and '-', starting with a letter or digit".to_owned(),
                });
                continue;
            }
            if let Some(&other) = file_of.get(&id) {
                problems.push(PolicyProblem {
                    file: file.name.clone(),
                    policy: id.clone(),
                    line,
                    column: None,
                    reason: format!("duplicate @id: already used in {}", sorted[other].name),
                });
                continue;
            }
            let renamed = policy.new_id(PolicyId::new(&id));
            if let Err(err) = set.add(renamed) {
                problems.push(PolicyProblem {
                    file: file.name.clone(),
                    policy: id.clone(),
                    line,
                    column: None,
                    reason: err.to_string(),
                });
                continue;
            }
            file_of.insert(id.clone(), file_index);
            info.push(PolicyInfo {
                id,
                file: file.name.clone(),
                effect: match policy.effect() {
                    Effect::Permit => PolicyEffect::Permit,
                    Effect::Forbid => PolicyEffect::Forbid,
                },
                description: policy.annotation(DESCRIPTION_ANNOTATION).map(str::to_owned),
                text,
            });
        }
    }

    let validation = Validator::new(schema.clone()).validate(&set, ValidationMode::Strict);
    let locate = |id: &PolicyId| -> (String, &str) {
        let id = id.to_string();
        match file_of.get(&id) {
            Some(&i) => (sorted[i].name.clone(), sorted[i].text.as_str()),
            None => ("(unknown file)".to_owned(), ""),
        }
    };
    for error in validation.validation_errors() {
        let (file, text) = locate(error.policy_id());
        let (line, column) = first_label_offset(error)
            .filter(|o| *o <= text.len())
            .map(|o| line_col(text, o))
            .unzip();
        problems.push(PolicyProblem {
            file,
            policy: error.policy_id().to_string(),
            line,
            column,
            reason: format!("does not match the schema: {}", diagnostic_text(error)),
        });
    }
    // Warnings (an impossible policy, look-alike or bidirectional characters)
    // are refused too: in a safety-critical set they are mistakes or attacks.
    for warning in validation.validation_warnings() {
        let (file, text) = locate(warning.policy_id());
        let (line, column) = first_label_offset(warning)
            .filter(|o| *o <= text.len())
            .map(|o| line_col(text, o))
            .unzip();
        problems.push(PolicyProblem {
            file,
            policy: warning.policy_id().to_string(),
            line,
            column,
            reason: format!("refused warning: {}", diagnostic_text(warning)),
        });
    }

    if !problems.is_empty() {
        return Err(PolicyError::Invalid {
            problems: PolicyProblems(problems),
        });
    }
    info.sort_by(|a, b| a.file.cmp(&b.file).then(a.id.cmp(&b.id)));
    let owned: Vec<PolicyFile> = sorted.into_iter().cloned().collect();
    Ok(CompiledSet {
        schema,
        policies: set,
        info,
        hash: policy_set_hash(schema_text, &owned),
    })
}

fn is_valid_id(id: &str) -> bool {
    (1..=80).contains(&id.len())
        && !id.starts_with('-')
        && id
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
}

/// The error message with its help text, on one line.
fn diagnostic_text(diag: &dyn Diagnostic) -> String {
    let mut text = diag.to_string();
    if let Some(help) = diag.help() {
        text.push_str(" (");
        text.push_str(&help.to_string());
        text.push(')');
    }
    text
}

fn first_label_offset(diag: &dyn Diagnostic) -> Option<usize> {
    diag.labels()
        .and_then(|mut labels| labels.next())
        .map(|label| label.offset())
}

/// 1-based line and column (in characters) of a byte offset.
fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let mut offset = offset.min(text.len());
    while !text.is_char_boundary(offset) {
        offset -= 1;
    }
    let before = &text[..offset];
    let line = before.matches('\n').count() + 1;
    let column = before
        .rsplit_once('\n')
        .map_or(before, |(_, tail)| tail)
        .chars()
        .count()
        + 1;
    (line, column)
}

fn find_line(text: &str, policy_text: &str) -> Option<usize> {
    text.find(policy_text).map(|o| line_col(text, o).0)
}

fn unnamed(text: &str, policy_text: &str) -> String {
    match find_line(text, policy_text) {
        Some(line) => format!("unnamed policy at line {line}"),
        None => "unnamed policy".to_owned(),
    }
}

/// The last `@id("...")` that starts before `offset`: the policy a syntax
/// error is in (annotations come first in a policy).
fn last_id_before(text: &str, offset: usize) -> Option<String> {
    let mut end = offset.min(text.len());
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    let head = &text[..end];
    let start = head.rfind("@id(")?;
    let rest = text[start + 4..].trim_start();
    let rest = rest.strip_prefix('"')?;
    let close = rest.find('"')?;
    Some(rest[..close].to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn embedded_schema_parses() {
        parse_schema(SCHEMA_TEXT).unwrap();
    }

    #[test]
    fn hash_depends_on_every_file_and_not_on_order() {
        let a = PolicyFile {
            name: "a.cedar".into(),
            text: "x".into(),
        };
        let b = PolicyFile {
            name: "b.cedar".into(),
            text: "y".into(),
        };
        let h1 = policy_set_hash(SCHEMA_TEXT, &[a.clone(), b.clone()]);
        let h2 = policy_set_hash(SCHEMA_TEXT, &[b.clone(), a.clone()]);
        assert_eq!(h1, h2);
        assert_eq!(h1.len(), 64);
        let edited = PolicyFile {
            text: "y ".into(),
            ..b.clone()
        };
        assert_ne!(h1, policy_set_hash(SCHEMA_TEXT, &[a.clone(), edited]));
        assert_ne!(h1, policy_set_hash("schema", &[a, b]));
    }

    #[test]
    fn line_and_column_are_one_based() {
        assert_eq!(line_col("ab\ncd", 0), (1, 1));
        assert_eq!(line_col("ab\ncd", 4), (2, 2));
    }

    #[test]
    fn finds_the_policy_a_syntax_error_is_in() {
        let text =
            "@id(\"one\")\npermit(principal, action, resource);\n@id( \"two\" )\nforbid(oops";
        assert_eq!(last_id_before(text, text.len()), Some("two".to_owned()));
        assert_eq!(last_id_before(text, 3), None);
    }
}
