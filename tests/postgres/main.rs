//! The PostgreSQL store beyond what the `api` suite shows on it (`.ci/run` runs that suite a
//! second time with `PORTAL_TEST_POSTGRES` set): several stores on one database as several
//! instances would hold them, migrations racing, revocations crossing instances, the shared
//! throttle, sweeps in parallel, the last-admin rule under concurrency, `portal store copy`,
//! and the database going away and coming back.
//!
//! A plain `main` (no libtest): without `PORTAL_TEST_POSTGRES` it prints one line saying the
//! suite was skipped and how to run it. `cargo test --test postgres -- NAME` runs the tests
//! whose name contains NAME.
#![allow(clippy::unwrap_used, clippy::expect_used)] // a failed unwrap is a failed test

mod forwarder;
mod instances;
mod outages;

use std::future::Future;
use std::pin::Pin;
use std::process::ExitCode;
use std::time::Instant;

type Test = fn(String) -> Pin<Box<dyn Future<Output = ()>>>;

macro_rules! tests {
    ($($module:ident :: $name:ident),+ $(,)?) => {
        [$((stringify!($name), (|server| Box::pin($module::$name(server))) as Test)),+]
    };
}

fn main() -> ExitCode {
    let Some(server) = portal_testkit::postgres_server() else {
        println!("SKIPPED: the PostgreSQL store suite (tests/postgres): {}", portal_testkit::POSTGRES_HOWTO);
        return ExitCode::SUCCESS;
    };
    let filter: Vec<String> = std::env::args().skip(1).filter(|a| !a.starts_with('-')).collect();
    let all = tests![
        instances::concurrent_starts_apply_each_migration_once,
        instances::an_ended_session_leaves_every_instances_cache,
        instances::a_lost_listener_drops_the_cache_and_caching_resumes,
        instances::the_throttle_budget_is_one_for_every_instance,
        instances::the_last_admin_survives_concurrent_changes_on_two_instances,
        instances::sweeps_on_two_instances_at_once_share_the_work,
        instances::store_copy_moves_a_sqlite_store_without_loss,
        outages::postgres_down_at_start_serves_503_then_connects,
        outages::a_database_restart_under_load_is_503_never_500_and_loses_nothing,
    ];
    let chosen: Vec<(&'static str, Test)> = all
        .into_iter()
        .filter(|(name, _)| filter.is_empty() || filter.iter().any(|f| name.contains(f.as_str())))
        .collect();
    println!("running {} PostgreSQL test(s)", chosen.len());
    let mut failed = Vec::new();
    for (name, test) in chosen {
        let started = Instant::now();
        let server = server.clone();
        let outcome = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .expect("a runtime");
            runtime.block_on(test(server));
        })
        .join();
        let took = started.elapsed().as_secs_f64();
        match outcome {
            Ok(()) => println!("test {name} ... ok ({took:.1} s)"),
            Err(_) => {
                println!("test {name} ... FAILED ({took:.1} s)");
                failed.push(name);
            }
        }
    }
    if failed.is_empty() {
        println!("test result: ok");
        ExitCode::SUCCESS
    } else {
        println!("test result: FAILED: {}", failed.join(", "));
        ExitCode::FAILURE
    }
}
