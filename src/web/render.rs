//! Rendering pages: the checked templates ([`Templates`], managed state) and the [`Page`]
//! responder. Made from the page's own types in one step (`rocket_dyn_templates`' responder
//! went through figment's values first: a fifth of a signed-in page's instructions,
//! `BENCHMARKS.md`, issue 22).
//!
//! A page for nobody in particular (nobody signed in, no flash) is the same for every
//! visitor who sent the same values but for its form token. Such a page is rendered once,
//! cut where the token goes (its shell), and each request after that gets a copy with its
//! own token spliced in: the login page costs a copy instead of a render.
//!
//! A leaf of `web`: what the pages are (`web::pages`) and where the templates come from
//! (`web::templates`) sit above it.

use std::collections::HashMap;
use std::sync::{Arc, LazyLock, Mutex, PoisonError, RwLock};

use minijinja::Environment;
use rocket::http::{ContentType, Status};
use rocket::request::Request;
use rocket::response::{self, Responder};
use serde::Serialize;

pub use crate::templates::one_line;

/// The checked templates every page is rendered with (managed state, made by
/// `web::templates::stage`), with the shells of the pages for nobody in particular. A
/// [`Reload`] hook may replace the environment between pages (debug builds).
pub struct Templates {
    env: RwLock<Environment<'static>>,
    reload: Option<Reload>,
    shells: Mutex<HashMap<(&'static str, String), Shell>>,
}

/// Asked before each page (debug builds, with an override directory): a new environment
/// when the files changed and still parse and render, else none.
pub type Reload = Box<dyn Fn() -> Option<Environment<'static>> + Send + Sync>;

/// A page rendered for nobody in particular, cut where its form token goes.
#[derive(Clone)]
enum Shell {
    /// The text around each place the token goes: the page is these parts joined by it.
    Parts(Arc<[String]>),
    /// The template does more with the token than print it (a filter, a test): rendered
    /// afresh each time.
    Uncut,
}

/// Shells kept at most; when full the lot is dropped and refilled. Pages for nobody in
/// particular vary with what the visitor sent (`next`, a username after a failed sign-in),
/// so the number of distinct ones is not bounded by the templates.
pub(crate) const MAX_SHELLS: usize = 256;

/// The token a shell is rendered with, and the one it is checked against: 43 characters
/// of the form token's alphabet (what `CsrfToken` makes: URL-safe base64 of 32 bytes), so
/// they print as the real one would, unescaped. Random per process, so no page's text can
/// hold one by chance or design.
pub static STAND_IN: LazyLock<String> = LazyLock::new(stand_in);
static CHECK_STAND_IN: LazyLock<String> = LazyLock::new(stand_in);

fn stand_in() -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(rand::random::<[u8; 32]>())
}

/// Whether `token` prints as itself in HTML: what splicing it into a shell assumes.
fn prints_as_itself(token: &str) -> bool {
    token.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

impl Templates {
    /// `env`, already checked, and the hook that may replace it.
    pub fn new(env: Environment<'static>, reload: Option<Reload>) -> Templates {
        Templates { env: RwLock::new(env), reload, shells: Mutex::default() }
    }

    /// Renders template `name` with `context`.
    pub fn render(&self, name: &str, context: &minijinja::Value) -> Result<String, minijinja::Error> {
        self.reload_if_changed();
        self.render_as_loaded(name, context)
    }

    /// [`Templates::render`] without looking for changed files first.
    fn render_as_loaded(&self, name: &str, context: &minijinja::Value) -> Result<String, minijinja::Error> {
        // A poisoned lock only means a reload panicked; the environment it guards is whole.
        let env = self.env.read().unwrap_or_else(PoisonError::into_inner);
        env.get_template(name)?.render(context)
    }

    /// Renders template `name` for nobody in particular: `context` (the page's values in
    /// JSON, the shell's key) holds [`STAND_IN`] where the form token goes, and `token` is
    /// spliced in its place. The first time a context is seen the page is rendered with the
    /// stand-in and again with another one; when the two differ only where the stand-ins
    /// are, the text around them is kept, and the next request with that context is a copy
    /// with its token in place: no render, and no template values made. A template that
    /// transforms the token (`{{ csrf|upper }}`) fails that comparison, and its pages are
    /// rendered every time.
    pub fn render_shell(
        &self,
        name: &'static str,
        context: String,
        token: &str,
    ) -> Result<String, minijinja::Error> {
        self.reload_if_changed();
        let key = (name, context);
        let known = self.shells.lock().unwrap_or_else(PoisonError::into_inner).get(&key).cloned();
        let (shell, values) = match known {
            Some(shell) => (shell, None),
            None => {
                let values = values_of(&key.1)?;
                let shell = self.cut(name, &values)?;
                let mut shells = self.shells.lock().unwrap_or_else(PoisonError::into_inner);
                if shells.len() >= MAX_SHELLS {
                    shells.clear();
                }
                shells.insert(key.clone(), shell.clone());
                (shell, Some(values))
            }
        };
        match shell {
            Shell::Parts(parts) if prints_as_itself(token) => Ok(splice(&parts, token)),
            _ => {
                let values = match values {
                    Some(values) => values,
                    None => values_of(&key.1)?,
                };
                self.render_as_loaded(name, &minijinja::context! { csrf => token, ..values })
            }
        }
    }

    /// The shells kept: how many parts each has, or none for a page rendered every time.
    #[cfg(test)]
    pub(crate) fn shell_parts(&self) -> Vec<Option<usize>> {
        let shells = self.shells.lock().unwrap_or_else(PoisonError::into_inner);
        shells
            .values()
            .map(|shell| match shell {
                Shell::Parts(parts) => Some(parts.len()),
                Shell::Uncut => None,
            })
            .collect()
    }

    fn cut(&self, name: &str, context: &minijinja::Value) -> Result<Shell, minijinja::Error> {
        let first = self.render_as_loaded(name, context)?;
        let second = self
            .render_as_loaded(name, &minijinja::context! { csrf => &*CHECK_STAND_IN, ..context.clone() })?;
        let parts: Vec<String> = first.split(STAND_IN.as_str()).map(str::to_owned).collect();
        let same = second.split(CHECK_STAND_IN.as_str()).eq(parts.iter().map(String::as_str));
        Ok(if same { Shell::Parts(parts.into()) } else { Shell::Uncut })
    }

    fn reload_if_changed(&self) {
        let Some(reload) = &self.reload else { return };
        if let Some(env) = reload() {
            *self.env.write().unwrap_or_else(PoisonError::into_inner) = env;
            self.shells.lock().unwrap_or_else(PoisonError::into_inner).clear();
        }
    }
}

/// A page's values from their JSON.
fn values_of(json: &str) -> Result<minijinja::Value, minijinja::Error> {
    serde_json::from_str(json).map_err(|e| {
        minijinja::Error::new(minijinja::ErrorKind::BadSerialization, "a page's values").with_source(e)
    })
}

/// `parts` joined by `token`.
fn splice(parts: &[String], token: &str) -> String {
    let length = parts.iter().map(String::len).sum::<usize>() + token.len() * parts.len().saturating_sub(1);
    let mut page = String::with_capacity(length);
    for (i, part) in parts.iter().enumerate() {
        if i > 0 {
            page.push_str(token);
        }
        page.push_str(part);
    }
    page
}

/// A page to send: a template and its context, rendered by [`Templates`] when the response
/// is made. The context becomes minijinja's values once, straight from the page's types.
pub struct Page {
    name: &'static str,
    body: Body,
}

enum Body {
    /// The page's values.
    Values(minijinja::Value),
    /// A page for nobody in particular: its values in JSON (with [`STAND_IN`] as `csrf`),
    /// and the form token to splice into its shell.
    Shell { context: String, token: String },
}

impl Page {
    pub fn render(name: &'static str, context: impl Serialize) -> Page {
        Page { name, body: Body::Values(minijinja::Value::from_serialize(context)) }
    }

    /// A page that differs between visitors only in its form token: `context` has
    /// [`STAND_IN`] as `csrf`, and `token` is put in its place ([`Templates::render_shell`]).
    pub fn shell(name: &'static str, context: impl Serialize, token: &str) -> Page {
        match serde_json::to_string(&context) {
            Ok(context) => Page { name, body: Body::Shell { context, token: token.to_owned() } },
            // Not JSON (a map with keys that are not strings): rendered as it is, token and all.
            Err(_) => Page::render(
                name,
                minijinja::context! { csrf => token, ..minijinja::Value::from_serialize(context) },
            ),
        }
    }
}

impl<'r> Responder<'r, 'static> for Page {
    fn respond_to(self, request: &'r Request<'_>) -> response::Result<'static> {
        let Some(templates) = request.rocket().state::<Templates>() else {
            log::error!("the templates are not managed; is the app built with portal::rocket_with?");
            return Err(Status::InternalServerError);
        };
        let rendered = match self.body {
            Body::Shell { context, token } => templates.render_shell(self.name, context, &token),
            Body::Values(context) => templates.render(self.name, &context),
        };
        match rendered {
            Ok(body) => (ContentType::HTML, body).respond_to(request),
            Err(e) => {
                log::error!("template {} does not render: {}", self.name, one_line(&e));
                Err(Status::InternalServerError)
            }
        }
    }
}
