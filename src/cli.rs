//! The command line: `portal users …`, `portal events`, `portal keys …` and `portal store …`.
//! Every command on users goes through the same operations as the console and the API
//! ([`crate::auth::admin`]), acting as `cli`.

use std::io::{BufRead, IsTerminal, Write};
use std::process::ExitCode;
use std::sync::Arc;

use clap::{ArgGroup, Parser, Subcommand};

use crate::auth::admin::{AdminError, NewAccount, Operator};
use crate::auth::audit::{Actor, EventKind};
use crate::auth::Auth;
use crate::clock::SystemClock;
use crate::config::Settings;
use crate::store::{EventFilter, UserSearch};
use crate::when::{parse_moment, rfc3339};

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
    /// The applications that sign in with the portal (OpenID clients). Those in the
    /// configuration file are listed, and changed only there.
    Clients {
        #[command(subcommand)]
        action: Clients,
    },
    /// The keys that sign forward-auth assertions and the OpenID provider's tokens.
    Keys {
        #[command(subcommand)]
        action: Keys,
    },
    /// The store itself: its schema version, or a copy into another database.
    Store {
        #[command(subcommand)]
        action: StoreAction,
    },
    /// The audit log, newest first: one line per event (time, what, user, address).
    Events {
        /// Only events about this user (a deleted user's too, by the name they had).
        #[arg(long)]
        user: Option<String>,
        /// Only events since: 2026-12-01, 2026-12-01T10:00, RFC 3339, or 30m, 24h, 7d ago.
        #[arg(long)]
        since: Option<String>,
        /// At most this many events.
        #[arg(long, default_value_t = 100)]
        limit: u32,
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
        /// Mail the person a link to set their password (valid 7 days) instead of reading a
        /// password here. Needs --email and `[email]`.
        #[arg(long)]
        invite: bool,
    },
    /// List users.
    List,
    /// Set a user's password (ends all their sessions).
    Passwd { name: String },
    /// Disable a user (ends all their sessions).
    Disable { name: String },
    /// Enable a disabled user.
    Enable { name: String },
    /// Delete a user with their identities, sessions and links (the audit log keeps their
    /// events). Asks first on a terminal; elsewhere needs --yes.
    Delete {
        name: String,
        #[arg(long)]
        yes: bool,
    },
    /// Make a user an administrator (--on) or not (--off).
    #[command(group(ArgGroup::new("role").required(true).args(["on", "off"])))]
    Admin {
        name: String,
        #[arg(long)]
        on: bool,
        #[arg(long)]
        off: bool,
    },
    /// Print a one-time link (24 hours) with which the user sets a new password.
    Reset { name: String },
    /// Remove every second factor of a user who lost them (authenticator app, passkeys,
    /// recovery codes); they are told at their next sign-in.
    ResetSecondFactor { name: String },
    /// List a user's live sessions, or end them all.
    Sessions {
        name: String,
        #[arg(long)]
        end_all: bool,
    },
}

#[derive(Subcommand)]
pub enum Clients {
    /// One line per application: id, kind, where it comes from, name, redirect URIs.
    List,
    /// Add an application; a confidential one's secret is printed once.
    Add {
        client_id: String,
        /// Where the application receives its code (repeat for more).
        #[arg(long = "redirect-uri", required = true)]
        redirect_uris: Vec<String>,
        /// Where it may send people after signing them out (repeat for more).
        #[arg(long = "post-logout-redirect-uri")]
        post_logout_redirect_uris: Vec<String>,
        /// Shown on the consent page (default: the client id).
        #[arg(long)]
        name: Option<String>,
        /// No secret; PKCE (S256) instead (a single-page or native app).
        #[arg(long)]
        public: bool,
        /// Trusted: no consent page.
        #[arg(long)]
        implicit_consent: bool,
        /// Who may use it: signed-in, admins, or comma-separated usernames.
        #[arg(long, default_value = "signed-in")]
        allow: String,
        /// Only sessions made with a second factor.
        #[arg(long)]
        second_factor: bool,
        /// RS256 (default) or EdDSA.
        #[arg(long, default_value = "RS256")]
        signing_alg: String,
    },
    /// A new secret for an application (printed once); the old one stops working.
    RotateSecret { client_id: String },
    /// Remove an application, with every consent and token it holds.
    Remove { client_id: String },
}

#[derive(Subcommand)]
pub enum Keys {
    /// List the published keys (the first signs).
    List,
    /// Make a new signing key; the current one stays published for a day. Running servers
    /// sign with the new key within a minute.
    Rotate,
}

#[derive(Subcommand)]
pub enum StoreAction {
    /// Print the backend, the schema version (applied, and this binary's newest) and the
    /// rows per table, without changing anything. Fails when the schema is not current.
    Check {
        /// The database to read (default: the configured `databases.portal.url`).
        #[arg(long)]
        url: Option<String>,
    },
    /// Copy every user, identity, session, reset link, audit event and signing key from one
    /// store into another, ids kept (`--from sqlite://portal.sqlite --to postgres://…`).
    /// Brings both schemas up to date first; refuses a target that holds anything. Signed-in
    /// people stay signed in if the new portal keeps the same `secret_key`.
    Copy {
        #[arg(long)]
        from: String,
        #[arg(long)]
        to: String,
    },
}

/// Runs a command; its output goes to stdout, an error to stderr with a failing status.
pub fn run(command: Command) -> ExitCode {
    let runtime = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("error: could not start: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(dispatch(command)) {
        Ok(message) => {
            if !message.is_empty() {
                println!("{message}");
            }
            ExitCode::SUCCESS
        }
        Err(message) => {
            eprintln!("error: {message}");
            ExitCode::FAILURE
        }
    }
}

async fn dispatch(command: Command) -> Result<String, String> {
    let settings = Settings::from_figment(&crate::figment())?;
    if let Command::Store { action } = command {
        return store(&settings, action).await;
    }
    let auth = crate::auth_service(&settings, Arc::new(SystemClock)).await?;
    let answer = match command {
        Command::Users { action } => users(&auth, &settings, action).await.map_err(|e| e.to_string()),
        Command::Events { user, since, limit } => events(&auth, user, since, limit).await,
        Command::Keys { action } => keys(&auth, action).await,
        Command::Clients { action } => clients(&auth, action).await.map_err(|e| e.to_string()),
        Command::Store { .. } => unreachable!("answered above"),
    };
    // Closed before the process ends: on SQLite the last connection to close folds the WAL
    // into the file, and a process that exits halfway through that leaves the file behind
    // its WAL (valid, and recovered from the WAL, but not tidy).
    auth.store().close().await;
    answer
}

/// `portal store check | copy`. Database URLs are never printed: they may hold a password.
async fn store(settings: &Settings, action: StoreAction) -> Result<String, String> {
    use crate::store::Store;
    let rows = |counts: &[(&str, i64)]| -> String {
        counts.iter().map(|(table, n)| format!("  {table:<13} {n}")).collect::<Vec<_>>().join("\n")
    };
    match action {
        StoreAction::Check { url } => {
            let url = url.unwrap_or_else(|| settings.databases.portal.url.clone());
            let store =
                Store::open(&url, settings.databases.portal.pool).map_err(|e| format!("the URL: {e}"))?;
            let report = store.check().await.map_err(|e| format!("could not read the store: {e}"))?;
            let backend = report.backend.name();
            let Some(applied) = report.applied else {
                return Err(format!(
                    "{backend} store without a schema (newest this portal has: {})",
                    report.latest
                ));
            };
            let state = match applied.cmp(&report.latest) {
                std::cmp::Ordering::Equal => "current",
                std::cmp::Ordering::Less => "behind: the portal brings it up to date when it starts",
                std::cmp::Ordering::Greater => "newer than this portal: upgrade the binary",
            };
            let text = format!(
                "{backend} store, schema version {applied} ({state}; this portal's newest is {})\n{}",
                report.latest,
                rows(&report.rows)
            );
            if applied == report.latest {
                Ok(text)
            } else {
                Err(text)
            }
        }
        StoreAction::Copy { from, to } => {
            let pool = settings.databases.portal.pool;
            let open = |url: &str, side: &str| Store::open(url, pool).map_err(|e| format!("--{side}: {e}"));
            let (source, target) = (open(&from, "from")?, open(&to, "to")?);
            source.bring_up().await.map_err(|e| format!("--from: could not open the store: {e}"))?;
            target.bring_up().await.map_err(|e| format!("--to: could not open the store: {e}"))?;
            let report = source.copy_into(&target).await.map_err(|e| e.to_string())?;
            Ok(format!(
                "copied from the {} store into the {} store, ids kept; rows in both now:\n{}",
                source.backend().name(),
                target.backend().name(),
                rows(&report.rows)
            ))
        }
    }
}

async fn users(auth: &Auth, settings: &Settings, action: Users) -> Result<String, AdminError> {
    let cli = Operator::cli();
    let by = &cli;
    Ok(match action {
        Users::Add { name, email, admin, invite: true } => {
            let account = NewAccount { username: &name, email: email.as_deref(), admin, invite: true };
            let (user, _) = auth.create_account(by, account, None).await?;
            let to = user.email.as_deref().unwrap_or_default();
            format!("added user {} (id {}); an invitation to {to} is in the outbox", user.username, user.id)
        }
        Users::Add { name, email, admin, invite: false } => {
            let secret = read_password().map_err(AdminError::Failed)?;
            let account = NewAccount { username: &name, email: email.as_deref(), admin, invite: false };
            let (user, _) = auth.create_account(by, account, Some(&secret)).await?;
            match &user.email {
                Some(to) if !user.email_verified => format!(
                    "added user {} (id {}); a link to confirm {to} is in the outbox",
                    user.username, user.id
                ),
                _ => format!("added user {} (id {})", user.username, user.id),
            }
        }
        Users::List => {
            let mut out = format!("{:>5}  {:<24} {:<32} {}", "id", "username", "email", "flags");
            let mut search = UserSearch { limit: crate::auth::admin::MAX_PAGE, ..UserSearch::default() };
            loop {
                let page = auth.find_users(by, &search).await?;
                for row in &page.users {
                    let u = &row.user;
                    let flags = [(u.is_admin, "admin"), (u.disabled, "disabled")]
                        .iter()
                        .filter_map(|(on, name)| on.then_some(*name))
                        .collect::<Vec<_>>()
                        .join(",");
                    let email = u.email.as_deref().unwrap_or("-");
                    out.push_str(&format!("\n{:>5}  {:<24} {:<32} {}", u.id, u.username, email, flags));
                }
                match page.next {
                    Some(next) => search.cursor = Some(crate::store::Cursor::After(next)),
                    None => break,
                }
            }
            out
        }
        Users::Passwd { name } => {
            let user = auth.user_named(by, &name).await?;
            let secret = read_password().map_err(AdminError::Failed)?;
            auth.set_user_password(by, user.id, &secret).await?;
            format!("password changed for {}; their sessions have ended", user.username)
        }
        Users::Disable { name } => {
            let user = auth.user_named(by, &name).await?;
            auth.set_user_disabled(by, user.id, true).await?;
            format!("disabled {}; their sessions have ended", user.username)
        }
        Users::ResetSecondFactor { name } => {
            let user = auth.user_named(by, &name).await?;
            let removed = auth.reset_second_factor(by, user.id).await?;
            let mut what = Vec::new();
            if removed.totp {
                what.push("an authenticator app".to_owned());
            }
            if removed.passkeys > 0 {
                what.push(format!("{} passkey(s)", removed.passkeys));
            }
            if removed.recovery_codes > 0 {
                what.push(format!("{} recovery code(s)", removed.recovery_codes));
            }
            match what.is_empty() {
                true => format!("{} had no second factor; nothing was removed", user.username),
                false => format!(
                    "removed {} of {}; they will be told when they next sign in",
                    what.join(", "),
                    user.username
                ),
            }
        }
        Users::Enable { name } => {
            let user = auth.user_named(by, &name).await?;
            auth.set_user_disabled(by, user.id, false).await?;
            format!("enabled {}", user.username)
        }
        Users::Delete { name, yes } => {
            let user = auth.user_named(by, &name).await?;
            if !yes && !confirm(&format!("Delete {} with their identities and sessions?", user.username)) {
                return Ok("nothing deleted (confirm on a terminal, or pass --yes)".into());
            }
            auth.delete_user(by, user.id).await?;
            format!("deleted {}", user.username)
        }
        Users::Admin { name, on, off: _ } => {
            let user = auth.user_named(by, &name).await?;
            auth.set_user_admin(by, user.id, on).await?;
            if on {
                format!("{} is an administrator", user.username)
            } else {
                format!("{} is no longer an administrator", user.username)
            }
        }
        Users::Reset { name } => {
            let user = auth.user_named(by, &name).await?;
            let (user, link) = auth.create_reset_link(by, user.id).await?;
            let origin = settings.public_url.as_ref().map(|p| p.origin().to_owned());
            format!(
                "one-time link for {} (valid until {}; their earlier links no longer work):\n{}",
                user.username,
                rfc3339(link.expires_at),
                link.url(origin.as_deref())
            )
        }
        Users::Sessions { name, end_all } => {
            let user = auth.user_named(by, &name).await?;
            if end_all {
                let ended = auth.end_user_sessions(by, user.id, None).await?;
                format!("ended {ended} session(s) of {}", user.username)
            } else {
                let overview = auth.user_overview(by, user.id).await?;
                let mut out = format!("{} live session(s) of {}", overview.sessions.len(), user.username);
                for s in overview.sessions {
                    out.push_str(&format!(
                        "\n{}  {}  {}  {}  signed in {}  last seen {}",
                        s.id,
                        s.method,
                        s.client,
                        s.ip.as_deref().unwrap_or("-"),
                        rfc3339(s.created_at),
                        rfc3339(s.last_seen_at)
                    ));
                }
                out
            }
        }
    })
}

async fn events(
    auth: &Auth,
    user: Option<String>,
    since: Option<String>,
    limit: u32,
) -> Result<String, String> {
    let by = Operator::cli();
    let subject = match user {
        Some(name) => Some(auth.events_subject(&name).await.map_err(|e| e.to_string())?),
        None => None,
    };
    let since = since.map(|s| parse_moment(&s, auth.now())).transpose()?;
    let mut filter = EventFilter { subject, since, limit: i64::from(limit), ..EventFilter::default() };
    let mut lines = Vec::new();
    let mut left = i64::from(limit);
    while left > 0 {
        filter.limit = left.min(crate::auth::admin::MAX_PAGE);
        let (events, next) = auth.find_events(&by, &filter).await.map_err(|e| e.to_string())?;
        let names = auth.actor_names(&events).await.map_err(|e| e.to_string())?;
        for e in &events {
            let what = EventKind::from_slug(&e.kind).map_or_else(|| e.kind.clone(), |k| k.words().to_owned());
            let user = e.subject_name.clone().unwrap_or_else(|| "-".into());
            let by = match Actor::parse(&e.actor) {
                Some(Actor::User(id)) => names.get(&id).cloned().unwrap_or_else(|| format!("#{id}")),
                _ => e.actor.clone(),
            };
            lines.push(format!(
                "{}  {:<28} {:<20} {:<39} by {}",
                rfc3339(e.at),
                what,
                user,
                e.ip.as_deref().unwrap_or("-"),
                by
            ));
        }
        left -= events.len() as i64;
        match next {
            Some(next) => filter.before = Some(next),
            None => break,
        }
    }
    Ok(lines.join("\n"))
}

async fn clients(auth: &Auth, action: Clients) -> Result<String, AdminError> {
    use crate::auth::provider::NewClient;
    use crate::config::{AllowSettings, ConsentMode, SigningAlg};
    let by = Operator::cli();
    match action {
        Clients::List => {
            let lines: Vec<String> = auth
                .list_clients(&by)
                .await?
                .iter()
                .map(|c| {
                    format!(
                        "{}  {}  {}  {:?}  {}",
                        c.id,
                        if c.public { "public" } else { "confidential" },
                        if c.configured { "config" } else { "store" },
                        c.name,
                        c.redirect_uris.join(" ")
                    )
                })
                .collect();
            Ok(lines.join("\n"))
        }
        Clients::Add {
            client_id,
            redirect_uris,
            post_logout_redirect_uris,
            name,
            public,
            implicit_consent,
            allow,
            second_factor,
            signing_alg,
        } => {
            let allow = match allow.as_str() {
                "signed-in" | "admins" => AllowSettings::Named(allow),
                names => AllowSettings::Users(names.split(',').map(|n| n.trim().to_owned()).collect()),
            };
            let signing_alg = SigningAlg::parse(&signing_alg)
                .ok_or_else(|| AdminError::InvalidClient("--signing-alg must be RS256 or EdDSA".into()))?;
            let new = NewClient {
                client_id,
                name,
                redirect_uris,
                post_logout_redirect_uris,
                public,
                consent: if implicit_consent { ConsentMode::Implicit } else { ConsentMode::Explicit },
                allow,
                second_factor,
                signing_alg,
            };
            let (client, secret) = auth.add_client(&by, new).await?;
            Ok(match secret {
                Some(secret) => format!(
                    "added {}\nclient_secret: {secret}\n(shown once: the portal keeps only its hash)",
                    client.id
                ),
                None => format!("added public client {}", client.id),
            })
        }
        Clients::RotateSecret { client_id } => {
            let secret = auth.rotate_client_secret(&by, &client_id).await?;
            Ok(format!("client_secret: {secret}\n(shown once; the old secret no longer works)"))
        }
        Clients::Remove { client_id } => {
            auth.remove_client(&by, &client_id).await?;
            Ok(format!("removed {client_id}"))
        }
    }
}

async fn keys(auth: &Auth, action: Keys) -> Result<String, String> {
    let signer = auth.signer();
    let now = auth.now();
    match action {
        Keys::Rotate => {
            let made = signer.rotate(now).await.map_err(|e| e.to_string())?;
            Ok(format!("new signing key(s) {}; the previous ones stay published for a day", made.join(", ")))
        }
        Keys::List => {
            let keys = signer.keys(now).await.map_err(|e| e.to_string())?;
            let lines: Vec<String> = keys
                .iter()
                .map(|k| {
                    let state = match k.retired_at {
                        None => "signing".to_owned(),
                        Some(at) => format!("retired {}", rfc3339(at)),
                    };
                    format!("{}  {}  created {}  {state}", k.kid, k.algorithm, rfc3339(k.created_at))
                })
                .collect();
            Ok(lines.join("\n"))
        }
    }
}

/// Asks on a terminal; anywhere else the answer is no.
fn confirm(question: &str) -> bool {
    if !std::io::stdin().is_terminal() {
        return false;
    }
    print!("{question} [y/N] ");
    let _ = std::io::stdout().flush();
    let mut answer = String::new();
    if std::io::stdin().lock().read_line(&mut answer).is_err() {
        return false;
    }
    matches!(answer.trim(), "y" | "Y" | "yes")
}

/// Reads a new password (the policy is applied by the operation). Only the line ending is
/// stripped.
fn read_password() -> Result<String, crate::auth::AuthError> {
    let failed =
        |e: std::io::Error| crate::auth::AuthError::Internal(format!("could not read the password: {e}"));
    if std::io::stdin().is_terminal() {
        let first = rpassword::prompt_password("New password: ").map_err(failed)?;
        let again = rpassword::prompt_password("Repeat it: ").map_err(failed)?;
        if crate::auth::password::normalized(&first) != crate::auth::password::normalized(&again) {
            return Err(crate::auth::AuthError::Internal("the passwords differ".into()));
        }
        return Ok(first);
    }
    let mut line = String::new();
    std::io::stdin().lock().read_line(&mut line).map_err(failed)?;
    let end = line.trim_end_matches(['\n', '\r']).len();
    line.truncate(end);
    Ok(line)
}
