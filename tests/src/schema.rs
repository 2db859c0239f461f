//! JSON Schema validation of messages against the schemas in `shared/domain/schemas/`, with the
//! `jsonschema` package of the project's Python environment (`.venv`, installed by `make stack`).

use serde_json::Value;
use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Stdio};

const VALIDATE: &str = r#"
import json, sys
import jsonschema
schema = json.load(open(sys.argv[1]))
jsonschema.Draft202012Validator.check_schema(schema)
validator = jsonschema.Draft202012Validator(schema)
errors = []
for n, message in enumerate(json.load(sys.stdin)):
    for error in validator.iter_errors(message):
        errors.append(f"message {n}: {error.json_path}: {error.message}")
print("\n".join(errors))
sys.exit(1 if errors else 0)
"#;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// The validator's complaints about `messages` (empty when every one is valid).
pub fn errors(schema: &str, messages: &[Value]) -> String {
    let path = root().join("shared/domain/schemas").join(schema);
    let mut child = Command::new(root().join(".venv/bin/python"))
        .arg("-c")
        .arg(VALIDATE)
        .arg(&path)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the project's Python (make stack installs .venv)");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(Value::from(messages.to_vec()).to_string().as_bytes())
        .expect("write the messages");
    let out = child.wait_with_output().expect("validator");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.trim().is_empty(), "the validator failed: {stderr}");
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

pub fn is_valid(schema: &str, messages: &[Value]) -> bool {
    errors(schema, messages).is_empty()
}

pub fn assert_valid(schema: &str, messages: &[Value]) {
    let errors = errors(schema, messages);
    assert!(errors.is_empty(), "{schema}:\n{errors}");
}
