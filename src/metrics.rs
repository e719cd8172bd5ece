//! What an operator scrapes from every instance: `GET /metrics` in Prometheus's text format
//! (`prometheus-client`, the Prometheus project's Rust client), off (`404`) until
//! `metrics.token` is set, then only with `Authorization: Bearer <token>`.
//!
//! The counters are process-wide (one set per instance, whatever serves the request). Label
//! values come from fixed lists (methods, outcomes, route templates), never from what a
//! client sent, so the number of series stays bounded.

use std::borrow::Cow;
use std::collections::HashMap;
use std::sync::{LazyLock, OnceLock};
use std::time::Instant;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;
use rocket::fairing::{Fairing, Info, Kind};
use rocket::{Data, Orbit, Request, Response, Rocket};

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct SignInLabels {
    /// `password`, `passkey` or a provider's slug (the configured ones only).
    pub method: Cow<'static, str>,
    /// `success`, `invalid`, `disabled`, `throttled`, `refused`, `cancelled`, `busy`,
    /// `error`.
    pub outcome: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct WhatLabels {
    pub what: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct MethodLabels {
    pub method: Cow<'static, str>,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ResultLabels {
    pub result: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct KindLabels {
    pub kind: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RouteLabels {
    pub method: &'static str,
    /// The route's template (`/admin/users/<id>`), or `unmatched`.
    pub route: &'static str,
    /// `2xx` … `5xx`.
    pub status: &'static str,
}

type HistogramFamily<L> = Family<L, Histogram, fn() -> Histogram>;

/// Every metric the portal exports.
pub struct Metrics {
    registry: Registry,
    pub sign_ins: Family<SignInLabels, Counter>,
    pub throttled: Family<WhatLabels, Counter>,
    pub hash_queue_depth: Gauge,
    pub hash_wait: Histogram,
    pub sessions_started: Family<MethodLabels, Counter>,
    pub sessions_ended: Counter,
    pub forward_auth: Family<ResultLabels, Counter>,
    pub requests: HistogramFamily<RouteLabels>,
    pub store_errors: Family<KindLabels, Counter>,
    pub store_connections: Gauge,
    pub store_idle_connections: Gauge,
    pub revocations_heard: Gauge,
}

fn request_histogram() -> Histogram {
    // 0.5 ms … ~4 s.
    Histogram::new(exponential_buckets(0.0005, 2.0, 14))
}

impl Metrics {
    fn new() -> Metrics {
        let mut registry = Registry::with_prefix("portal");
        let metrics = Metrics {
            sign_ins: Family::default(),
            throttled: Family::default(),
            hash_queue_depth: Gauge::default(),
            // 1 ms … ~16 s.
            hash_wait: Histogram::new(exponential_buckets(0.001, 2.0, 15)),
            sessions_started: Family::default(),
            sessions_ended: Counter::default(),
            forward_auth: Family::default(),
            requests: Family::new_with_constructor(request_histogram),
            store_errors: Family::default(),
            store_connections: Gauge::default(),
            store_idle_connections: Gauge::default(),
            revocations_heard: Gauge::default(),
            registry: Registry::default(),
        };
        registry.register("sign_ins", "Sign-in attempts by method and outcome", metrics.sign_ins.clone());
        registry.register(
            "throttled",
            "Attempts refused by the throttle (password sign-ins, provider sign-in starts)",
            metrics.throttled.clone(),
        );
        registry.register(
            "hash_queue_depth",
            "Password checks waiting for a hashing slot",
            metrics.hash_queue_depth.clone(),
        );
        registry.register(
            "hash_wait_seconds",
            "Time a password check waited for a hashing slot",
            metrics.hash_wait.clone(),
        );
        registry.register(
            "sessions_started",
            "Sessions started, by method",
            metrics.sessions_started.clone(),
        );
        registry.register(
            "sessions_ended",
            "Sessions ended (sign-out, sign out everywhere, disable, password change)",
            metrics.sessions_ended.clone(),
        );
        registry.register(
            "forward_auth_checks",
            "Forward-auth checks by result",
            metrics.forward_auth.clone(),
        );
        registry.register(
            "request_duration_seconds",
            "Time to answer a request, by route template and status class",
            metrics.requests.clone(),
        );
        registry.register(
            "store_errors",
            "Store errors (unavailable: the database did not answer; refused: a value it refused; other)",
            metrics.store_errors.clone(),
        );
        registry.register(
            "store_connections",
            "Connections open in the store's pool",
            metrics.store_connections.clone(),
        );
        registry.register(
            "store_idle_connections",
            "Idle connections in the store's pool",
            metrics.store_idle_connections.clone(),
        );
        registry.register(
            "revocations_heard",
            "1 while this instance hears other instances' revocations (PostgreSQL) or needs none (SQLite)",
            metrics.revocations_heard.clone(),
        );
        Metrics { registry, ..metrics }
    }

    /// The text exposition (OpenMetrics text, which Prometheus reads).
    pub fn encode(&self) -> String {
        let mut out = String::new();
        // Writing to a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }

    pub fn sign_in(&self, method: impl Into<Cow<'static, str>>, outcome: &'static str) {
        self.sign_ins.get_or_create(&SignInLabels { method: method.into(), outcome }).inc();
    }

    /// Counts a store error under its class's label (`store::ErrorClass::label`: the store
    /// classifies its errors, once).
    pub fn store_error(&self, kind: &'static str) {
        self.store_errors.get_or_create(&KindLabels { kind }).inc();
    }
}

static METRICS: LazyLock<Metrics> = LazyLock::new(Metrics::new);

/// This process's metrics.
pub fn get() -> &'static Metrics {
    &METRICS
}

/// Times every request and counts it under its route's template.
pub struct RequestTimer;

/// Route templates by their text, made `'static` once at liftoff (bounded: one per route).
static ROUTES: OnceLock<HashMap<String, &'static str>> = OnceLock::new();

#[derive(Clone, Copy)]
struct Started(Instant);

#[rocket::async_trait]
impl Fairing for RequestTimer {
    fn info(&self) -> Info {
        Info { name: "Request metrics", kind: Kind::Liftoff | Kind::Request | Kind::Response }
    }

    async fn on_liftoff(&self, rocket: &Rocket<Orbit>) {
        let _ = ROUTES.get_or_init(|| {
            rocket
                .routes()
                .map(|route| {
                    let text = route.uri.as_str().to_owned();
                    // A `/` route under a base is spelt `/admin/?…`; the label spells it as
                    // requests do (`/admin?…`), as it was before the routes had bases.
                    let path = route.uri.path();
                    let label = match path.strip_suffix('/') {
                        Some(bare) if !bare.is_empty() => text.replacen(path, bare, 1),
                        _ => text.clone(),
                    };
                    let leaked: &'static str = Box::leak(label.into_boxed_str());
                    (text, leaked)
                })
                .collect()
        });
    }

    async fn on_request(&self, request: &mut Request<'_>, _: &mut Data<'_>) {
        request.local_cache(|| Started(Instant::now()));
    }

    async fn on_response<'r>(&self, request: &'r Request<'_>, response: &mut Response<'r>) {
        let Started(started) = *request.local_cache(|| Started(Instant::now()));
        let route = request
            .route()
            .and_then(|route| ROUTES.get().and_then(|routes| routes.get(route.uri.as_str()).copied()))
            .unwrap_or("unmatched");
        let status = match response.status().code {
            100..=199 => "1xx",
            200..=299 => "2xx",
            300..=399 => "3xx",
            400..=499 => "4xx",
            _ => "5xx",
        };
        let method = request.method().as_str();
        get()
            .requests
            .get_or_create(&RouteLabels { method, route, status })
            .observe(started.elapsed().as_secs_f64());
    }
}
