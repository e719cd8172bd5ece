//! Where templates come from: the defaults are embedded in the binary, and every `NAME.j2`
//! file in the override directory (`template_dir`) replaces the template `NAME` or adds one
//! the others may include. The pages (`web::templates`) and the mail (`mail::templates`,
//! from the directory's `email/` folder) are loaded this way, through the one directory.

use std::path::{Path, PathBuf};

use minijinja::{AutoEscape, Environment};
use rocket::figment::value::magic::RelativePathBuf;
use rocket::figment::Figment;

/// A template file's extension: the name is the file name without it.
pub const EXTENSION: &str = ".j2";

/// Where Rocket looks when `template_dir` is not set.
const DEFAULT_DIR: &str = "templates";

/// A template's text and where it came from (for error messages).
#[derive(Debug, Clone)]
pub struct Source {
    pub name: String,
    pub text: String,
    pub file: Option<PathBuf>,
}

impl Source {
    pub fn origin(&self) -> String {
        match &self.file {
            Some(file) => file.display().to_string(),
            None => format!("{}{EXTENSION} (embedded)", self.name),
        }
    }
}

/// The embedded templates alone.
pub fn embedded(list: &[(&str, &str)]) -> Vec<Source> {
    list.iter()
        .map(|(name, text)| Source { name: (*name).to_owned(), text: (*text).to_owned(), file: None })
        .collect()
}

/// The templates of `list` with the files of `dir` (of its folder `folder`, named
/// `folder/NAME`) laid over them by name. A missing folder adds nothing.
pub fn load(list: &[(&str, &str)], dir: Option<&Path>, folder: Option<&str>) -> Result<Vec<Source>, String> {
    let mut sources = embedded(list);
    let Some(dir) = dir else { return Ok(sources) };
    let (dir, prefix) = match folder {
        Some(folder) if !dir.join(folder).is_dir() => return Ok(sources),
        Some(folder) => (dir.join(folder), format!("{folder}/")),
        None => (dir.to_owned(), String::new()),
    };
    let entries = std::fs::read_dir(&dir).map_err(|e| format!("template_dir {}: {e}", dir.display()))?;
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
        let source = Source { name: format!("{prefix}{name}"), text, file: Some(path) };
        match sources.iter_mut().find(|s| s.name == source.name) {
            Some(slot) => *slot = source,
            None => sources.push(source),
        }
    }
    Ok(sources)
}

/// An environment holding `sources`: every one HTML-escaped, but for plain-text mail
/// (`.txt`), whose values are written as they are.
pub fn environment(sources: &[Source]) -> Result<Environment<'static>, String> {
    let mut env = Environment::new();
    env.set_auto_escape_callback(
        |name| if name.ends_with(".txt") { AutoEscape::None } else { AutoEscape::Html },
    );
    for source in sources {
        env.add_template_owned(source.name.clone(), source.text.clone())
            .map_err(|e| format!("template {} does not parse: {}", source.origin(), one_line(&e)))?;
    }
    Ok(env)
}

/// A template error and its causes on one line, for a log line or startup.
pub fn one_line(error: &minijinja::Error) -> String {
    let mut text = error.to_string();
    let mut cause = std::error::Error::source(error);
    while let Some(e) = cause {
        text.push_str(": ");
        text.push_str(&e.to_string());
        cause = e.source();
    }
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// `template_dir` when set (it must then be a directory), else `templates/` when there is
/// one (a checkout: `cargo run` picks up edits), else none: the embedded templates alone.
pub fn override_dir(figment: &Figment) -> Result<Option<PathBuf>, String> {
    match figment.extract_inner::<RelativePathBuf>("template_dir") {
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
