//! The PostgreSQL store beyond what the `api` suite shows on it (`.ci/run` runs that suite a
//! second time with `PORTAL_TEST_POSTGRES` set): several stores on one database as several
//! instances would hold them, migrations racing, revocations crossing instances, the shared
//! throttle, sweeps in parallel, the last-admin rule under concurrency, `portal store copy`,
//! the outbox sent by two instances (each message once),
//! and the database going away and coming back.
//!
//! Run with
//!     export PORTAL_TEST_POSTGRES=$(bash .ci/postgres.sh)
//!     cargo test --features postgres --test postgres
//! Without the variable every test returns at once and the suite prints one `SKIPPED` line.
//! Each test makes a database of its own, but they take turns (`postgres_turn`), one at a
//! time as they always ran: the races they stage and the outages they time are measured on
//! two cores, with nothing else loading the server.
#![allow(clippy::unwrap_used, clippy::expect_used)] // a failed unwrap is a failed test

mod forwarder;
mod instances;
mod mail;
mod outages;
