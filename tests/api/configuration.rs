//! `docs/configuration.md` names every key the portal's settings read, with its default.
//!
//! The keys and their defaults come from the code: the settings extracted from a figment
//! that sets nothing but the database URL, printed with `{:#?}` (the settings' `Debug`
//! redacts secrets and prints what is set), and read back as dotted keys.

use std::collections::BTreeMap;

use portal::config::Settings;
use rocket::figment::providers::Serialized;
use rocket::figment::Figment;

/// Settings that are derived, not read: they have no key.
const DERIVED: [&str; 4] = ["instance_key", "csrf_key", "factor_key", "mail_key"];

/// Every leaf of a `{:#?}` print of a struct, as `dotted.key → value` (a multi-line value,
/// such as `Some(\n 5,\n)`, joined on one line).
fn leaves(debug: &str) -> BTreeMap<String, String> {
    let mut keys = BTreeMap::new();
    let mut path: Vec<String> = Vec::new();
    let mut open: Option<(String, String, i32)> = None;
    for line in debug.lines().skip(1) {
        let line = line.trim();
        if let Some((key, value, depth)) = &mut open {
            value.push_str(line.trim_end_matches(','));
            *depth += line.matches(['(', '[']).count() as i32 - line.matches([')', ']']).count() as i32;
            if *depth <= 0 {
                keys.insert(key.clone(), value.trim_end_matches(',').to_owned());
                open = None;
            }
            continue;
        }
        if line.starts_with('}') {
            path.pop();
            continue;
        }
        let Some((name, value)) = line.split_once(": ") else { continue };
        let key = path.iter().chain([&name.to_owned()]).cloned().collect::<Vec<_>>().join(".");
        if value.ends_with('{') {
            path.push(name.to_owned());
        } else if value.ends_with('(') || value.ends_with('[') {
            open = Some((key, value.to_owned(), 1));
        } else {
            keys.insert(key, value.trim_end_matches(',').to_owned());
        }
    }
    keys
}

/// The rows of the configuration table: the keys a row names (backticked, in its first
/// cell) and its default cell.
fn documented() -> Vec<(Vec<String>, String)> {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/docs/configuration.md");
    let text = std::fs::read_to_string(path).expect("docs/configuration.md");
    text.lines()
        .filter(|line| line.starts_with("| `"))
        .map(|line| {
            let cells: Vec<&str> = line.split(" | ").collect();
            let names = cells[0].split('`').skip(1).step_by(2).map(str::to_owned).collect();
            (names, cells.get(1).copied().unwrap_or("").to_owned())
        })
        .collect()
}

/// The value as the docs write it: `Some(5)` is `5`, `"Portal"` is `Portal`, an enum's
/// variant is lowercase.
fn as_written(value: &str) -> Option<String> {
    let value = value.strip_prefix("Some(").and_then(|v| v.strip_suffix(')')).unwrap_or(value);
    let value = value.trim_end_matches(',').trim_matches('"');
    (value != "None").then(|| value.to_lowercase())
}

#[test]
fn every_setting_the_code_reads_is_documented_with_its_default() {
    let figment = Figment::from(Serialized::default("databases.portal.url", "sqlite::memory:"));
    let settings = Settings::from_figment(&figment).expect("the defaults are valid");
    let keys = leaves(&format!("{settings:#?}"));
    assert!(keys.len() > 30, "the settings were read: {keys:?}");
    assert!(
        keys.contains_key("session.idle_timeout") && keys.contains_key("databases.portal.max_connections")
    );
    let rows = documented();

    let mut missing = Vec::new();
    for (key, value) in keys.iter().filter(|(key, _)| !DERIVED.contains(&key.as_str())) {
        let exact = rows.iter().find(|(names, _)| names.iter().any(|n| n == key));
        let wildcard = rows
            .iter()
            .any(|(names, _)| names.iter().any(|n| n.strip_suffix('*').is_some_and(|p| key.starts_with(p))));
        if key == "databases.portal.url" {
            // Rocket's figment gives the default (`portal::DEFAULT_DATABASE_URL`); the
            // settings print only its scheme.
            let row = exact.map(|(_, default)| default.as_str()).unwrap_or("");
            if !row.contains(portal::DEFAULT_DATABASE_URL) {
                missing.push(format!("`{key}`: its row does not say {}", portal::DEFAULT_DATABASE_URL));
            }
            continue;
        }
        match exact {
            None if wildcard => {}
            None => missing.push(format!("`{key}` (default {value}) has no row")),
            Some((_, default)) => {
                if let Some(written) = as_written(value) {
                    if !default.to_lowercase().contains(&written) {
                        missing
                            .push(format!("`{key}`: its row's default {default:?} does not say {written}"));
                    }
                }
            }
        }
    }
    assert!(missing.is_empty(), "docs/configuration.md is behind the code:\n{}", missing.join("\n"));
}

#[test]
fn a_setting_missing_from_the_docs_is_noticed() {
    let keys = leaves("Settings {\n    hsts: false,\n    new_section: New {\n        knob: Some(\n            5,\n        ),\n    },\n}");
    assert_eq!(keys.get("new_section.knob").map(String::as_str), Some("Some(5)"));
    assert_eq!(as_written("Some(5)").as_deref(), Some("5"));
    assert!(!documented().iter().any(|(names, _)| names.iter().any(|n| n == "new_section.knob")));
}
