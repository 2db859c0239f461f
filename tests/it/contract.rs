//! `openapi.yaml` is the contract: its routes, the route table (`shared/http/src/routes.rs`) and
//! `template.yaml` are one set, and what it says of each route holds where the code decides it.

use serde_norway::Value;
use son1k_http::routes::ROUTES;
use son1k_tests::{openapi, template};
use std::collections::BTreeSet;

/// (method, path, function, public) of one route.
type RouteRow = (String, String, String, bool);

fn text(v: &Value) -> String {
    v.as_str().map(str::to_owned).unwrap_or_default()
}

fn from_openapi() -> BTreeSet<RouteRow> {
    let doc = openapi();
    let global_security = !doc["security"].as_sequence().expect("security").is_empty();
    let mut rows = BTreeSet::new();
    for (path, item) in doc["paths"].as_mapping().expect("paths") {
        for (method, op) in item.as_mapping().expect("path item") {
            let method = text(method).to_uppercase();
            let public = match op.get("security") {
                Some(Value::Sequence(s)) => s.is_empty(),
                _ => !global_security,
            };
            rows.insert((method, text(path), text(&op["x-function"]), public));
        }
    }
    rows
}

fn from_route_table() -> BTreeSet<RouteRow> {
    ROUTES
        .iter()
        .map(|r| {
            (
                r.method.to_owned(),
                r.path.to_owned(),
                r.function.to_owned(),
                r.public,
            )
        })
        .collect()
}

fn from_template() -> BTreeSet<RouteRow> {
    let t = template();
    let mut rows = BTreeSet::new();
    for (_, resource) in t["Resources"].as_mapping().expect("resources") {
        if resource["Type"] != "AWS::Serverless::Function" {
            continue;
        }
        let function = text(&resource["Metadata"]["BuildProperties"]["Binary"]);
        let Some(events) = resource["Properties"]["Events"].as_mapping() else {
            continue;
        };
        for event in events.values() {
            let props = &event["Properties"];
            // `$default` (no path) and the CORS preflight route are not API routes.
            if event["Type"] != "HttpApi"
                || props.get("Path").is_none()
                || props["Method"] == "OPTIONS"
            {
                continue;
            }
            rows.insert((
                text(&props["Method"]).to_uppercase(),
                text(&props["Path"]),
                function.clone(),
                props["Auth"]["Authorizer"] == "NONE",
            ));
        }
    }
    rows
}

#[test]
fn openapi_the_route_table_and_the_template_are_one_set_of_routes() {
    let (spec, table, deployed) = (from_openapi(), from_route_table(), from_template());
    assert_eq!(spec.len(), ROUTES.len(), "one operation per route");
    assert_eq!(
        spec.symmetric_difference(&table).collect::<Vec<_>>(),
        Vec::<&RouteRow>::new(),
        "openapi.yaml vs shared/http/src/routes.rs"
    );
    assert_eq!(
        table.symmetric_difference(&deployed).collect::<Vec<_>>(),
        Vec::<&RouteRow>::new(),
        "shared/http/src/routes.rs vs template.yaml"
    );
}

#[test]
fn every_problem_code_is_in_the_contract_and_every_operation_documents_its_errors() {
    let doc = openapi();
    let codes: BTreeSet<String> = doc["components"]["schemas"]["Problem"]["properties"]["code"]
        ["enum"]
        .as_sequence()
        .expect("codes")
        .iter()
        .map(text)
        .collect();
    let ours: BTreeSet<String> = son1k_http::ErrorCode::ALL
        .iter()
        .map(|c| c.as_str().to_owned())
        .collect();
    assert_eq!(
        codes, ours,
        "the problem codes of openapi.yaml and ErrorCode"
    );
    for (path, item) in doc["paths"].as_mapping().expect("paths") {
        for (method, op) in item.as_mapping().expect("path item") {
            let responses = op["responses"].as_mapping().expect("responses");
            let has = |status: &str| responses.keys().any(|k| text(k) == status);
            let name = format!("{} {}", text(method), text(path));
            let public = matches!(op.get("security"), Some(Value::Sequence(s)) if s.is_empty());
            assert_eq!(
                !public,
                has("401"),
                "{name}: 401 exactly when a token is needed"
            );
            let touches_store = !matches!(
                text(path).as_str(),
                "/health" | "/api/tiers" | "/api/credits/packs"
            );
            assert_eq!(
                touches_store,
                has("503"),
                "{name}: 503 when it has dependencies"
            );
            if op.get("requestBody").is_some() {
                assert!(
                    has("400") && has("413"),
                    "{name}: a body can be bad or too large"
                );
            }
        }
    }
}

#[test]
fn nothing_in_the_repository_points_at_documents_outside_it() {
    let root = concat!(env!("CARGO_MANIFEST_DIR"), "/..");
    let output = std::process::Command::new("git")
        .args(["-C", root, "ls-files"])
        .output()
        .expect("git ls-files");
    assert!(
        output.status.success(),
        "git ls-files failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let files = String::from_utf8(output.stdout).expect("utf-8");
    let files: Vec<&str> = files.lines().collect();
    // The files this test must see: an empty or partial listing would pass by reading nothing.
    for needed in ["README.md", "openapi.yaml", "template.yaml", "Makefile"] {
        assert!(
            files.contains(&needed),
            "git ls-files does not list {needed}"
        );
    }
    let mut offenders = Vec::new();
    let mut read = 0;
    for file in files {
        // Binary files are not documents.
        let body = match std::fs::read(format!("{root}/{file}")) {
            Ok(bytes) => match String::from_utf8(bytes) {
                Ok(text) => text,
                Err(_) => continue,
            },
            // Deleted in the working tree, not yet in the index.
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => continue,
            Err(err) => panic!("{file} is listed but cannot be read: {err}"),
        };
        read += 1;
        if file == "tests/it/contract.rs" {
            continue;
        }
        for needle in ["../shared/", "API.md", "DESIGN.md", "STYLE.md"] {
            if body.contains(needle) {
                offenders.push(format!("{file}: {needle}"));
            }
        }
    }
    assert!(read > 0, "no file was read");
    assert!(offenders.is_empty(), "{offenders:#?}");
}
