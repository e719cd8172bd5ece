//! The admin console: the guard, each action and its event, the last-admin and own-account
//! rules, one-time password links, deletion, search and pagination (at 100,000 users too),
//! the events page, CSRF on every form, and bad input.

use rocket::http::{ContentType, Header, Status};
use serde_json::Value;

use portal_testkit::app::*;
use portal_testkit::PASSWORD;

#[rocket::async_test]
async fn the_console_is_for_administrators_only() {
    let app = TestApp::spawn().await.with_root().await;
    let bob = app.create_user("bob", PASSWORD).await;
    let bob_page = format!("/admin/users/{}", bob.id);
    let pages = ["/admin", bob_page.as_str(), "/admin/users/new", "/admin/events"];

    for page in pages {
        let response = app.get(page).await;
        assert_eq!(response.status(), Status::SeeOther, "{page}");
        assert!(location(&response).unwrap().starts_with("/login"), "{page}");
    }
    assert_is_redirect_to(&app.get("/admin").await, "/login?next=%2Fadmin");
    let api = app.get("/api/admin/users").await;
    assert_eq!(api.status(), Status::Unauthorized);
    assert_eq!(json(api).await["error"], "not signed in");

    app.sign_in("bob", PASSWORD).await;
    for page in pages {
        let response = app.get(page).await;
        assert_eq!(response.status(), Status::Forbidden, "{page}");
        assert!(body(response).await.contains("That request was refused."), "{page}");
    }
    let refused = app.post_form("/admin/users/1/disable", &[]).await;
    assert_eq!(refused.status(), Status::Forbidden);
    let api = app.get("/api/admin/users?q=b").await;
    assert_eq!(api.status(), Status::Forbidden);
    assert_eq!(json(api).await, serde_json::json!({ "error": "forbidden" }));
    assert!(!body(app.get("/").await).await.contains("href=\"/admin\""), "no Admin link for bob");

    app.sign_in("root", PASSWORD).await;
    for page in pages {
        assert_eq!(app.get(page).await.status(), Status::Ok, "{page}");
    }
    assert!(body(app.get("/").await).await.contains("href=\"/admin\""), "the top bar links the console");
    let api = json(app.get("/api/admin/users?q=B").await).await;
    assert_eq!(
        api["users"],
        serde_json::json!([{
            "id": bob.id, "username": "bob", "email": null, "admin": false, "disabled": false,
            "created_at": START, "last_sign_in_at": START, "providers": [], "live_sessions": 1
        }])
    );
}

#[rocket::async_test]
async fn a_role_removed_a_moment_ago_is_refused_at_the_action_too() {
    let (app, root) = TestApp::spawn_admin().await;
    let other = app.create_admin("other").await;
    let bob = app.create_user("bob", PASSWORD).await;
    let page = body(app.get(&format!("/admin/users/{}", bob.id)).await).await;
    let token = extract_hidden(&page, "csrf_token").unwrap();
    // Another administrator removes root's role; the guard's cached copy may not know yet,
    // the operation reads the store.
    let by = portal::auth::admin::Operator::cli();
    app.auth().set_user_admin(&by, root.id, false).await.unwrap();
    let response = app
        .client
        .post(format!("/admin/users/{}/disable", bob.id))
        .header(ContentType::Form)
        .body(form_body(&[("csrf_token", &token)]))
        .dispatch()
        .await;
    assert_eq!(response.status(), Status::Forbidden);
    assert!(!app.store().user_by_id(bob.id).await.unwrap().unwrap().disabled);
    let _ = other;
}

#[rocket::async_test]
async fn disabling_signs_the_user_out_everywhere_and_enabling_lets_them_back() {
    let (app, root) = TestApp::spawn_admin().await;
    let bob = app.create_user("bob", PASSWORD).await;
    let bob_cookie = {
        // Bob signs in elsewhere: his cookie, kept apart from the admin's browser.
        let token = app.csrf_token().await;
        let fields = [("csrf_token", token.as_str()), ("username", "bob"), ("password", PASSWORD)];
        let response =
            app.client.post("/login").header(ContentType::Form).body(form_body(&fields)).dispatch().await;
        session_cookie(&response).unwrap()
    };
    app.sign_in("root", PASSWORD).await;
    assert_eq!(app.get_with_cookie("/welcome", bob_cookie.clone()).await.status(), Status::Ok);
    app.sign_in("root", PASSWORD).await;

    let response = app.post_form(&format!("/admin/users/{}/disable", bob.id), &[]).await;
    assert_is_redirect_to(&response, &format!("/admin/users/{}", bob.id));
    assert!(app
        .flash(&format!("/admin/users/{}", bob.id))
        .await
        .contains("bob is disabled and signed out everywhere."));
    assert_eq!(app.last_event().await, ("user_disabled".into(), root.id.to_string(), Some(bob.id)));
    assert!(app.store().sessions_of(bob.id).await.unwrap().is_empty());
    assert_is_redirect_to(&app.get_with_cookie("/welcome", bob_cookie).await, "/login?next=%2Fwelcome");
    app.sign_in("root", PASSWORD).await;
    assert_eq!(app.post_login("bob", PASSWORD).await.status(), Status::Forbidden, "disabled");

    app.sign_in("root", PASSWORD).await;
    let response = app.post_form(&format!("/admin/users/{}/enable", bob.id), &[]).await;
    assert_eq!(response.status(), Status::SeeOther);
    assert_eq!(app.last_event().await, ("user_enabled".into(), root.id.to_string(), Some(bob.id)));
    app.sign_in("bob", PASSWORD).await;
}

#[rocket::async_test]
async fn the_last_administrator_and_your_own_account_are_protected() {
    let (app, root) = TestApp::spawn_admin().await;
    let me = format!("/admin/users/{}", root.id);
    for action in ["disable", "delete", "sessions/end-all"] {
        let response = app.post_form(&format!("{me}/{action}"), &[("confirm", "yes")]).await;
        assert_is_redirect_to(&response, &me);
        assert!(app.flash(&me).await.contains("You cannot do that to your own account here"), "{action}");
    }
    let response = app.post_form(&format!("{me}/remove-admin"), &[]).await;
    assert_is_redirect_to(&response, &me);
    assert!(app.flash(&me).await.contains("That would leave no enabled administrator"));
    let root_now = app.store().user_by_id(root.id).await.unwrap().unwrap();
    assert!(root_now.is_admin && !root_now.disabled);

    // A second administrator may step down, or be disabled, while root remains.
    let other = app.create_admin("other").await;
    let response = app.post_form(&format!("/admin/users/{}/disable", other.id), &[]).await;
    assert_eq!(response.status(), Status::SeeOther);
    // Root is now the only *enabled* administrator: removing their role is still refused.
    let response = app.post_form(&format!("{me}/remove-admin"), &[]).await;
    assert_eq!(response.status(), Status::SeeOther);
    assert!(app.store().user_by_id(root.id).await.unwrap().unwrap().is_admin);
    app.post_form(&format!("/admin/users/{}/enable", other.id), &[]).await;
    app.post_form(&format!("{me}/remove-admin"), &[]).await;
    assert!(!app.store().user_by_id(root.id).await.unwrap().unwrap().is_admin, "with another admin, it goes");
    assert_eq!(app.last_event().await, ("admin_revoked".into(), root.id.to_string(), Some(root.id)));
    assert_eq!(app.get("/admin").await.status(), Status::Forbidden, "and the console closes at once");

    // The command line follows the same rule.
    let by = portal::auth::admin::Operator::cli();
    let refused = app.auth().set_user_admin(&by, other.id, false).await;
    assert!(matches!(refused, Err(portal::auth::admin::AdminError::LastAdmin)), "{refused:?}");
    let refused = app.auth().delete_user(&by, other.id).await;
    assert!(matches!(refused, Err(portal::auth::admin::AdminError::LastAdmin)), "{refused:?}");
}

#[rocket::async_test]
async fn making_and_removing_an_admin_is_recorded() {
    let (app, root) = TestApp::spawn_admin().await;
    let bob = app.create_user("bob", PASSWORD).await;
    app.post_form(&format!("/admin/users/{}/make-admin", bob.id), &[]).await;
    assert!(app.store().user_by_id(bob.id).await.unwrap().unwrap().is_admin);
    assert_eq!(app.last_event().await, ("admin_granted".into(), root.id.to_string(), Some(bob.id)));
    app.post_form(&format!("/admin/users/{}/remove-admin", bob.id), &[]).await;
    assert!(!app.store().user_by_id(bob.id).await.unwrap().unwrap().is_admin);
    assert_eq!(app.last_event().await, ("admin_revoked".into(), root.id.to_string(), Some(bob.id)));
}

#[rocket::async_test]
async fn deleting_a_user_takes_their_identities_sessions_and_links_and_keeps_their_history() {
    let (app, root) = TestApp::spawn_admin().await;
    let bob = app.create_user("bob", PASSWORD).await;
    app.store().link_identity(bob.id, "github", "4242", Some("bob@users.example"), START).await.unwrap();
    let bob_cookie = {
        let token = app.csrf_token().await;
        let fields = [("csrf_token", token.as_str()), ("username", "bob"), ("password", PASSWORD)];
        let response =
            app.client.post("/login").header(ContentType::Form).body(form_body(&fields)).dispatch().await;
        session_cookie(&response).unwrap()
    };
    app.sign_in("root", PASSWORD).await;
    let page = body(app.post_form(&format!("/admin/users/{}/reset-link", bob.id), &[]).await).await;
    let link = link_in(&page);

    let unconfirmed = app.post_form(&format!("/admin/users/{}/delete", bob.id), &[]).await;
    assert_eq!(unconfirmed.status(), Status::SeeOther);
    assert!(app.store().user_by_id(bob.id).await.unwrap().is_some(), "not without the box ticked");

    let response = app.post_form(&format!("/admin/users/{}/delete", bob.id), &[("confirm", "yes")]).await;
    assert_is_redirect_to(&response, "/admin");
    assert!(app.flash("/admin").await.contains("bob is deleted."));
    assert!(app.store().user_by_id(bob.id).await.unwrap().is_none());
    assert!(app.store().identities(bob.id).await.unwrap().is_empty());
    assert!(app.store().user_by_identity("github", "4242").await.unwrap().is_none());
    assert!(app.store().sessions_of(bob.id).await.unwrap().is_empty());
    assert_eq!(app.store().count_sessions().await.unwrap(), 2, "root's two sign-ins; bob's session row went");
    assert_eq!(app.get(&link).await.status(), Status::NotFound, "the link went too");
    assert_is_redirect_to(&app.get_with_cookie("/welcome", bob_cookie).await, "/login?next=%2Fwelcome");
    app.sign_in("root", PASSWORD).await;

    // The audit log keeps what happened to bob, under his id and name.
    let all = app.store().recent_events(100).await.unwrap();
    let deleted =
        all.iter().find(|e| e.kind == "user_deleted" && e.subject_name.as_deref() == Some("bob")).unwrap();
    assert_eq!(
        (deleted.kind.as_str(), deleted.actor.as_str()),
        ("user_deleted", root.id.to_string().as_str())
    );
    assert_eq!((deleted.subject_user_id, deleted.subject_name.as_deref()), (Some(bob.id), Some("bob")));
    let about_bob = all.iter().filter(|e| e.subject_user_id == Some(bob.id)).count();
    assert!(about_bob >= 3, "sign-in, link, deletion: {all:?}");
    let page = body(app.get("/admin/events?user=bob").await).await;
    assert!(page.contains("user deleted") && page.contains("password reset link created"), "{page}");
    assert_eq!(app.get(&format!("/admin/users/{}", bob.id)).await.status(), Status::NotFound);
}

#[rocket::async_test]
async fn a_reset_link_sets_a_password_once_ends_other_sessions_and_signs_in() {
    let (app, root) = TestApp::spawn_admin().await;
    let bob = app.create_user("bob", PASSWORD).await;
    let alice = app.create_user("alice", PASSWORD).await;
    let bob_cookie = {
        let token = app.csrf_token().await;
        let fields = [("csrf_token", token.as_str()), ("username", "bob"), ("password", PASSWORD)];
        let response =
            app.client.post("/login").header(ContentType::Form).body(form_body(&fields)).dispatch().await;
        session_cookie(&response).unwrap()
    };
    app.sign_in("root", PASSWORD).await;
    let first =
        link_in(&body(app.post_form(&format!("/admin/users/{}/reset-link", bob.id), &[]).await).await);
    let response = app.post_form(&format!("/admin/users/{}/reset-link", bob.id), &[]).await;
    assert_eq!(response.status(), Status::Created);
    let page = body(response).await;
    assert!(page.contains("Password link for bob") && page.contains("Earlier links for bob no longer work"));
    let link = link_in(&page);
    assert_eq!(link.len(), "/reset/".len() + 43, "256 bits, base64url");
    assert_eq!(app.last_event().await, ("reset_link_created".into(), root.id.to_string(), Some(bob.id)));
    assert!(app.get(&first).await.status() == Status::NotFound, "the newer link replaces the older");
    // The admin's own sign-in is untouched by making a link; bob's password still works.
    assert_eq!(app.get("/admin").await.status(), Status::Ok);

    // Bob opens it (in his own browser; here the admin's is signed out first).
    app.post_logout().await;
    let form = app.get(&link).await;
    assert_eq!(form.status(), Status::Ok);
    let html = body(form).await;
    assert!(html.contains("name=\"new_password\"") && html.contains("name=\"confirm_password\""), "{html}");
    assert!(html.contains("For <strong>bob</strong>"));
    let token = extract_hidden(&html, "csrf_token").unwrap();
    let submit = |fields: Vec<(&'static str, String)>| {
        let mut all = vec![("csrf_token", token.clone())];
        all.extend(fields);
        let pairs: Vec<(&str, &str)> = all.iter().map(|(k, v)| (*k, v.as_str())).collect();
        app.client.post(link.clone()).header(ContentType::Form).body(form_body(&pairs)).dispatch()
    };
    let short = submit(vec![("new_password", "short".into()), ("confirm_password", "short".into())]).await;
    assert_eq!(short.status(), Status::UnprocessableEntity);
    assert!(body(short).await.contains("Use at least 8 characters."));
    let differ =
        submit(vec![("new_password", "a new passphrase".into()), ("confirm_password", "another".into())])
            .await;
    assert!(body(differ).await.contains("differ"));
    // The form names no user: a `username` field changes nothing about whose password it is.
    let new = "bob's brand new passphrase";
    let done = submit(vec![
        ("new_password", new.into()),
        ("confirm_password", new.into()),
        ("username", "alice".into()),
    ])
    .await;
    assert_is_redirect_to(&done, "/");
    assert!(session_cookie(&done).is_some(), "signed in");
    let welcome = body(app.get("/welcome").await).await;
    assert!(welcome.contains("Signed in as <strong>bob</strong>"), "{welcome}");

    // Bob's old session ended; his old password no longer works; alice's is untouched.
    assert_is_redirect_to(&app.get_with_cookie("/welcome", bob_cookie).await, "/login?next=%2Fwelcome");
    assert_eq!(app.post_login("bob", PASSWORD).await.status(), Status::Ok, "the old password fails");
    app.sign_in("bob", new).await;
    app.sign_in("alice", PASSWORD).await;
    let _ = alice;

    // Once only.
    let again = app.get(&link).await;
    assert_eq!(again.status(), Status::NotFound);
    assert!(body(again).await.contains("This link does not work"));
    let kinds: Vec<String> = app.events().await.into_iter().map(|(k, ..)| k).collect();
    assert!(kinds.contains(&"reset_link_used".to_owned()), "{kinds:?}");

    // Neither the token nor the passwords are in the audit log.
    let token = &link["/reset/".len()..];
    for e in app.store().recent_events(1000).await.unwrap() {
        let row = format!("{e:?}");
        assert!(!row.contains(token) && !row.contains(new) && !row.contains("passphrase"), "{row}");
    }
}

#[rocket::async_test]
async fn reset_links_expire_and_tampered_ones_do_nothing() {
    let (app, _root) = TestApp::spawn_admin().await;
    let bob = app.create_user("bob", PASSWORD).await;
    let link = link_in(&body(app.post_form(&format!("/admin/users/{}/reset-link", bob.id), &[]).await).await);

    // Tampered: one character changed; a wrong length; not base64url.
    let mut tampered = link.clone().into_bytes();
    let last = tampered.len() - 1;
    tampered[last] = if tampered[last] == b'A' { b'B' } else { b'A' };
    let tampered = String::from_utf8(tampered).unwrap();
    for bad in [tampered.as_str(), &link[..link.len() - 1], "/reset/..%2F..", "/reset/x"] {
        let response = app.get(bad).await;
        assert_eq!(response.status(), Status::NotFound, "{bad}");
    }
    let token = app.csrf_token().await;
    let fields = [("csrf_token", token.as_str()), ("new_password", "a brand new passphrase")];
    let response =
        app.client.post(tampered.clone()).header(ContentType::Form).body(form_body(&fields)).dispatch().await;
    assert_eq!(response.status(), Status::NotFound);

    // A day later, the real one has expired.
    app.clock.advance(24 * 3600);
    assert_eq!(app.get(&link).await.status(), Status::NotFound);
    let response =
        app.client.post(link.clone()).header(ContentType::Form).body(form_body(&fields)).dispatch().await;
    assert_eq!(response.status(), Status::NotFound);
    app.sign_in("bob", PASSWORD).await;

    // A disabled user's link does not let them in.
    app.sign_in("root", PASSWORD).await;
    let link = link_in(&body(app.post_form(&format!("/admin/users/{}/reset-link", bob.id), &[]).await).await);
    app.post_form(&format!("/admin/users/{}/disable", bob.id), &[]).await;
    assert_eq!(app.get(&link).await.status(), Status::Forbidden);
}

#[rocket::async_test]
async fn an_admin_creates_a_user_who_sets_their_own_password() {
    let (app, root) = TestApp::spawn_admin().await;
    let form = body(app.get("/admin/users/new").await).await;
    assert!(
        form.contains("name=\"username\"")
            && form.contains("name=\"email\"")
            && form.contains("name=\"admin\"")
    );
    let response = app
        .post_form("/admin/users", &[("username", "Dana"), ("email", "Dana@Example.com"), ("admin", "on")])
        .await;
    assert_eq!(response.status(), Status::Created);
    let page = body(response).await;
    assert!(page.contains("Dana is created"), "{page}");
    let link = link_in(&page);
    let dana = app.store().user_by_username("dana").await.unwrap().unwrap();
    assert!(dana.is_admin && dana.email.as_deref() == Some("Dana@Example.com"));
    assert!(!app.store().has_password(dana.id).await.unwrap(), "no password chosen by the admin");
    let kinds: Vec<_> = app.events().await.into_iter().rev().take(2).collect();
    assert_eq!(kinds[1], ("user_created".into(), root.id.to_string(), Some(dana.id)));
    assert_eq!(kinds[0], ("reset_link_created".into(), root.id.to_string(), Some(dana.id)));

    // Mistakes get the form again, with what was typed.
    let taken = app.post_form("/admin/users", &[("username", "DANA")]).await;
    assert_eq!(taken.status(), Status::Conflict);
    assert!(body(taken).await.contains("That username is taken."));
    let bad_email =
        app.post_form("/admin/users", &[("username", "erin"), ("email", "erin-at-example")]).await;
    assert_eq!(bad_email.status(), Status::UnprocessableEntity);
    let html = body(bad_email).await;
    assert!(html.contains("That is not an email address.") && html.contains("value=\"erin\""), "{html}");
    let bad_name = app.post_form("/admin/users", &[("username", "two words")]).await;
    assert_eq!(bad_name.status(), Status::UnprocessableEntity);
    let huge = "x".repeat(10_000);
    assert!(app.post_form("/admin/users", &[("username", &huge)]).await.status().class().is_client_error());
    assert!(app.store().user_by_username("erin").await.unwrap().is_none());

    // Dana follows the link, chooses a password, and is in.
    app.post_logout().await;
    let html = body(app.get(&link).await).await;
    let token = extract_hidden(&html, "csrf_token").unwrap();
    let chosen = "dana's own passphrase";
    let fields = [("csrf_token", token.as_str()), ("new_password", chosen), ("confirm_password", chosen)];
    let done =
        app.client.post(link.clone()).header(ContentType::Form).body(form_body(&fields)).dispatch().await;
    assert_is_redirect_to(&done, "/");
    assert!(body(app.get("/admin").await).await.contains("<h1>Users</h1>"), "dana is an admin, signed in");
    app.sign_in("dana", chosen).await;
}

/// Users named user000 … user119, with emails mail000@… (no password: fast to create).
async fn many_users(app: &TestApp, n: usize) {
    for i in 0..n {
        let name = format!("user{i:03}");
        let email = format!("Mail{i:03}@example.com");
        let new = portal::store::NewUser {
            username: &name,
            email: Some(&email),
            password_hash: None,
            is_admin: false,
        };
        app.store().create_user(new, START).await.unwrap();
    }
}

fn usernames(v: &Value) -> Vec<String> {
    v["users"].as_array().unwrap().iter().map(|u| u["username"].as_str().unwrap().to_owned()).collect()
}

#[rocket::async_test]
async fn the_users_list_pages_and_searches_at_its_edges() {
    let (app, _root) = TestApp::spawn_admin().await;
    many_users(&app, 120).await;

    // Pages of 50 in username order: root comes after user119.
    let first = json(app.get("/api/admin/users").await).await;
    let names = usernames(&first);
    assert_eq!((names.len(), names[0].as_str(), names[49].as_str()), (50, "root", "user048"));
    assert!(first["previous"].is_null());
    let next = first["next"].as_str().unwrap().to_owned();
    let second = json(app.get(&format!("/api/admin/users?after={next}")).await).await;
    assert_eq!(usernames(&second)[0], "user049");
    let third =
        json(app.get(&format!("/api/admin/users?after={}", second["next"].as_str().unwrap())).await).await;
    assert_eq!(usernames(&third).len(), 21);
    assert_eq!(usernames(&third).last().unwrap(), "user119");
    assert!(third["next"].is_null(), "the last page");
    let back =
        json(app.get(&format!("/api/admin/users?before={}", third["previous"].as_str().unwrap())).await)
            .await;
    assert_eq!(usernames(&back), usernames(&second), "previous gives the page before, in order");
    let back =
        json(app.get(&format!("/api/admin/users?before={}", back["previous"].as_str().unwrap())).await).await;
    assert_eq!(usernames(&back), names);
    assert!(back["previous"].is_null(), "the first page again");

    // Search by username or email prefix, any case; a page size from 1 to 100.
    let found = json(app.get("/api/admin/users?q=USER01&limit=100").await).await;
    assert_eq!(usernames(&found), (10..20).map(|i| format!("user{i:03}")).collect::<Vec<_>>());
    let found = json(app.get("/api/admin/users?q=mail11").await).await;
    assert_eq!(usernames(&found).len(), 10);
    let found = json(app.get("/api/admin/users?q=mail119%40EXAMPLE").await).await;
    assert_eq!(usernames(&found), ["user119"]);
    let one = json(app.get("/api/admin/users?limit=1&q=user").await).await;
    assert_eq!((usernames(&one).len(), one["next"].as_str()), (1, Some("user000")));
    let none = json(app.get("/api/admin/users?q=nobody").await).await;
    assert_eq!((none["users"].as_array().unwrap().len(), none["next"].is_null()), (0, true));
    let past_the_end = json(app.get("/api/admin/users?after=zzzz").await).await;
    assert!(past_the_end["users"].as_array().unwrap().is_empty());
    let odd = json(app.get("/api/admin/users?q=%25_%27%22%5C").await).await;
    assert!(odd["users"].as_array().unwrap().is_empty(), "no wildcards, no quoting trouble");

    for bad in ["limit=0", "limit=101", "limit=-5", "limit=abc", "limit=99999999999999999999"] {
        let response = app.get(&format!("/api/admin/users?{bad}")).await;
        assert_eq!(response.status(), Status::UnprocessableEntity, "{bad}");
        assert!(json(response).await["error"].as_str().unwrap().contains("limit"), "{bad}");
    }
    let huge = "a".repeat(300);
    assert_eq!(app.get(&format!("/api/admin/users?q={huge}")).await.status(), Status::UnprocessableEntity);

    // The page: the same list, links to the pages either side, and a clear empty state.
    let html = body(app.get("/admin").await).await;
    let user000 = app.store().user_by_username("user000").await.unwrap().unwrap().id;
    assert!(html.contains(&format!("href=\"/admin/users/{user000}\">user000</a>")), "{html}");
    assert!(html.contains("rel=\"next\"") && !html.contains("rel=\"prev\""));
    let html = body(app.get("/admin?after=user048").await).await;
    assert!(html.contains(">user049</a>") && html.contains("rel=\"prev\"") && html.contains("rel=\"next\""));
    let html = body(app.get("/admin?q=zz%3Cb%3E").await).await;
    assert!(html.contains("No user’s name or email starts with “zz&lt;b&gt;”."), "{html}");
    assert_eq!(app.get(&format!("/admin?q={huge}")).await.status(), Status::BadRequest);
    assert_eq!(app.get("/admin?before=").await.status(), Status::Ok);
    let status = app.get("/admin?q=%FF%FE&after=%C0").await.status();
    assert!(status == Status::Ok || status.class().is_client_error(), "not UTF-8: {status}");
}

#[rocket::async_test]
async fn a_hundred_thousand_users_are_searched_and_paged_through_indexes() {
    use sqlx::Connection;
    let (dir, url) = temp_db();
    let app = TestApp::spawn_on(dir, url.clone(), |f| f).await.with_root().await;
    app.sign_in("root", PASSWORD).await;
    // 100,000 users in one statement, written straight to the store.
    if on_postgres() {
        let pool = sqlx::PgPool::connect(&url).await.unwrap();
        sqlx::query(
            "INSERT INTO users (username, username_key, email, email_key, created_at)
             SELECT 'u' || lpad(i::text, 5, '0'), 'u' || lpad(i::text, 5, '0'),
                    'm' || lpad(i::text, 5, '0') || '@example.com', 'm' || lpad(i::text, 5, '0') || '@example.com', 0
             FROM generate_series(0, 99999) i",
        )
        .execute(&pool)
        .await
        .unwrap();
        sqlx::query("ANALYZE users").execute(&pool).await.unwrap();
        pool.close().await;
    } else {
        let mut conn = sqlx::SqliteConnection::connect(&url).await.unwrap();
        let mut tx = conn.begin().await.unwrap();
        sqlx::query(
            "WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i < 99999)
             INSERT INTO users (username, username_key, email, email_key, created_at)
             SELECT printf('u%05d', i), printf('u%05d', i), printf('m%05d@example.com', i),
                    printf('m%05d@example.com', i), 0 FROM n",
        )
        .execute(&mut *tx)
        .await
        .unwrap();
        tx.commit().await.unwrap();
        conn.close().await.unwrap();
    }
    assert_eq!(app.store().count_users().await.unwrap(), 100_001);

    if on_postgres() {
        // PostgreSQL's planner picks by its statistics (a prefix matching every row may
        // rightly scan): a narrow prefix must use an index.
        use portal::store::UserSearch;
        let search = UserSearch { prefix: Some("u1234".into()), cursor: None, limit: 50 };
        let plan = app.store().explain_search_users(&search).await.unwrap();
        assert!(plan.iter().any(|l| l.contains("Index") && l.contains("users")), "{plan:?}");
        assert!(plan.iter().all(|l| !l.contains("Seq Scan on users")), "{plan:?}");
    } else {
        // Every step of a search reads an index range: no scan of the table, whatever the
        // prefix and cursor.
        use portal::store::{Cursor, UserSearch};
        for (prefix, cursor) in [
            (Some("u5"), None),
            (Some("m123"), Some(Cursor::After("u12300".into()))),
            (Some("u"), Some(Cursor::Before("u50000".into()))),
        ] {
            let search = UserSearch { prefix: prefix.map(str::to_owned), cursor, limit: 50 };
            let plan = app.store().explain_search_users(&search).await.unwrap();
            let reads: Vec<&String> = plan.iter().filter(|l| l.contains("users")).collect();
            assert_eq!(reads.len(), 2, "{plan:?}");
            for line in reads {
                assert!(line.starts_with("SEARCH users USING") && line.contains("INDEX"), "{plan:?}");
            }
        }
        let plain = UserSearch { prefix: None, cursor: Some(Cursor::After("u99990".into())), limit: 50 };
        let plan = app.store().explain_search_users(&plain).await.unwrap();
        assert!(plan.iter().all(|l| !l.contains("TEMP B-TREE")), "the index gives the order: {plan:?}");
        assert!(plan.iter().any(|l| l.starts_with("SEARCH users USING") && l.contains("INDEX")), "{plan:?}");
    }

    // And the answers are right at the edges.
    let page = json(app.get("/api/admin/users?q=u9999&limit=100").await).await;
    assert_eq!(usernames(&page), (99990..100000).map(|i| format!("u{i:05}")).collect::<Vec<_>>());
    let page = json(app.get("/api/admin/users?q=m0421&limit=100").await).await;
    assert_eq!(usernames(&page).len(), 10);
    let page = json(app.get("/api/admin/users?q=u5&limit=100").await).await;
    assert_eq!((usernames(&page).len(), page["next"].as_str()), (100, Some("u50099")));
    let last = json(app.get("/api/admin/users?after=u99950&limit=100").await).await;
    assert_eq!(usernames(&last).len(), 49, "u99951 … u99999");
    assert!(last["next"].is_null());
    let html = body(app.get("/admin?q=u4242").await).await;
    assert!(html.contains(">u42420</a>") && html.contains(">u42429</a>"));
}

#[rocket::async_test]
async fn the_events_page_filters_by_user_kind_and_time_and_pages() {
    let (app, root) = TestApp::spawn_admin().await;
    let bob = app.create_user("bob", PASSWORD).await;
    for _ in 0..3 {
        app.post_login("bob", "wrong password").await;
    }
    app.clock.advance(3600);
    app.sign_in("root", PASSWORD).await;
    app.post_form(&format!("/admin/users/{}/disable", bob.id), &[]).await;

    let page = body(app.get("/admin/events?user=bob").await).await;
    assert_eq!(page.matches("<tr class=\"event-").count(), 4, "{page}");
    assert!(page.contains("user disabled") && page.contains("sign-in failed"));
    let page = body(app.get("/admin/events?user=BOB&kind=sign_in_failed").await).await;
    assert_eq!(page.matches("<tr class=\"event-").count(), 3);
    let since = portal::when::rfc3339(START + 1800);
    let page = body(app.get(&format!("/admin/events?user=bob&since={since}")).await).await;
    assert_eq!(page.matches("<tr class=\"event-").count(), 1, "only the disabling");
    let page = body(app.get(&format!("/admin/events?user=bob&until={since}")).await).await;
    assert_eq!(page.matches("<tr class=\"event-").count(), 3);
    let page = body(app.get("/admin/events?since=10m").await).await;
    assert!(page.contains("<td>user disabled</td>") && !page.contains("<td>sign-in failed</td>"), "{page}");
    let page = body(app.get("/admin/events?user=nobody").await).await;
    assert!(page.contains("No events match."));

    for bad in ["since=yesterday", "kind=nonsense", "before=abc", "until=2027-13-45"] {
        let response = app.get(&format!("/admin/events?{bad}")).await;
        assert_eq!(response.status(), Status::BadRequest, "{bad}");
        assert!(body(response).await.contains("<strong>Error:</strong>"), "{bad}");
    }
    assert_eq!(
        app.get(&format!("/admin/events?user={}", "x".repeat(300))).await.status(),
        Status::BadRequest
    );

    // Pages of 50, newest first, through the "Older" link (and the API's cursor): sixty
    // more failures (written straight to the log: the throttle would stop a real flood).
    for i in 0..60 {
        let detail = format!(r#"{{"method":"password","username":"ghost{i}"}}"#);
        let event = portal::store::NewEvent {
            at: app.auth().now(),
            kind: "sign_in_failed",
            actor: "anonymous",
            subject: None,
            subject_name: None,
            ip: Some("192.0.2.9"),
            client: None,
            detail: &detail,
        };
        app.store().record_event(event).await.unwrap();
    }
    let page = body(app.get("/admin/events?kind=sign_in_failed").await).await;
    assert_eq!(page.matches("<tr class=\"event-").count(), 50);
    let page = unescape_html(&page);
    let older = page.split("href=\"").find(|s| s.starts_with("/admin/events?before=")).unwrap();
    let older = older.split('"').next().unwrap().to_owned();
    let page = body(app.get(&older).await).await;
    assert_eq!(page.matches("<tr class=\"event-").count(), 13, "63 failures in all");
    assert!(!page.contains("rel=\"next\""));

    let api = json(app.get("/api/admin/events?kind=sign_in_failed&limit=60").await).await;
    assert_eq!(api["events"].as_array().unwrap().len(), 60);
    let next = api["next"].as_str().unwrap().to_owned();
    let rest = json(app.get(&format!("/api/admin/events?kind=sign_in_failed&before={next}")).await).await;
    assert_eq!(rest["events"].as_array().unwrap().len(), 3);
    assert!(rest["next"].is_null());
    let first = &json(app.get("/api/admin/events?user=bob&limit=1").await).await["events"][0];
    assert_eq!(first["kind"], "user_disabled");
    assert_eq!(
        (first["actor"].as_str(), first["actor_name"].as_str()),
        (Some(root.id.to_string().as_str()), Some("root"))
    );
    assert_eq!(first["subject_name"], "bob");
    for bad in ["since=abc", "kind=nope", "before=1", "limit=0"] {
        assert_eq!(
            app.get(&format!("/api/admin/events?{bad}")).await.status(),
            Status::UnprocessableEntity,
            "{bad}"
        );
    }
}

#[rocket::async_test]
async fn every_console_form_needs_its_csrf_token_and_the_same_origin() {
    let (app, _root) = TestApp::spawn_admin().await;
    let bob = app.create_user("bob", PASSWORD).await;
    let id = bob.id;
    let forms = [
        format!("/admin/users/{id}/disable"),
        format!("/admin/users/{id}/enable"),
        format!("/admin/users/{id}/make-admin"),
        format!("/admin/users/{id}/remove-admin"),
        format!("/admin/users/{id}/reset-link"),
        format!("/admin/users/{id}/delete"),
        format!("/admin/users/{id}/sessions/end-all"),
        format!("/admin/users/{id}/sessions/abc/end"),
        "/admin/users".to_owned(),
    ];
    let before = app.store().recent_events(1000).await.unwrap().len();
    for uri in &forms {
        let fields = [("confirm", "yes"), ("username", "mallory")];
        let response =
            app.client.post(uri.clone()).header(ContentType::Form).body(form_body(&fields)).dispatch().await;
        assert_eq!(response.status(), Status::Forbidden, "no token: {uri}");
        let token = app.csrf_token().await;
        let fields = [("csrf_token", token.as_str()), ("confirm", "yes"), ("username", "mallory")];
        let response = app
            .client
            .post(uri.clone())
            .header(ContentType::Form)
            .header(Header::new("Origin", "https://evil.example"))
            .body(form_body(&fields))
            .dispatch()
            .await;
        assert_eq!(response.status(), Status::Forbidden, "cross-site: {uri}");
    }
    let bob_now = app.store().user_by_id(id).await.unwrap().unwrap();
    assert!(!bob_now.disabled && !bob_now.is_admin, "nothing changed");
    assert!(app.store().user_by_username("mallory").await.unwrap().is_none());
    assert_eq!(app.store().recent_events(1000).await.unwrap().len(), before, "nothing recorded");

    // The API's changes: same-origin only.
    let evil = Header::new("Origin", "https://evil.example");
    let response = app.client.delete(format!("/api/admin/users/{id}")).header(evil.clone()).dispatch().await;
    assert_eq!(response.status(), Status::Forbidden);
    let response = app.client.delete(format!("/api/admin/users/{id}")).dispatch().await;
    assert_eq!(response.status(), Status::Forbidden, "neither Origin nor Sec-Fetch-Site");
    let response = app
        .client
        .patch(format!("/api/admin/users/{id}"))
        .header(ContentType::JSON)
        .header(Header::new("Sec-Fetch-Site", "cross-site"))
        .body(r#"{"disabled":true}"#)
        .dispatch()
        .await;
    assert_eq!(response.status(), Status::Forbidden);
    assert!(app.store().user_by_id(id).await.unwrap().is_some());
    assert!(!app.store().user_by_id(id).await.unwrap().unwrap().disabled);
}

#[rocket::async_test]
async fn bad_input_gets_a_clear_4xx_never_a_5xx() {
    let (app, root) = TestApp::spawn_admin().await;
    let gets = [
        "/admin/users/999999",
        "/admin/users/abc",
        "/admin/users/-1",
        "/admin/users/99999999999999999999999",
        "/admin?after=%00",
        "/api/admin/users/999999",
        "/api/admin/users/abc",
        "/api/admin/events?since=99999999999999999999",
        "/reset/%00",
    ];
    for uri in gets {
        let status = app.get(uri).await.status();
        assert!(status.class().is_client_error() || status == Status::Ok, "{uri}: {status}");
    }
    assert_eq!(app.get("/admin/users/999999").await.status(), Status::NotFound);
    assert_eq!(app.get("/api/admin/users/999999").await.status(), Status::NotFound);
    for uri in ["/admin/users/999999/disable", "/admin/users/999999/reset-link", "/admin/users/abc/disable"] {
        let status = app.post_form(uri, &[("confirm", "yes")]).await.status();
        assert!(status.class().is_client_error() || status == Status::SeeOther, "{uri}: {status}");
    }
    let response = app.post_form("/admin/users/999999/disable", &[]).await;
    assert_is_redirect_to(&response, "/admin");
    assert!(app.flash("/admin").await.contains("There is no such user"));

    // The API with broken bodies.
    let api = |method: rocket::http::Method, uri: &str, body: &str| {
        app.client
            .req(method, uri.to_owned())
            .header(ContentType::JSON)
            .header(same_origin())
            .body(body)
            .dispatch()
    };
    use rocket::http::Method::{Delete, Patch, Post};
    for (method, uri, body) in [
        (Post, "/api/admin/users", "not json"),
        (Post, "/api/admin/users", r#"{"username": 5}"#),
        (Post, "/api/admin/users", r#"{"username": "a", "surprise": 1}"#),
        (Post, "/api/admin/users", r#"{"username": "two words"}"#),
        (Post, "/api/admin/users", r#"{"username": "ok", "email": "nope"}"#),
        (Patch, "/api/admin/users/2", r#"{"disabled": "yes"}"#),
        (Patch, "/api/admin/users/999", r#"{"disabled": true}"#),
        (Delete, "/api/admin/users/999", ""),
        (Delete, "/api/admin/users/999/sessions", ""),
        (Delete, "/api/admin/users/999/sessions/xyz", ""),
        (Post, "/api/admin/users/999/reset-link", ""),
    ] {
        let response = api(method, uri, body).await;
        let status = response.status();
        assert!(status.class().is_client_error(), "{method} {uri} {body}: {status}");
        let answer = json(response).await;
        assert!(answer["error"].is_string(), "{method} {uri}: {answer}");
    }
    let response = api(Delete, &format!("/api/admin/users/{}", root.id), "").await;
    assert_eq!(response.status(), Status::Conflict, "yourself");
}

/// Shapes the OpenAPI document does not allow are refused, not read another way (both found
/// by schemathesis): a body that is an array of the fields in order, and a query parameter
/// given twice, which Rocket would read as absent.
#[rocket::async_test]
async fn the_api_reads_only_the_shapes_it_documents() {
    let (app, _) = TestApp::spawn_admin().await;
    let bob = app.create_user("bob", PASSWORD).await;
    let send = |method: rocket::http::Method, uri: String, body: &'static str| {
        app.client.req(method, uri).header(ContentType::JSON).header(same_origin()).body(body).dispatch()
    };
    use rocket::http::Method::{Patch, Post};
    let response = send(Patch, format!("/api/admin/users/{}", bob.id), "[true, true]").await;
    assert_eq!(response.status(), Status::UnprocessableEntity);
    assert!(json(response).await["error"].is_string());
    let response = send(Post, "/api/admin/users".into(), r#"["carol", null, true]"#).await;
    assert_eq!(response.status(), Status::UnprocessableEntity);
    let bob = app.store().user_by_username("bob").await.unwrap().unwrap();
    assert!(!bob.disabled && !bob.is_admin, "nothing changed");
    assert!(app.store().user_by_username("carol").await.unwrap().is_none(), "nobody was created");
    let response = send(Patch, format!("/api/admin/users/{}", bob.id), r#"{"disabled": false}"#).await;
    assert_eq!(response.status(), Status::Ok, "an object still works");

    for uri in [
        "/api/admin/users?limit=1&limit=1",
        "/api/admin/users?q=bob&q=root",
        "/api/admin/events?kind=user_created&kind=sign_in_failed",
        "/api/admin/events?limit=abc&limit=abc",
    ] {
        let response = app.get(uri).await;
        assert_eq!(response.status(), Status::UnprocessableEntity, "{uri}");
        assert!(json(response).await["error"].as_str().unwrap().contains("more than once"), "{uri}");
    }
    assert_eq!(app.get("/api/admin/users?q=bob&limit=1").await.status(), Status::Ok);
}

#[rocket::async_test]
async fn a_json_body_without_the_json_media_type_is_refused_with_415_on_every_route() {
    let (app, _) = TestApp::spawn_admin().await;
    let bob = app.create_user("bob", PASSWORD).await;
    use rocket::http::Method::{Patch, Post};
    let routes = [
        (Post, "/api/admin/users".to_owned(), r#"{"username": "mallory", "admin": true}"#),
        (Patch, format!("/api/admin/users/{}", bob.id), r#"{"admin": true}"#),
    ];
    let text_plain = ContentType::Plain;
    let form = ContentType::Form;
    let multipart = ContentType::new("multipart", "form-data");
    for (method, uri, body) in &routes {
        for content_type in [Some(&text_plain), Some(&form), Some(&multipart), None] {
            let mut request = app.client.req(*method, uri.clone()).header(same_origin()).body(*body);
            if let Some(content_type) = content_type {
                request = request.header(content_type.clone());
            }
            let response = request.dispatch().await;
            assert_eq!(response.status(), Status::UnsupportedMediaType, "{method} {uri} as {content_type:?}");
            assert_eq!(json(response).await["error"], "unsupported media type");
        }
    }
    assert!(app.store().user_by_username("mallory").await.unwrap().is_none(), "nobody was created");
    assert!(!app.store().user_by_username("bob").await.unwrap().unwrap().is_admin, "nothing changed");
    let charset = ContentType::parse_flexible("application/json; charset=utf-8").unwrap();
    let response = app
        .client
        .patch(format!("/api/admin/users/{}", bob.id))
        .header(charset)
        .header(same_origin())
        .body(r#"{"disabled": false}"#)
        .dispatch()
        .await;
    assert_eq!(response.status(), Status::Ok, "a charset parameter is still JSON");
}

#[rocket::async_test]
async fn a_json_body_that_names_a_key_twice_is_refused_with_400() {
    let (app, _) = TestApp::spawn_admin().await;
    let bob = app.create_user("bob", PASSWORD).await;
    let send = |method: rocket::http::Method, uri: String, body: &'static str| {
        app.client.req(method, uri).header(ContentType::JSON).header(same_origin()).body(body).dispatch()
    };
    use rocket::http::Method::{Patch, Post};
    let response =
        send(Post, "/api/admin/users".into(), r#"{"username":"mallory","admin":false,"admin":true}"#).await;
    assert_eq!(response.status(), Status::BadRequest);
    assert_eq!(json(response).await["error"], "bad request");
    let twice = r#"{"admin":false,"\u0061dmin":true}"#;
    let response = send(Patch, format!("/api/admin/users/{}", bob.id), twice).await;
    assert_eq!(response.status(), Status::BadRequest);
    let response =
        send(Patch, format!("/api/admin/users/{}", bob.id), r#"{"disabled":true,"disabled":false}"#).await;
    assert_eq!(response.status(), Status::BadRequest);
    assert!(app.store().user_by_username("mallory").await.unwrap().is_none(), "nobody was created");
    let bob = app.store().user_by_username("bob").await.unwrap().unwrap();
    assert!(!bob.is_admin && !bob.disabled, "nothing changed");
}

#[rocket::async_test]
async fn the_api_runs_the_same_operations() {
    let (app, root) = TestApp::spawn_admin().await;
    let response = app
        .client
        .post("/api/admin/users")
        .header(ContentType::JSON)
        .header(same_origin())
        .header(Header::new("Host", "portal.test:8000"))
        .body(r#"{"username": "erin", "email": "erin@example.com"}"#)
        .dispatch()
        .await;
    assert_eq!(response.status(), Status::Created);
    let created = json(response).await;
    let id = created["user"]["id"].as_i64().unwrap();
    assert_eq!(created["user"]["username"], "erin");
    let url = created["reset_link"]["url"].as_str().unwrap();
    assert!(url.starts_with("http://portal.test:8000/reset/") && url.len() == 30 + 43, "{url}");
    assert_eq!(created["reset_link"]["expires_at"].as_i64(), Some(START + 24 * 3600));

    let change = |body: &'static str| {
        app.client
            .patch(format!("/api/admin/users/{id}"))
            .header(ContentType::JSON)
            .header(same_origin())
            .body(body)
            .dispatch()
    };
    let changed = json(change(r#"{"disabled": true, "admin": true}"#).await).await;
    assert_eq!((changed["disabled"].as_bool(), changed["admin"].as_bool()), (Some(true), Some(true)));
    let detail = json(app.get(&format!("/api/admin/users/{id}")).await).await;
    assert_eq!(detail["user"]["disabled"], true);
    let kinds: Vec<&str> =
        detail["events"].as_array().unwrap().iter().map(|e| e["kind"].as_str().unwrap()).collect();
    assert_eq!(kinds, ["admin_granted", "user_disabled", "reset_link_created", "user_created"]);
    assert!(detail["events"].as_array().unwrap().iter().all(|e| e["actor_name"] == "root"));
    let refused = app
        .client
        .patch(format!("/api/admin/users/{}", root.id))
        .header(ContentType::JSON)
        .header(same_origin())
        .body(r#"{"disabled": true}"#)
        .dispatch()
        .await;
    assert_eq!(refused.status(), Status::Conflict);
    assert!(json(refused).await["error"].as_str().unwrap().contains("own account"));

    let link = json(
        app.client.post(format!("/api/admin/users/{id}/reset-link")).header(same_origin()).dispatch().await,
    )
    .await;
    assert!(link["url"].as_str().unwrap().contains("/reset/"));
    let ended = json(
        app.client.delete(format!("/api/admin/users/{id}/sessions")).header(same_origin()).dispatch().await,
    )
    .await;
    assert_eq!(ended["ended"], 0);

    // One session of someone else's: 204, then 404 (already ended); an empty id is not "all".
    let bob = app.create_user("bob", PASSWORD).await;
    let token = app.csrf_token().await;
    let fields = [("csrf_token", token.as_str()), ("username", "bob"), ("password", PASSWORD)];
    let signed_in =
        app.client.post("/login").header(ContentType::Form).body(form_body(&fields)).dispatch().await;
    let bob_cookie = session_cookie(&signed_in).unwrap();
    app.sign_in("root", PASSWORD).await;
    let sessions = app.store().sessions_of(bob.id).await.unwrap();
    assert_eq!(sessions.len(), 1);
    let one = format!("/api/admin/users/{}/sessions/{}", bob.id, sessions[0].id);
    let trailing = app
        .client
        .delete(format!("/api/admin/users/{}/sessions/", bob.id))
        .header(same_origin())
        .dispatch()
        .await;
    assert_eq!(trailing.status(), Status::NotFound);
    assert_eq!(app.store().sessions_of(bob.id).await.unwrap().len(), 1, "nothing ended");
    assert_eq!(
        app.client.delete(one.clone()).header(same_origin()).dispatch().await.status(),
        Status::NoContent
    );
    assert_eq!(app.client.delete(one).header(same_origin()).dispatch().await.status(), Status::NotFound);
    assert_is_redirect_to(&app.get_with_cookie("/welcome", bob_cookie).await, "/login?next=%2Fwelcome");
    app.sign_in("root", PASSWORD).await;
    let deleted = app.client.delete(format!("/api/admin/users/{id}")).header(same_origin()).dispatch().await;
    assert_eq!(deleted.status(), Status::NoContent);
    assert_eq!(app.get(&format!("/api/admin/users/{id}")).await.status(), Status::NotFound);
}
