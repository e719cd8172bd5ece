//! `/api/openapi.json`: generated from the handlers, it lists exactly the `/api` routes
//! that are mounted, with the methods they answer.

use std::collections::BTreeSet;

use rocket::http::Status;
use serde_json::Value;

use portal_testkit::app::*;

/// `/api/admin/users/<id>?<params..>` → `/api/admin/users/{id}`.
fn openapi_path(rocket_path: &str) -> String {
    let path = rocket_path.split('?').next().unwrap_or(rocket_path);
    path.split('/')
        .map(|segment| match segment.strip_prefix('<').and_then(|s| s.strip_suffix('>')) {
            Some(name) => format!("{{{}}}", name.trim_end_matches("..")),
            None => segment.to_owned(),
        })
        .collect::<Vec<_>>()
        .join("/")
}

#[rocket::async_test]
async fn the_document_lists_every_mounted_api_route_and_nothing_else() {
    let app = TestApp::spawn().await;
    let response = app.get("/api/openapi.json").await;
    assert_eq!(response.status(), Status::Ok);
    assert_eq!(response.content_type(), Some(rocket::http::ContentType::JSON));
    let doc: Value = serde_json::from_str(&response.into_string().await.unwrap()).unwrap();
    assert!(doc["openapi"].as_str().unwrap().starts_with("3."), "OpenAPI 3");

    let mounted: BTreeSet<(String, String)> = app
        .client
        .rocket()
        .routes()
        .filter(|r| r.uri.path().starts_with("/api/") || r.uri.path() == "/api")
        .map(|r| (r.method.as_str().to_lowercase(), openapi_path(&r.uri.to_string())))
        .collect();
    let documented: BTreeSet<(String, String)> = doc["paths"]
        .as_object()
        .unwrap()
        .iter()
        .flat_map(|(path, ops)| ops.as_object().unwrap().keys().map(move |m| (m.clone(), path.clone())))
        .filter(|(m, _)| ["get", "post", "put", "patch", "delete"].contains(&m.as_str()))
        .collect();
    assert!(mounted.len() >= 13, "{mounted:?}");
    assert_eq!(mounted, documented);

    // Every operation has a unique id and says what a refusal looks like.
    let mut ids = BTreeSet::new();
    for (path, ops) in doc["paths"].as_object().unwrap() {
        for (method, op) in ops.as_object().unwrap() {
            assert!(ids.insert(op["operationId"].as_str().unwrap().to_owned()), "{method} {path}");
            if path != "/api/openapi.json" {
                assert!(op["responses"].get("401").is_some(), "{method} {path} documents 401");
            }
        }
    }
    // The pinned users list shape.
    let schemas = &doc["components"]["schemas"];
    for field in ["id", "username", "email", "admin", "disabled"] {
        assert!(schemas["UserJson"]["properties"].get(field).is_some(), "{field}");
    }
}

/// The shared response sets (`web::api`'s `IntoResponses` types) refer to `ErrorJson`
/// without registering it: every `$ref` must still name a schema the document holds.
#[rocket::async_test]
async fn every_reference_in_the_document_names_a_schema_it_holds() {
    let app = TestApp::spawn().await;
    let doc: Value =
        serde_json::from_str(&app.get("/api/openapi.json").await.into_string().await.unwrap()).unwrap();
    fn refs(value: &Value, out: &mut BTreeSet<String>) {
        match value {
            Value::Object(map) => {
                if let Some(Value::String(target)) = map.get("$ref") {
                    out.insert(target.clone());
                }
                map.values().for_each(|v| refs(v, out));
            }
            Value::Array(items) => items.iter().for_each(|v| refs(v, out)),
            _ => {}
        }
    }
    let mut targets = BTreeSet::new();
    refs(&doc, &mut targets);
    assert!(targets.contains("#/components/schemas/ErrorJson"), "{targets:?}");
    for target in targets {
        let name = target.strip_prefix("#/components/schemas/").expect("a schema reference");
        assert!(doc["components"]["schemas"].get(name).is_some(), "{target} is not in the document");
    }
}
