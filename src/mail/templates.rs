//! The mail's templates: for each [`Letter`], `email/<name>.txt` (the plain text, and its
//! subject in a `subject` block) and `email/<name>.html`, over `email/base.txt` and
//! `email/base.html`. Embedded, and replaced by files in `template_dir/email/` as the pages
//! are by files in `template_dir`; read and checked once at start.

use std::path::Path;

use minijinja::{context, Environment, Value};

use super::Letter;
use crate::templates::{environment, load as load_sources, one_line};

/// The templates compiled into the binary, by name.
const EMBEDDED: [(&str, &str); 10] = [
    ("email/base.txt", include_str!("../../templates/email/base.txt.j2")),
    ("email/base.html", include_str!("../../templates/email/base.html.j2")),
    ("email/reset.txt", include_str!("../../templates/email/reset.txt.j2")),
    ("email/reset.html", include_str!("../../templates/email/reset.html.j2")),
    ("email/verify.txt", include_str!("../../templates/email/verify.txt.j2")),
    ("email/verify.html", include_str!("../../templates/email/verify.html.j2")),
    ("email/invite.txt", include_str!("../../templates/email/invite.txt.j2")),
    ("email/invite.html", include_str!("../../templates/email/invite.html.j2")),
    ("email/notice.txt", include_str!("../../templates/email/notice.txt.j2")),
    ("email/notice.html", include_str!("../../templates/email/notice.html.j2")),
];

/// The embedded mail templates with `dir/email/*.j2` laid over them, each kind rendered once
/// with representative values: a broken one stops startup with one line naming its file.
pub fn load(dir: Option<&Path>, site_name: &str, base: &str) -> Result<Environment<'static>, String> {
    let sources = load_sources(&EMBEDDED, dir, Some("email"))?;
    let env = environment(&sources)?;
    for letter in Letter::samples() {
        if let Err(e) = render(&env, &letter, "alice", site_name, base) {
            let origin = sources
                .iter()
                .find(|s| e.name().is_some_and(|n| n == s.name))
                .map_or_else(|| format!("email/{}", letter.template()), |s| s.origin());
            return Err(format!("mail template {origin} does not render: {}", one_line(&e)));
        }
    }
    Ok(env)
}

/// The subject, the plain text and the HTML of `letter` to `username`.
pub fn render(
    env: &Environment<'static>,
    letter: &Letter,
    username: &str,
    site_name: &str,
    base: &str,
) -> Result<(String, String, String), minijinja::Error> {
    let ctx = context! {
        site => context! { name => site_name },
        public_url => base,
        username => username,
        ..Value::from_serialize(letter)
    };
    let name = letter.template();
    let mut text = env.get_template(&format!("email/{name}.txt"))?.render_captured(&ctx)?;
    let subject = text.with_state_mut(|state| state.render_block("subject"))?;
    let html = env.get_template(&format!("email/{name}.html"))?.render(&ctx)?;
    Ok((subject.trim().to_owned(), text.into_output().trim().to_owned() + "\n", html))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_reset_letter_has_its_subject_its_link_and_both_parts() {
        let env = load(None, "Acme", "https://auth.example.com").unwrap();
        let letter = Letter::Reset { link: "https://auth.example.com/reset/abc<def".into(), minutes: 60 };
        let (subject, text, html) =
            render(&env, &letter, "alice", "Acme", "https://auth.example.com").unwrap();
        assert_eq!(subject, "Reset your Acme password");
        assert!(text.contains("https://auth.example.com/reset/abc<def"), "{text}");
        assert!(text.contains("60 minutes"), "{text}");
        assert!(!text.contains("Reset your Acme password\n"), "the subject is not in the body: {text}");
        assert!(
            html.contains("https:&#x2f;&#x2f;auth.example.com&#x2f;reset&#x2f;abc&lt;def"),
            "escaped in HTML: {html}"
        );
        assert!(html.contains("alice"), "{html}");
    }

    #[test]
    fn a_broken_override_stops_startup_naming_its_file() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("email")).unwrap();
        std::fs::write(dir.path().join("email/reset.html.j2"), "{{ link | nosuchfilter }}").unwrap();
        let e = load(Some(dir.path()), "Acme", "https://a.example").unwrap_err();
        assert!(e.contains("reset.html.j2"), "{e}");
        std::fs::write(dir.path().join("email/reset.html.j2"), "<p>{{ link }}</p>").unwrap();
        let env = load(Some(dir.path()), "Acme", "https://a.example").unwrap();
        let letter = Letter::Reset { link: "L".into(), minutes: 60 };
        let (_, _, html) = render(&env, &letter, "alice", "Acme", "https://a.example").unwrap();
        assert_eq!(html, "<p>L</p>");
    }
}
