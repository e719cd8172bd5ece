//! Thin handlers: read guards and forms, call one operation of the auth service, pick a reply.
//! Each module ends in `pub fn routes()`, mounted at its base (`/`, `/admin`, `/api`,
//! `/api/admin`) by [`stage`]; the catchers are handlers too (`catchers`).

/// Ends a module of `/api` handlers: `pub fn routes()` for Rocket and `Paths`, the OpenAPI
/// document of the same handlers (each one's `#[utoipa::path]`, relative to the mount
/// point), from one list, so what is mounted and what is documented cannot drift apart.
macro_rules! documented_routes {
    ($($handler:ident),+ $(,)?) => {
        /// This module's routes, mounted at [`BASE`].
        pub fn routes() -> Vec<rocket::Route> {
            rocket::routes![$($handler),+]
        }

        /// The OpenAPI paths of [`routes`], relative to [`BASE`].
        #[derive(utoipa::OpenApi)]
        #[openapi(paths($($handler),+))]
        pub struct Paths;
    };
}

pub mod account;
pub mod admin;
pub mod admin_api;
pub mod api;
pub mod authz;
pub mod catchers;
pub mod factors;
pub mod health;
pub mod login;
pub mod metrics;
pub mod oauth;
pub mod oidc;
pub mod openapi;
pub mod pages;
pub mod passkeys;
pub mod reset;

use rocket::fairing::AdHoc;

/// Mounts every module's routes at its base and registers the catchers.
pub fn stage() -> AdHoc {
    AdHoc::on_ignite("Routes", |rocket| async {
        rocket
            .register("/", catchers::catchers())
            .register("/api", catchers::api_catchers())
            .mount("/", pages::routes())
            .mount("/", login::routes())
            .mount("/", health::routes())
            .mount("/", metrics::routes())
            .mount("/", oauth::routes())
            .mount("/", account::routes())
            .mount("/", factors::routes())
            .mount("/", passkeys::routes())
            .mount(api::BASE, api::routes())
            .mount(admin::BASE, admin::routes())
            .mount(admin_api::BASE, admin_api::routes())
            .mount(openapi::BASE, openapi::routes())
            .mount("/", authz::routes())
            .mount("/", reset::routes())
            .mount("/", oidc::routes())
    })
}
