//! `portal` serves; `portal users …` manages users and `portal events` reads the audit log. Both read the same configuration.

use clap::Parser;
use portal::cli::Cli;

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    match cli.command {
        None => rocket::execute(async {
            let level =
                portal::figment().extract_inner("log_level").unwrap_or(rocket::config::LogLevel::Normal);
            portal::logging::init(level);
            match portal::rocket().launch().await {
                Ok(_) => std::process::ExitCode::SUCCESS,
                Err(e) => {
                    // Rocket prints the details (e.g. a release build without `secret_key`).
                    e.pretty_print();
                    std::process::ExitCode::FAILURE
                }
            }
        }),
        Some(command) => portal::cli::run(command),
    }
}
