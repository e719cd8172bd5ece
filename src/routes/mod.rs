//! Thin handlers: read guards and forms, call one operation of the auth service, pick a reply.

pub mod account;
pub mod admin;
pub mod admin_api;
pub mod api;
pub mod authz;
pub mod catchers;
pub mod health;
pub mod login;
pub mod metrics;
pub mod oauth;
pub mod openapi;
pub mod pages;
pub mod reset;

use rocket::fairing::AdHoc;

/// Mounts every route and registers the catchers.
pub fn stage() -> AdHoc {
    AdHoc::on_ignite("Routes", |rocket| async {
        rocket.register("/", catchers::catchers()).register("/api", catchers::api_catchers()).mount(
            "/",
            rocket::routes![
                pages::index,
                pages::welcome,
                pages::stylesheet,
                pages::brand_stylesheet,
                login::login_page,
                login::login,
                login::logout_page,
                login::logout,
                login::logout_everywhere,
                health::health,
                metrics::metrics,
                oauth::start,
                oauth::callback,
                oauth::connect,
                oauth::unlink,
                account::account,
                account::end_session,
                account::end_other_sessions,
                account::change_password,
                api::me,
                api::sessions,
                api::end_session,
                admin::users,
                admin::user,
                admin::new_user,
                admin::create_user,
                admin::reset_link,
                admin::switch,
                admin::delete,
                admin::end_all_sessions,
                admin::end_session,
                admin::events,
                admin_api::users,
                admin_api::create_user,
                admin_api::user,
                admin_api::change_user,
                admin_api::delete_user,
                admin_api::reset_link,
                admin_api::end_sessions,
                admin_api::end_session,
                admin_api::events,
                openapi::document,
                authz::auth_request,
                authz::forward_auth,
                authz::jwks,
                reset::reset_page,
                reset::reset,
            ],
        )
    })
}
