//! Thin handlers: read guards and forms, call one domain function, pick a response.

pub mod account;
pub mod health;
pub mod login;
pub mod oauth;
pub mod pages;

use rocket::Route;

pub fn routes() -> Vec<Route> {
    rocket::routes![
        pages::index,
        pages::welcome,
        pages::stylesheet,
        login::login_page,
        login::login,
        login::logout_page,
        login::logout,
        health::health,
        oauth::start,
        oauth::callback,
        account::account,
        account::connect,
        account::unlink,
    ]
}
