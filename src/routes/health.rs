//! `GET /health`: 200 when the store answers, 503 when it does not.

use rocket::get;
use rocket::http::Status;
use rocket::serde::json::{json, Json, Value};
use rocket::Route;
use rocket::State;

use crate::auth::Auth;

#[get("/health")]
pub async fn health(auth: &State<Auth>) -> (Status, Json<Value>) {
    match auth.health().await {
        Ok(()) => (Status::Ok, Json(json!({ "status": "ok" }))),
        Err(e) => {
            log::error!("health check: the store did not answer: {e}");
            (Status::ServiceUnavailable, Json(json!({ "status": "unavailable" })))
        }
    }
}

/// This module's routes, mounted at `/`.
pub fn routes() -> Vec<Route> {
    rocket::routes![health]
}
