//! Thin handlers: read guards and forms, call one operation of the auth service, pick a reply.

pub mod account;
pub mod api;
pub mod health;
pub mod login;
pub mod oauth;
pub mod pages;

use rocket::fairing::AdHoc;

/// Mounts every route.
pub fn stage() -> AdHoc {
    AdHoc::on_ignite("Routes", |rocket| async {
        rocket.mount(
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
                oauth::start,
                oauth::callback,
                account::account,
                account::connect,
                account::unlink,
                account::end_session,
                account::end_other_sessions,
                account::change_password,
                api::me,
                api::sessions,
                api::end_session,
            ],
        )
    })
}
