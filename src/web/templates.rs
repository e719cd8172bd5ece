//! The page templates, through `rocket_dyn_templates` and minijinja (Jinja2 syntax): the
//! defaults are embedded in the binary, and every `NAME.j2` file directly in `template_dir`
//! replaces the template `NAME` (`login.html.j2` → the login page) or adds one a custom
//! template may include. Every template is checked at ignition, parsed and rendered with
//! representative values, so a broken one stops startup with one line naming its file
//! instead of answering 500 later. Debug builds reload changed files (Rocket's behaviour).
//! Every value is HTML-escaped unless a template says `|safe`; none of ours does.

use std::path::{Path, PathBuf};

use rocket::fairing::AdHoc;
use rocket::figment::value::magic::RelativePathBuf;
use rocket::{Build, Rocket};
use rocket_dyn_templates::minijinja::{AutoEscape, Environment};
use rocket_dyn_templates::{Engines, Template};

use crate::web::admin_pages as admin;
use crate::web::pages::{self, Site};
use crate::web::samples;

/// The templates compiled into the binary, by name.
const EMBEDDED: [(&str, &str); 14] = [
    (pages::BASE, include_str!("../../templates/base.html.j2")),
    (pages::MACROS, include_str!("../../templates/macros.html.j2")),
    (pages::INDEX, include_str!("../../templates/index.html.j2")),
    (pages::WELCOME, include_str!("../../templates/welcome.html.j2")),
    (pages::LOGIN, include_str!("../../templates/login.html.j2")),
    (pages::LOGOUT, include_str!("../../templates/logout.html.j2")),
    (pages::ACCOUNT, include_str!("../../templates/account.html.j2")),
    (pages::ERROR, include_str!("../../templates/error.html.j2")),
    (admin::ADMIN_USERS, include_str!("../../templates/admin_users.html.j2")),
    (admin::ADMIN_USER, include_str!("../../templates/admin_user.html.j2")),
    (admin::ADMIN_NEW_USER, include_str!("../../templates/admin_new_user.html.j2")),
    (admin::ADMIN_LINK, include_str!("../../templates/admin_link.html.j2")),
    (admin::ADMIN_EVENTS, include_str!("../../templates/admin_events.html.j2")),
    (admin::RESET, include_str!("../../templates/reset.html.j2")),
];

/// A template file's extension: the name is the file name without it.
const EXTENSION: &str = ".j2";

/// Where Rocket looks when `template_dir` is not set.
const DEFAULT_DIR: &str = "templates";

/// A template's text and where it came from (for error messages).
#[derive(Debug, Clone)]
pub struct Source {
    name: String,
    text: String,
    file: Option<PathBuf>,
}

impl Source {
    fn origin(&self) -> String {
        match &self.file {
            Some(file) => file.display().to_string(),
            None => format!("{}{EXTENSION} (embedded)", self.name),
        }
    }
}

/// The embedded templates alone.
pub fn embedded() -> Vec<Source> {
    EMBEDDED
        .iter()
        .map(|(name, text)| Source { name: (*name).to_owned(), text: (*text).to_owned(), file: None })
        .collect()
}

/// The embedded templates with the files in `dir` laid over them by name.
pub fn load(dir: Option<&Path>) -> Result<Vec<Source>, String> {
    let mut sources = embedded();
    let Some(dir) = dir else { return Ok(sources) };
    let entries = std::fs::read_dir(dir).map_err(|e| format!("template_dir {}: {e}", dir.display()))?;
    for entry in entries {
        let path = entry.map_err(|e| format!("template_dir {}: {e}", dir.display()))?.path();
        let Some(name) = path.file_name().and_then(|n| n.to_str()).and_then(|n| n.strip_suffix(EXTENSION))
        else {
            continue;
        };
        if name.is_empty() || !path.is_file() {
            continue;
        }
        let text = std::fs::read_to_string(&path).map_err(|e| format!("template {}: {e}", path.display()))?;
        let source = Source { name: name.to_owned(), text, file: Some(path) };
        match sources.iter_mut().find(|s| s.name == source.name) {
            Some(slot) => *slot = source,
            None => sources.push(source),
        }
    }
    Ok(sources)
}

/// An environment holding `sources`, every one HTML-escaped.
pub fn environment(sources: &[Source]) -> Result<Environment<'static>, String> {
    let mut env = Environment::new();
    install(&mut env, sources)?;
    Ok(env)
}

fn install(env: &mut Environment<'static>, sources: &[Source]) -> Result<(), String> {
    // Every template is a page or part of one: escape for HTML whatever the name says.
    env.set_auto_escape_callback(|_| AutoEscape::Html);
    for source in sources {
        env.add_template_owned(source.name.clone(), source.text.clone())
            .map_err(|e| format!("template {} does not parse: {}", source.origin(), one_line(&e)))?;
    }
    Ok(())
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

/// minijinja's error, its causes and where it happened, on one line.
fn one_line(error: &rocket_dyn_templates::minijinja::Error) -> String {
    let mut text = error.to_string();
    let mut cause = std::error::Error::source(error);
    while let Some(e) = cause {
        text.push_str(": ");
        text.push_str(&e.to_string());
        cause = e.source();
    }
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Loads, checks and installs the templates at ignition, and hands them to
/// `rocket_dyn_templates` (which reloads them in debug builds when a file changes).
pub fn stage() -> AdHoc {
    AdHoc::try_on_ignite("Templates", |rocket| async move {
        match prepare(&rocket) {
            Ok((dir, root)) => {
                let site = rocket.state::<Site>().cloned().unwrap_or_else(|| Site::new("Portal", None));
                let figment = rocket.figment().clone().merge(("template_dir", root));
                let reload = move |engines: &mut Engines| -> Result<(), Box<dyn std::error::Error>> {
                    let sources = load(dir.as_deref())?;
                    check(&environment(&sources)?, &sources, &site)?;
                    install(&mut engines.minijinja, &sources)?;
                    Ok(())
                };
                Ok(rocket.configure(figment).attach(Template::try_custom(reload)))
            }
            Err(e) => {
                log::error!("{e}");
                Err(rocket)
            }
        }
    })
}

/// The override directory (if any) after checking every template, and the directory to
/// give `rocket_dyn_templates` (which must exist, and which it watches in debug builds).
fn prepare(rocket: &Rocket<Build>) -> Result<(Option<PathBuf>, PathBuf), String> {
    let dir = override_dir(rocket)?;
    let sources = load(dir.as_deref())?;
    let site = rocket.state::<Site>().cloned().unwrap_or_else(|| Site::new("Portal", None));
    check(&environment(&sources)?, &sources, &site)?;
    if let Some(dir) = &dir {
        let replaced: Vec<&str> =
            sources.iter().filter(|s| s.file.is_some()).map(|s| s.name.as_str()).collect();
        log::info!("templates: {} from {}, the rest embedded", replaced.join(", "), dir.display());
        return Ok((Some(dir.clone()), dir.clone()));
    }
    Ok((None, empty_dir()?))
}

/// `template_dir` when set (it must then be a directory), else `templates/` when there is
/// one (a checkout: `cargo run` picks up edits), else none: the embedded templates alone.
fn override_dir(rocket: &Rocket<Build>) -> Result<Option<PathBuf>, String> {
    let configured = rocket.figment().extract_inner::<RelativePathBuf>("template_dir");
    match configured {
        Ok(dir) => {
            let dir = dir.relative();
            if dir.is_dir() {
                Ok(Some(dir))
            } else {
                Err(format!("template_dir {} is not a directory", dir.display()))
            }
        }
        Err(e) if e.missing() => Ok(Path::new(DEFAULT_DIR).is_dir().then(|| PathBuf::from(DEFAULT_DIR))),
        Err(e) => Err(format!("template_dir: {e}")),
    }
}

/// `rocket_dyn_templates` needs a directory to scan even when nothing overrides: an empty
/// one of ours. Whatever it might find there is never rendered (every page template is
/// installed by name from [`load`], and installed templates come before files).
fn empty_dir() -> Result<PathBuf, String> {
    let dir = std::env::temp_dir().join("portal-no-template-overrides");
    std::fs::create_dir_all(&dir).map_err(|e| format!("could not create {}: {e}", dir.display()))?;
    Ok(dir)
}
