//! The `portal users …` subcommands.

use std::io::{BufRead, IsTerminal};
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crate::auth::audit::{Actor, EventKind};
use crate::auth::password;
use crate::clock::{Clock, SystemClock};
use crate::config::Settings;
use crate::store::{NewEvent, NewUser, Store};

#[derive(Parser)]
#[command(name = "portal", version, about = "A sign-in portal. Without a command, it serves.")]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(Subcommand)]
pub enum Command {
    /// Manage users in the configured store.
    Users {
        #[command(subcommand)]
        action: Users,
    },
}

#[derive(Subcommand)]
pub enum Users {
    /// Add a user. The password is read from stdin's first line when stdin is not a
    /// terminal, otherwise prompted for (twice, without echo).
    Add {
        name: String,
        #[arg(long)]
        email: Option<String>,
        #[arg(long)]
        admin: bool,
    },
    /// List users.
    List,
    /// Set a user's password (ends all their sessions).
    Passwd { name: String },
    /// Disable a user (ends all their sessions).
    Disable { name: String },
}

pub fn users(action: Users) -> ExitCode {
    let runtime = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("error: could not start: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(action)) {
        Ok(message) => {
            println!("{message}");
            ExitCode::SUCCESS
        }
        Err(message) => {
            eprintln!("error: {message}");
            ExitCode::FAILURE
        }
    }
}

async fn run(action: Users) -> Result<String, String> {
    let settings = Settings::from_figment(&crate::figment())?;
    let store = Store::connect(&settings.databases.portal.url)
        .await
        .map_err(|e| format!("could not open the database: {e}"))?;
    match action {
        Users::Add { name, email, admin } => {
            let secret = read_password(&name)?;
            let hash = password::hash_blocking(&secret).map_err(|e| e.to_string())?;
            let new = NewUser {
                username: &name,
                email: email.as_deref(),
                password_hash: Some(&hash),
                is_admin: admin,
            };
            let user = store.create_user(new, SystemClock.now()).await.map_err(|e| e.to_string())?;
            record(&store, EventKind::UserCreated, user.id, serde_json::json!({ "admin": admin })).await;
            Ok(format!("added user {} (id {})", user.username, user.id))
        }
        Users::List => {
            let users = store.list_users().await.map_err(|e| e.to_string())?;
            let mut out = format!("{:>5}  {:<24} {:<32} {}", "id", "username", "email", "flags");
            for u in users {
                let flags = [(u.is_admin, "admin"), (u.disabled, "disabled")]
                    .iter()
                    .filter_map(|(on, name)| on.then_some(*name))
                    .collect::<Vec<_>>()
                    .join(",");
                let email = u.email.as_deref().unwrap_or("-");
                out.push_str(&format!("\n{:>5}  {:<24} {:<32} {}", u.id, u.username, email, flags));
            }
            Ok(out)
        }
        Users::Passwd { name } => {
            let user = find(&store, &name).await?;
            let secret = read_password(&user.username)?;
            let hash = password::hash_blocking(&secret).map_err(|e| e.to_string())?;
            store.set_password(user.id, &hash, SystemClock.now()).await.map_err(|e| e.to_string())?;
            record(
                &store,
                EventKind::PasswordChanged,
                user.id,
                serde_json::json!({ "by": "cli", "sessions_ended": true }),
            )
            .await;
            Ok(format!("password changed for {}; their sessions have ended", user.username))
        }
        Users::Disable { name } => {
            let user = find(&store, &name).await?;
            store.set_disabled(user.id, true, SystemClock.now()).await.map_err(|e| e.to_string())?;
            record(&store, EventKind::UserDisabled, user.id, serde_json::json!({ "sessions_ended": true }))
                .await;
            Ok(format!("disabled {}; their sessions have ended", user.username))
        }
    }
}

/// The audit log's line for what the command line did. A failure to write it is reported,
/// and does not undo the change.
async fn record(store: &Store, kind: EventKind, subject: i64, detail: serde_json::Value) {
    let detail = detail.to_string();
    let actor = Actor::Cli.text();
    let event = NewEvent {
        at: SystemClock.now(),
        kind: kind.slug(),
        actor: &actor,
        subject: Some(subject),
        ip: None,
        client: None,
        detail: &detail,
    };
    if let Err(e) = store.record_event(event).await {
        eprintln!("warning: could not record the {} event: {e}", kind.words());
    }
}

async fn find(store: &Store, name: &str) -> Result<crate::store::User, String> {
    store
        .user_by_username(name)
        .await
        .map_err(|e| e.to_string())?
        .ok_or_else(|| format!("no user named {name:?}"))
}

/// Reads a new password and applies the policy. Only the line ending is stripped.
fn read_password(username: &str) -> Result<String, String> {
    let secret = if std::io::stdin().is_terminal() {
        let first = rpassword::prompt_password("New password: ").map_err(|e| e.to_string())?;
        let again = rpassword::prompt_password("Repeat it: ").map_err(|e| e.to_string())?;
        if first != again {
            return Err("the passwords differ".into());
        }
        first
    } else {
        let mut line = String::new();
        std::io::stdin().lock().read_line(&mut line).map_err(|e| e.to_string())?;
        let end = line.trim_end_matches(['\n', '\r']).len();
        line.truncate(end);
        line
    };
    password::check_policy(&secret, username).map_err(|e| e.to_string())?;
    Ok(secret)
}
