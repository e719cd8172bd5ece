//! A browser on the real server over plain HTTP: a cookie jar, and forms posted with the
//! token of the page they came from. For the suites that run the real binary.

use std::collections::BTreeMap;

use crate::app::{extract_hidden, form_body, http_client};

/// A browser on the real server: a cookie jar and the CSRF token of the last page it read.
pub struct Browser {
    http: reqwest::Client,
    pub base: String,
    jar: BTreeMap<String, String>,
}

impl Browser {
    pub fn new(port: u16) -> Browser {
        Browser { http: http_client(), base: format!("http://127.0.0.1:{port}"), jar: BTreeMap::new() }
    }

    pub fn cookie_header(&self) -> String {
        self.jar.iter().map(|(name, value)| format!("{name}={value}")).collect::<Vec<_>>().join("; ")
    }

    pub fn keep_cookies(&mut self, response: &reqwest::Response) {
        for header in response.headers().get_all(reqwest::header::SET_COOKIE) {
            let Some((name, value)) =
                header.to_str().ok().and_then(|h| h.split(';').next()).and_then(|pair| pair.split_once('='))
            else {
                continue;
            };
            if value.is_empty() {
                self.jar.remove(name);
            } else {
                self.jar.insert(name.to_owned(), value.to_owned());
            }
        }
    }

    pub async fn get(&mut self, path: &str) -> reqwest::Response {
        let request = self.http.get(format!("{}{path}", self.base)).header("Cookie", self.cookie_header());
        let response = request.send().await.unwrap_or_else(|e| panic!("GET {path}: {e}"));
        self.keep_cookies(&response);
        response
    }

    /// Reads `page`'s form token, then posts `fields` with it to `to`; the answer's status.
    pub async fn submit(&mut self, page: &str, to: &str, fields: &[(&str, &str)]) -> u16 {
        self.submit_for(page, to, fields).await.status().as_u16()
    }

    /// As [`Browser::submit`], the whole answer (its cookies kept).
    pub async fn submit_for(&mut self, page: &str, to: &str, fields: &[(&str, &str)]) -> reqwest::Response {
        let body = self.get(page).await.text().await.expect("a page");
        let token = extract_hidden(&body, "csrf_token").unwrap_or_else(|| panic!("{page} has a form"));
        let mut all = vec![("csrf_token", token.as_str())];
        all.extend_from_slice(fields);
        let request = self
            .http
            .post(format!("{}{to}", self.base))
            .header("Cookie", self.cookie_header())
            .header("Content-Type", "application/x-www-form-urlencoded")
            .body(form_body(&all));
        let response = request.send().await.unwrap_or_else(|e| panic!("POST {to}: {e}"));
        self.keep_cookies(&response);
        response
    }

    /// Signs in with a password: whether the portal let them in.
    pub async fn sign_in(&mut self, username: &str, password: &str) -> bool {
        self.submit("/login", "/login", &[("username", username), ("password", password)]).await == 303
    }

    /// Whether `/welcome` is served to this browser (a signed-out one is sent to `/login`).
    pub async fn is_signed_in(&mut self) -> bool {
        match self.get("/welcome").await.status().as_u16() {
            200 => true,
            303 => false,
            other => panic!("GET /welcome answered {other}"),
        }
    }

    pub async fn sign_out(&mut self) {
        assert_eq!(self.submit("/account", "/logout", &[]).await, 303, "the sign-out is acknowledged");
    }

    pub async fn change_password(&mut self, current: &str, new: &str) {
        let fields = [("current_password", current), ("new_password", new), ("confirm_password", new)];
        assert_eq!(self.submit("/account", "/account/password", &fields).await, 303);
        let account = self.get("/account").await.text().await.expect("the account page");
        assert!(account.contains("Your password is changed"), "the change is acknowledged: {account}");
    }
}
