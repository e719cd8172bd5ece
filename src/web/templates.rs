//! Where the page templates come from, and their check: the defaults are embedded in the
//! binary, and every `NAME.j2` file directly in `template_dir` replaces the template `NAME`
//! (`login.html.j2` → the login page) or adds one a custom template may include. Every
//! template is checked at ignition, parsed and rendered with representative values, so a
//! broken one stops startup with one line naming its file instead of answering 500 later.
//! Debug builds reload changed files. Every value is HTML-escaped unless a template says
//! `|safe`; none of ours does. Rendering is `web::render`'s.

use std::path::{Path, PathBuf};
use std::sync::{Mutex, PoisonError};
use std::time::SystemTime;

use minijinja::Environment;
use rocket::fairing::AdHoc;
use rocket::{Build, Rocket};

pub use crate::templates::{environment, Source};
use crate::templates::{override_dir, EXTENSION};

use crate::web::admin_pages as admin;
use crate::web::client_pages as clients;
use crate::web::factor_pages as factors;
use crate::web::mail_pages as mail;
use crate::web::oidc_pages as oidc;
use crate::web::pages::{self, Site};
use crate::web::render::{one_line, Reload, Templates};
use crate::web::samples;

/// The templates compiled into the binary, by name.
const EMBEDDED: [(&str, &str); 24] = [
    (pages::BASE, include_str!("../../templates/base.html.j2")),
    (pages::MACROS, include_str!("../../templates/macros.html.j2")),
    (pages::INDEX, include_str!("../../templates/index.html.j2")),
    (pages::WELCOME, include_str!("../../templates/welcome.html.j2")),
    (pages::LOGIN, include_str!("../../templates/login.html.j2")),
    (pages::LOGOUT, include_str!("../../templates/logout.html.j2")),
    (pages::UPSTREAM_LOGOUT, include_str!("../../templates/upstream_logout.html.j2")),
    (pages::ACCOUNT, include_str!("../../templates/account.html.j2")),
    (pages::ERROR, include_str!("../../templates/error.html.j2")),
    (admin::ADMIN_USERS, include_str!("../../templates/admin_users.html.j2")),
    (admin::ADMIN_USER, include_str!("../../templates/admin_user.html.j2")),
    (admin::ADMIN_NEW_USER, include_str!("../../templates/admin_new_user.html.j2")),
    (admin::ADMIN_LINK, include_str!("../../templates/admin_link.html.j2")),
    (admin::ADMIN_EVENTS, include_str!("../../templates/admin_events.html.j2")),
    (admin::RESET, include_str!("../../templates/reset.html.j2")),
    (factors::SECOND_FACTOR, include_str!("../../templates/second_factor.html.j2")),
    (factors::TOTP_SETUP, include_str!("../../templates/totp_setup.html.j2")),
    (factors::RECOVERY_CODES, include_str!("../../templates/recovery_codes.html.j2")),
    (oidc::OIDC_CONSENT, include_str!("../../templates/oidc_consent.html.j2")),
    (oidc::OIDC_LOGOUT, include_str!("../../templates/oidc_logout.html.j2")),
    (clients::ADMIN_CLIENTS, include_str!("../../templates/admin_clients.html.j2")),
    (clients::ADMIN_CLIENT_SECRET, include_str!("../../templates/admin_client_secret.html.j2")),
    (mail::RESET_REQUEST, include_str!("../../templates/reset_request.html.j2")),
    (mail::ADMIN_OUTBOX, include_str!("../../templates/admin_outbox.html.j2")),
];

/// The embedded templates alone.
pub fn embedded() -> Vec<Source> {
    crate::templates::embedded(&EMBEDDED)
}

/// The embedded templates with the files in `dir` laid over them by name.
pub fn load(dir: Option<&Path>) -> Result<Vec<Source>, String> {
    crate::templates::load(&EMBEDDED, dir, None)
}

/// Renders every page with representative values: a missing parent or include, a macro
/// that does not exist, a filter that fails, all show up here rather than at request time.
fn check(env: &Environment<'static>, sources: &[Source], site: &Site) -> Result<(), String> {
    for (name, context) in samples::samples(site) {
        let rendered = env.get_template(name).and_then(|t| t.render(&context));
        if let Err(e) = rendered {
            let origin =
                sources.iter().find(|s| s.name == name).map_or_else(|| name.to_owned(), Source::origin);
            return Err(format!("template {origin} does not render: {}", one_line(&e)));
        }
    }
    Ok(())
}

/// Loads and checks the templates at ignition and manages them as [`Templates`].
pub fn stage() -> AdHoc {
    AdHoc::try_on_ignite("Templates", |rocket| async move {
        let site = rocket.state::<Site>().cloned().unwrap_or_else(|| Site::new("Portal", None));
        match prepare(&rocket, site) {
            Ok(templates) => Ok(rocket.manage(templates)),
            Err(e) => {
                log::error!("{e}");
                Err(rocket)
            }
        }
    })
}

/// What a debug build needs to reload: the override directory, the branding the check
/// renders with, and what the directory looked like when last read.
struct Watch {
    dir: PathBuf,
    site: Site,
    seen: Mutex<Stamp>,
}

/// Every template file in a directory: its name, modification time and length.
type Stamp = Vec<(PathBuf, Option<SystemTime>, u64)>;

fn stamp(dir: &Path) -> Stamp {
    let mut files: Stamp = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .filter(|entry| entry.file_name().to_str().is_some_and(|n| n.ends_with(EXTENSION)))
        .map(|entry| {
            let meta = entry.metadata().ok();
            (entry.path(), meta.as_ref().and_then(|m| m.modified().ok()), meta.map_or(0, |m| m.len()))
        })
        .collect();
    files.sort();
    files
}

impl Watch {
    /// The templates again when a file changed since last asked and the set still parses
    /// and renders; a broken edit is logged, and the pages keep the last set that worked.
    fn fresh(&self) -> Option<Environment<'static>> {
        let now = stamp(&self.dir);
        let mut seen = self.seen.lock().unwrap_or_else(PoisonError::into_inner);
        if *seen == now {
            return None;
        }
        *seen = now;
        let fresh = load(Some(&self.dir)).and_then(|sources| {
            let env = environment(&sources)?;
            check(&env, &sources, &self.site)?;
            Ok(env)
        });
        match fresh {
            Ok(env) => {
                log::info!("templates: reloaded {}", self.dir.display());
                Some(env)
            }
            Err(e) => {
                log::error!("{e}; the pages keep the last templates that worked");
                None
            }
        }
    }
}

/// The templates, loaded and checked; debug builds watch the override directory.
fn prepare(rocket: &Rocket<Build>, site: Site) -> Result<Templates, String> {
    let dir = override_dir(rocket.figment())?;
    let seen = dir.as_deref().map(stamp).unwrap_or_default();
    let sources = load(dir.as_deref())?;
    let env = environment(&sources)?;
    check(&env, &sources, &site)?;
    if let Some(dir) = &dir {
        let replaced: Vec<&str> =
            sources.iter().filter(|s| s.file.is_some()).map(|s| s.name.as_str()).collect();
        log::info!("templates: {} from {}, the rest embedded", replaced.join(", "), dir.display());
    }
    let reload = dir.filter(|_| cfg!(debug_assertions)).map(|dir| {
        let watch = Watch { dir, site, seen: Mutex::new(seen) };
        Box::new(move || watch.fresh()) as Reload
    });
    Ok(Templates::new(env, reload))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::web::render::{MAX_SHELLS, STAND_IN};
    use crate::web::samples::samples;

    fn templates(sources: &[Source]) -> Templates {
        Templates::new(environment(sources).unwrap(), None)
    }

    /// The embedded templates, and the first sample of page `name` (branded "Acme").
    fn sample_of(name: &str) -> (Templates, &'static str, minijinja::Value) {
        let site = crate::web::pages::Site::new("Acme", None);
        let (name, sample) = samples(&site).into_iter().find(|(n, _)| *n == name).unwrap();
        (templates(&embedded()), name, sample)
    }

    /// `context` with `csrf` set to `token`.
    fn with_token(context: &minijinja::Value, token: &str) -> minijinja::Value {
        minijinja::context! { csrf => token, ..context.clone() }
    }

    #[test]
    fn a_merged_token_replaces_the_one_in_the_context() {
        let merged = with_token(&minijinja::context! { csrf => "old", other => 1 }, "new");
        assert_eq!(merged.get_attr("csrf").unwrap().as_str(), Some("new"));
        assert_eq!(merged.get_attr("other").unwrap().as_i64(), Some(1));
    }

    #[test]
    fn every_page_from_its_shell_is_the_page_rendered_with_its_token() {
        let templates = templates(&embedded());
        let site = crate::web::pages::Site::new("Acme", None);
        for (name, sample) in samples(&site) {
            let shell_context = serde_json::to_string(&with_token(&sample, &STAND_IN)).unwrap();
            for token in ["tok-EN_1", "another-TOKEN_2", "tok-EN_1"] {
                let direct = templates.render(name, &with_token(&sample, token)).unwrap();
                let spliced = templates.render_shell(name, shell_context.clone(), token).unwrap();
                assert_eq!(spliced, direct, "{name} with {token}");
            }
        }
        let shells = templates.shell_parts();
        assert!(shells.iter().all(Option::is_some), "every embedded page is cut");
        assert!(shells.iter().any(|parts| parts.is_some_and(|n| n > 2)), "the login page has two forms");
    }

    #[test]
    fn a_template_that_transforms_the_token_is_rendered_every_time() {
        let mut sources = embedded();
        let text = "{{ csrf|upper }} {{ csrf[:4] }} {{ csrf }}";
        sources.push(Source { name: "odd.html".into(), text: text.into(), file: None });
        let templates = templates(&sources);
        let context = serde_json::to_string(&minijinja::context! { csrf => &*STAND_IN }).unwrap();
        for token in ["abcdef", "zyxwvu"] {
            let page = templates.render_shell("odd.html", context.clone(), token).unwrap();
            assert_eq!(page, format!("{} {} {token}", token.to_uppercase(), &token[..4]));
        }
        assert_eq!(templates.shell_parts(), [None]);
    }

    #[test]
    fn a_token_that_html_would_escape_is_rendered_not_spliced() {
        let (templates, name, sample) = sample_of(crate::web::pages::LOGIN);
        let token = "a/b<c>";
        let context = serde_json::to_string(&with_token(&sample, &STAND_IN)).unwrap();
        let page = templates.render_shell(name, context, token).unwrap();
        assert!(page.contains("value=\"a&#x2f;b&lt;c&gt;\""), "{page}");
        assert!(!page.contains(STAND_IN.as_str()));
    }

    #[test]
    fn the_shells_are_bounded() {
        let (templates, name, sample) = sample_of(crate::web::pages::ERROR);
        for i in 0..MAX_SHELLS + 10 {
            let context = minijinja::context! { csrf => &*STAND_IN, message => i, ..sample.clone() };
            templates.render_shell(name, serde_json::to_string(&context).unwrap(), "t").unwrap();
            assert!(templates.shell_parts().len() <= MAX_SHELLS);
        }
    }
}
