//! "Elsewhere": a server of the tests' own on `127.0.0.1` (and, as another site, on
//! `localhost`), playing an attacker's site and a small SameSite laboratory.

use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, Request, ResponseTemplate};

use portal_testkit::fakes::{escape, html};

/// Another server, visited both as `127.0.0.1` and as `localhost` (two different sites).
pub struct Elsewhere {
    server: MockServer,
}

impl Elsewhere {
    pub async fn start() -> Elsewhere {
        Elsewhere { server: MockServer::start().await }
    }

    pub fn on_127(&self, route: &str) -> String {
        format!("{}{route}", self.server.uri())
    }

    pub fn on_localhost(&self, route: &str) -> String {
        self.on_127(route).replacen("127.0.0.1", "localhost", 1)
    }

    /// An attacker's page on `127.0.0.1` that, once opened, submits a login form with valid
    /// credentials to `action` (login CSRF: signing the victim in as the attacker).
    pub async fn serve_login_csrf(&self, action: &str, username: &str, password: &str) {
        let page = format!(
            r#"<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>Win a prize</title></head>
<body>
<h1>Win a prize</h1>
<form id="f" method="post" action="{action}">
<input type="hidden" name="username" value="{username}">
<input type="hidden" name="password" value="{password}">
<input type="hidden" name="next" value="/welcome">
</form>
<script>document.getElementById("f").submit();</script>
</body></html>"#,
            action = escape(action),
            username = escape(username),
            password = escape(password),
        );
        Mock::given(method("GET")).and(path("/prize")).respond_with(html(page)).mount(&self.server).await;
    }

    /// The SameSite laboratory. `/lab/start` (open it on `127.0.0.1`) links to
    /// `localhost/lab/set`, which sets a `Strict` and a `Lax` cookie and redirects to
    /// `/lab/show`, which prints the `Cookie` header it received. This is the shape of an
    /// OAuth callback: a chain begun on another site that sets a cookie and redirects.
    pub async fn serve_samesite_lab(&self) {
        let start = format!(
            r#"<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>Lab</title></head>
<body><a href="{}">Go to the other site</a></body></html>"#,
            self.on_localhost("/lab/set")
        );
        Mock::given(method("GET"))
            .and(path("/lab/start"))
            .respond_with(html(start))
            .mount(&self.server)
            .await;
        Mock::given(method("GET"))
            .and(path("/lab/set"))
            .respond_with(
                ResponseTemplate::new(303)
                    .append_header("Set-Cookie", "lab_strict=1; Path=/; HttpOnly; SameSite=Strict")
                    .append_header("Set-Cookie", "lab_lax=1; Path=/; HttpOnly; SameSite=Lax")
                    .insert_header("Location", "/lab/show"),
            )
            .mount(&self.server)
            .await;
        Mock::given(method("GET"))
            .and(path("/lab/show"))
            .respond_with(|r: &Request| {
                let cookies = r.headers.get("cookie").and_then(|v| v.to_str().ok()).unwrap_or("(none)");
                html(format!(
                    r#"<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>Lab</title></head>
<body><p>Cookies received: <span id="cookies">{}</span></p></body></html>"#,
                    escape(cookies)
                ))
            })
            .mount(&self.server)
            .await;
    }
}
