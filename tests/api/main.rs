//! One integration test binary (faster to link than many), a module per concern.
#![allow(clippy::unwrap_used, clippy::expect_used)] // a failed unwrap is a failed test

mod admin;
mod audit;
mod authz;
mod binary;
mod cli;
mod configuration;
mod durability;
mod factors;
mod hardening;
mod identities;
mod login;
mod logs;
mod mail;
mod metrics;
mod next;
mod oauth;
mod oidc;
mod openapi;
mod passkeys;
mod session;
mod sessions;
mod startup;
mod templates;
mod throttle;
mod upstream;
