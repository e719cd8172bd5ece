//! Pages through `web::templates` (minijinja): operators' overrides by file name from
//! `template_dir`, branding, broken templates refused at start, and escaping on every page.

use std::sync::Arc;

use portal::clock::ManualClock;
use portal::Overrides;
use rocket::http::{ContentType, Status};
use rocket::local::asynchronous::Client;

use portal_testkit::app::*;
use portal_testkit::{secret_key, PASSWORD};

/// A directory holding `files` (name, contents).
fn template_dir(files: &[(&str, &str)]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for (name, text) in files {
        std::fs::write(dir.path().join(name), text).unwrap();
    }
    dir
}

const CUSTOM_LOGIN: &str = r#"{% extends "base.html" %}
{% block title %}Sign in to Acme{% endblock %}
{% block content %}<h1>Acme staff sign-in</h1>
<form method="post" action="/login"><input type="hidden" name="csrf_token" value="{{ csrf }}">
<input name="username" value="{{ username }}"><input name="password" type="password">
{% if error %}<p class="alert">{{ error }}</p>{% endif %}</form>{% endblock %}"#;

#[rocket::async_test]
async fn a_template_dir_with_one_override_changes_that_page_only() {
    let dir = template_dir(&[("login.html.j2", CUSTOM_LOGIN)]);
    let path = dir.path().display().to_string();
    let app = TestApp::spawn_with(|f| f.merge(("template_dir", path.as_str()))).await;
    app.create_user("alice", PASSWORD).await;

    let login = app.get("/login").await.into_string().await.unwrap();
    assert!(
        login.contains("<h1>Acme staff sign-in</h1>") && login.contains("Sign in to Acme · Portal"),
        "{login}"
    );
    assert!(!login.contains("Welcome back."), "the embedded login page is replaced");
    // The override's form still works: the variables it uses are the documented ones.
    let wrong = app.post_login("alice", "not the password").await.into_string().await.unwrap();
    assert!(
        wrong.contains("Acme staff sign-in") && wrong.contains("Invalid username or password."),
        "{wrong}"
    );
    app.sign_in("alice", PASSWORD).await;

    let home = app.get("/").await.into_string().await.unwrap();
    assert!(home.contains("Hello, World!"), "the other pages are the embedded ones: {home}");
    let missing = app.get("/no/such/page").await.into_string().await.unwrap();
    assert!(missing.contains("There is no page at this address."));
}

/// Whether the app refuses to start with `setting` (a key and its value).
async fn refuses_to_start(setting: (&str, String)) -> bool {
    let (_db_dir, db) = temp_db();
    let figment = test_figment(&db, &secret_key()).merge(setting);
    let overrides = Overrides { clock: Some(Arc::new(ManualClock::new(START))) };
    match Client::tracked(portal::rocket_with(figment, overrides)).await {
        Ok(_) => false,
        Err(error) => {
            error.pretty_print();
            true
        }
    }
}

/// Whether the app refuses to start with `files` in its `template_dir`.
async fn refuses_to_start_with(files: &[(&str, &str)]) -> bool {
    let dir = template_dir(files);
    refuses_to_start(("template_dir", dir.path().display().to_string())).await
}

#[rocket::async_test]
async fn a_broken_override_refuses_to_start() {
    assert!(refuses_to_start_with(&[("login.html.j2", "{% if %}never closed")]).await, "a syntax error");
    assert!(
        refuses_to_start_with(&[("login.html.j2", r#"{% extends "no-such-parent.html" %}"#)]).await,
        "a parent"
    );
    assert!(
        refuses_to_start_with(&[("error.html.j2", r#"{% include "missing.html" %}"#)]).await,
        "an include"
    );
    assert!(!refuses_to_start_with(&[("unrelated.txt", "{% if %}")]).await, "only .j2 files are templates");
}

#[rocket::async_test]
async fn a_template_dir_that_is_not_a_directory_refuses_to_start() {
    assert!(refuses_to_start(("template_dir", "/no/such/templates".into())).await);
}

#[rocket::async_test]
async fn the_brand_name_and_stylesheet_are_on_every_page() {
    let css = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(css.path(), ".brand { color: rebeccapurple; }").unwrap();
    let css_path = css.path().display().to_string();
    let app = TestApp::spawn_with(|f| {
        f.merge(("branding.name", "Acme <Sign-in>")).merge(("branding.stylesheet", css_path.as_str()))
    })
    .await;
    app.create_user("alice", PASSWORD).await;
    for uri in ["/", "/login", "/no/such/page"] {
        let page = app.get(uri).await.into_string().await.unwrap();
        assert!(page.contains("· Acme &lt;Sign-in&gt;</title>"), "{uri}: {page}");
        assert!(page.contains("<footer>Acme &lt;Sign-in&gt;</footer>"), "{uri}");
        assert!(
            unescape_html(&page).contains(r#"<link rel="stylesheet" href="/static/brand.css">"#),
            "{uri}"
        );
    }
    let served = app.get("/static/brand.css").await;
    assert_eq!(served.status(), Status::Ok);
    assert_eq!(served.content_type(), Some(ContentType::CSS));
    assert_eq!(served.into_string().await.unwrap(), ".brand { color: rebeccapurple; }");

    let plain = TestApp::spawn().await;
    assert_eq!(plain.get("/static/brand.css").await.status(), Status::NotFound);
    let page = plain.get("/").await.into_string().await.unwrap();
    assert!(page.contains("· Portal</title>") && !page.contains("brand.css"), "{page}");
}

#[rocket::async_test]
async fn a_missing_brand_stylesheet_refuses_to_start() {
    assert!(refuses_to_start(("branding.stylesheet", "/no/such/brand.css".into())).await);
}

#[rocket::async_test]
async fn a_script_username_is_escaped_on_every_page_that_shows_it() {
    let (dir, db) = temp_db();
    let app = TestApp::spawn_on(dir, db.clone(), |f| f).await;
    // New usernames cannot hold `<` or `>` any more, but a store may hold one from before.
    let user = app.create_user("scripted", PASSWORD).await;
    let name = "<script>alert(1)</script>";
    let rename = "UPDATE users SET username = '<script>alert(1)</script>', \
                  username_key = '<script>alert(1)</script>' WHERE id = $1";
    execute_on_store(&db, rename, user.id).await;
    app.sign_in(name, PASSWORD).await;
    for uri in ["/", "/welcome", "/logout", "/account", "/login"] {
        let response = app.get(uri).await;
        assert_eq!(response.status(), Status::Ok, "{uri}");
        let page = response.into_string().await.unwrap();
        assert!(!page.contains("<script>"), "{uri} shows markup from the username: {page}");
        assert!(page.contains("&lt;script&gt;alert(1)&lt;"), "{uri} shows the name as text: {page}");
    }
}

/// A debug build (what `cargo run` and these tests run) reloads a changed override on the
/// next request, and keeps the last working set when an edit breaks it.
#[rocket::async_test]
async fn an_edited_override_shows_on_the_next_request_and_a_broken_edit_keeps_the_last_good_one() {
    let dir = template_dir(&[("login.html.j2", CUSTOM_LOGIN)]);
    let path = dir.path().display().to_string();
    let app = TestApp::spawn_with(|f| f.merge(("template_dir", path.as_str()))).await;
    let login = app.get("/login").await.into_string().await.unwrap();
    assert!(login.contains("<h1>Acme staff sign-in</h1>"), "{login}");

    let edited = CUSTOM_LOGIN.replace("Acme staff sign-in", "Acme staff sign-in, edited");
    std::fs::write(dir.path().join("login.html.j2"), &edited).unwrap();
    let login = app.get("/login").await.into_string().await.unwrap();
    assert!(login.contains("<h1>Acme staff sign-in, edited</h1>"), "the edit shows: {login}");

    std::fs::write(
        dir.path().join("login.html.j2"),
        "{% extends \"base.html\" %}{% block content %}{{ broken",
    )
    .unwrap();
    let response = app.get("/login").await;
    assert_eq!(response.status(), Status::Ok);
    let login = response.into_string().await.unwrap();
    assert!(login.contains("<h1>Acme staff sign-in, edited</h1>"), "the last good one stays: {login}");
}
