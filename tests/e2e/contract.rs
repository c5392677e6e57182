//! The API contract: the OpenAPI document the running daemon serves is valid OpenAPI 3.1, as a
//! standard validator (`openapi-spec-validator`, installed by `scripts/test`) judges it, and each
//! parameter sits where a generated client will send it.

use std::process::Command;

use nuage_e2e::{workspace_root, Daemon, Scratch};
use serde_json::Value;

/// The validator `scripts/test` installs, or one named by `NUAGE_OPENAPI_VALIDATOR`.
fn validator() -> std::path::PathBuf {
    std::env::var_os("NUAGE_OPENAPI_VALIDATOR")
        .map(Into::into)
        .unwrap_or_else(|| workspace_root().join("target/tools/venv/bin/openapi-spec-validator"))
}

#[tokio::test(flavor = "multi_thread")]
async fn the_served_openapi_document_is_valid_openapi_3_1() {
    let daemon = tokio::task::spawn_blocking(|| Daemon::start("test:///default"))
        .await
        .unwrap();
    let served = reqwest::get(daemon.url("/api/v1/openapi.json"))
        .await
        .unwrap();
    assert_eq!(served.status(), 200);
    let text = served.text().await.unwrap();
    let doc: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(
        doc["openapi"], "3.1.0",
        "the document says {}",
        doc["openapi"]
    );

    let dir = Scratch::new("openapi");
    let file = dir.path().join("openapi.json");
    std::fs::write(&file, &text).unwrap();
    let tool = validator();
    let out = Command::new(&tool)
        .args([
            "--schema",
            "3.1",
            "--subschema-errors",
            "all",
            "--validation-errors",
            "all",
        ])
        .arg(&file)
        .output()
        .unwrap_or_else(|e| {
            panic!(
                "cannot run {} (scripts/test installs it): {e}",
                tool.display()
            )
        });
    assert!(
        out.status.success(),
        "openapi-spec-validator refuses the served document:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );

    // Every path parameter is in its template and every other parameter is a query parameter:
    // a generated client then sends `GET /vms?all=true`, not `GET /vms/{all}`.
    let mut operations = 0;
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
            operations += 1;
            for p in op["parameters"].as_array().into_iter().flatten() {
                let (name, at) = (p["name"].as_str().unwrap(), p["in"].as_str().unwrap());
                let templated = path.contains(&format!("{{{name}}}"));
                assert_eq!(
                    at == "path",
                    templated,
                    "{method} {path}: parameter {name} is declared in {at}"
                );
            }
        }
    }
    assert!(operations >= 50, "only {operations} operations");
    let list_vms = &doc["paths"]["/api/v1/vms"]["get"]["parameters"];
    assert!(
        list_vms
            .as_array()
            .unwrap()
            .iter()
            .any(|p| p["name"] == "all" && p["in"] == "query"),
        "GET /vms: {list_vms}"
    );
}
