//! Signing in, and linking accounts, through Google and GitHub: minting a flow, completing
//! a callback, and the rule that keeps a last way to sign in.

use serde_json::json;

use crate::auth::admin::valid_email;
use crate::auth::audit::{Actor, Event, EventKind};
use crate::auth::oauth::{
    tidy_provider_text, Admission, Flow, FlowError, OAuthError, Provider, FLOW_LIFETIME_SECS,
};
use crate::auth::session::{Method, Proof};
use crate::auth::throttle::RetryAfter;
use crate::auth::{ArrivalError, Auth, AuthError, ClientInfo, FirstStep, Pending, SignedIn, StartError};
use crate::logging::AUDIT_TARGET;
use crate::store::{EventRecord, LinkError, LinkedIdentity, SessionRecord, Unlinked, User};

/// A provider's callback, as it arrived.
#[derive(Debug, Default)]
pub struct Callback<'a> {
    pub code: Option<&'a str>,
    pub state: Option<&'a str>,
    pub error: Option<&'a str>,
    pub error_description: Option<&'a str>,
    /// RFC 9207: who sent the browser back.
    pub iss: Option<&'a str>,
}

/// Where a provider's callback leads.
#[derive(Debug)]
pub enum Arrival {
    /// Signed in; go to `next`.
    SignedIn { signed_in: Box<SignedIn>, next: String },
    /// The user has a second factor (or must set one up): its step is next, then `next`.
    SecondStep { pending: Box<Pending>, next: String },
    /// The identity is now linked to the signed-in user.
    Linked,
    /// The identity belongs to someone else; nothing changed.
    LinkedElsewhere,
}

/// What the account page shows about the ways to sign in.
#[derive(Debug)]
pub struct Account {
    pub identities: Vec<LinkedIdentity>,
    pub has_password: bool,
    /// Their second factors.
    pub factors: crate::store::Factors,
    /// The person's latest sign-in attempts, newest first ("Was this you?").
    pub recent_sign_ins: Vec<EventRecord>,
    /// The applications they let sign them in (OpenID clients they consented to).
    pub applications: Vec<crate::auth::provider::ConnectedApp>,
    /// The security notices by mail (preference, how the page names it, on): none without mail.
    pub notices: Vec<(&'static str, &'static str, bool)>,
}

/// How many recent sign-in attempts the account page shows.
pub const RECENT_SIGN_INS: i64 = 5;

impl Auth {
    /// Mints a flow for a sign-in through the provider `slug` (throttled per client
    /// address), returning it with the URL to send the browser to. `next` must already be a
    /// safe path.
    pub async fn start_provider_sign_in(
        &self,
        slug: &str,
        next: Option<&str>,
        client: &ClientInfo,
    ) -> Result<(Flow, String), StartError> {
        let Some(provider) = self.providers.get(slug) else {
            return Err(StartError::NotConfigured);
        };
        let started = self.throttle.oauth_start(client.ip, self.now()).await.map_err(AuthError::from)?;
        if let Err(RetryAfter(seconds)) = started {
            crate::metrics::get()
                .throttled
                .get_or_create(&crate::metrics::WhatLabels { what: "oauth_start" })
                .inc();
            log::warn!("{slug}: throttled sign-in starts from {}", client.ip_text());
            return Err(AuthError::Throttled(seconds).into());
        }
        self.begin(provider, next, None).await
    }

    /// Mints a flow that links the provider `slug` to the signed-in `user` and comes back
    /// to `/account`.
    pub async fn start_provider_link(&self, slug: &str, user: &User) -> Result<(Flow, String), StartError> {
        let Some(provider) = self.providers.get(slug) else {
            return Err(StartError::NotConfigured);
        };
        self.begin(provider, Some("/account"), Some(user.id)).await
    }

    async fn begin(
        &self,
        provider: &Provider,
        next: Option<&str>,
        link_user: Option<i64>,
    ) -> Result<(Flow, String), StartError> {
        let now = self.now();
        let started = provider.start(now).await.map_err(|e| {
            log::warn!("{}: could not start a sign-in: {e}", provider.slug);
            StartError::Unavailable(e)
        })?;
        let flow = Flow {
            provider: provider.slug,
            state: started.state,
            verifier: started.verifier,
            nonce: started.nonce,
            next: next.map(str::to_owned),
            link_user,
            expires: now + FLOW_LIFETIME_SECS,
        };
        Ok((flow, started.authorize_url))
    }

    /// Completes a provider's callback: checks the flow the browser brought back (already
    /// taken out of it, so it is spent whatever happens), exchanges the code, applies the
    /// policy, and signs in, creates, or links the user. Every failure is logged once with
    /// the provider and a reason.
    pub async fn finish_provider_sign_in(
        &self,
        slug: &str,
        callback: Callback<'_>,
        stored_flow: Option<&str>,
        me: Option<&User>,
        client: &ClientInfo,
    ) -> Result<Arrival, ArrivalError> {
        let Some(provider) = self.providers.get(slug) else {
            return Err(ArrivalError::NotConfigured);
        };
        let result = self.arrive(provider, callback, stored_flow, me, client).await;
        let outcome = match &result {
            Ok(Arrival::SignedIn { .. }) => Some("success"),
            Ok(Arrival::SecondStep { .. }) => Some("second-step"),
            Ok(_) => None,
            Err(ArrivalError::Disabled) => Some("disabled"),
            Err(ArrivalError::NotAllowed(_) | ArrivalError::NoVerifiedEmail) => Some("refused"),
            Err(ArrivalError::Cancelled | ArrivalError::ProviderSaid(_)) => Some("cancelled"),
            Err(_) => Some("error"),
        };
        if let Some(outcome) = outcome {
            crate::metrics::get().sign_in(slug.to_owned(), outcome);
        }
        result
    }

    async fn arrive(
        &self,
        provider: &Provider,
        callback: Callback<'_>,
        stored_flow: Option<&str>,
        me: Option<&User>,
        client: &ClientInfo,
    ) -> Result<Arrival, ArrivalError> {
        let (slug, now) = (provider.slug.as_str(), self.now());
        let flow = Flow::check(stored_flow, provider.slug, callback.state, now);
        if let Some(error) = callback.error {
            let error = tidy_provider_text(error);
            log::warn!("{slug}: the provider returned error={error:?}");
            // Without our flow this is a crafted link: show none of its text.
            if flow.is_err() {
                return Err(ArrivalError::TryAgain("an error callback without our flow".into()));
            }
            if error == "access_denied" {
                return Err(ArrivalError::Cancelled);
            }
            return Err(ArrivalError::ProviderSaid(
                callback.error_description.map_or(error, tidy_provider_text),
            ));
        }
        let flow = flow.map_err(|e: FlowError| refused(slug, e.reason()))?;
        let code = callback.code.filter(|c| !c.is_empty()).ok_or_else(|| refused(slug, "no code"))?;
        // Mix-up defence (RFC 9207): the code goes to no token endpoint before the
        // callback's issuer is known to be this provider.
        if let Err(e) = provider.check_callback_issuer(callback.iss) {
            return Err(refused(slug, &e.to_string()));
        }

        let (identity, admission) = match provider.finish(code, &flow, now).await {
            Ok(found) => found,
            Err(OAuthError::NoVerifiedEmail) => {
                log::warn!("{slug}: sign-in refused: no verified email");
                let detail = json!({ "method": slug, "reason": "no-verified-email" });
                self.attempt_failed(EventKind::ProviderRefused, None, client, detail).await;
                return Err(ArrivalError::NoVerifiedEmail);
            }
            Err(e) => {
                log::warn!("{slug}: sign-in failed: {e}");
                return Err(ArrivalError::TryAgain(e.to_string()));
            }
        };
        if let Admission::Refused(why) = admission {
            log::warn!("{slug}: sign-in refused by policy: {why}");
            let detail = json!({ "method": slug, "reason": why });
            self.attempt_failed(EventKind::ProviderRefused, None, client, detail).await;
            return Err(ArrivalError::NotAllowed(why));
        }

        // An address that would break or hide in a header is not kept (the sign-in goes on).
        let email = identity.email.as_deref().filter(|email| {
            let ok = valid_email(email);
            if !ok {
                log::warn!("{slug}: the provider's email address is not one the portal accepts; not kept");
            }
            ok
        });
        if let Some(link_user) = flow.link_user {
            let Some(me) = me.filter(|me| me.id == link_user) else {
                return Err(refused(slug, "a link flow that does not belong to the signed-in user"));
            };
            return match self.store.link_identity(me.id, slug, &identity.subject, email, now).await {
                Ok(()) => {
                    self.provider_verified(me, email).await;
                    log::info!("user {} connected {slug}", me.id);
                    let detail = json!({ "provider": slug });
                    self.user_did(me.id, EventKind::IdentityLinked, Some(client), detail).await;
                    Ok(Arrival::Linked)
                }
                Err(LinkError::TakenByAnother) => Ok(Arrival::LinkedElsewhere),
                Err(LinkError::Store(e)) => Err(AuthError::from(e).into()),
            };
        }
        // Accounts are keyed on (provider, subject) only: a matching email never links
        // accounts, so nobody can pre-register someone's address and wait for them.
        let user = match self
            .store
            .user_by_identity(slug, &identity.subject)
            .await
            .map_err(AuthError::from)?
        {
            Some(user) if user.disabled => {
                let detail = json!({ "method": slug, "reason": "disabled-account" });
                self.attempt_failed(EventKind::SignInFailed, Some(user.id), client, detail).await;
                log::info!(target: AUDIT_TARGET, "sign-in provider={slug} ip={} outcome=disabled-account", client.ip_text());
                return Err(ArrivalError::Disabled);
            }
            Some(user) => {
                self.provider_verified(&user, email).await;
                user
            }
            None => {
                let user = self
                    .store
                    .create_user_for_identity(&identity.username_hint, email, slug, &identity.subject, now)
                    .await
                    .map_err(|e| {
                        AuthError::Internal(format!("could not create a user for a {slug} identity: {e}"))
                    })?;
                log::info!("created user {} (id {}) for a first {slug} sign-in", user.username, user.id);
                user
            }
        };
        log::info!(target: AUDIT_TARGET, "sign-in provider={slug} user_id={} ip={} outcome=success", user.id, client.ip_text());
        let next = flow.next.unwrap_or_else(|| "/welcome".to_owned());
        let first = Proof::first(Method::Provider(provider.slug)).with_upstream_sid(identity.sid.clone());
        Ok(match self.after_first_step(user, first, false, client, now).await? {
            FirstStep::SignedIn(signed_in) => Arrival::SignedIn { signed_in: Box::new(signed_in), next },
            FirstStep::SecondStep(pending) => Arrival::SecondStep { pending: Box::new(pending), next },
        })
    }

    /// The user's ways to sign in.
    pub async fn account(&self, user: &User) -> Result<Account, AuthError> {
        let identities = self.store.identities(user.id).await?;
        let (has_password, factors, applications) = self.store.password_and_factors(user.id).await?;
        let kinds = EventKind::SIGN_INS.map(EventKind::slug);
        let recent_sign_ins = self.store.events_of(user.id, &kinds, RECENT_SIGN_INS).await?;
        // The count came with the rest: most people have no application to list.
        let applications =
            if applications > 0 { self.connected_applications(user).await? } else { Vec::new() };
        let notices = self.notice_preferences(user).await?;
        Ok(Account { identities, has_password, factors, recent_sign_ins, applications, notices })
    }

    /// What `/api/me` shows beyond the session: the linked providers and the second
    /// factors (not the account page's recent sign-ins or applications).
    pub async fn identities_and_factors(
        &self,
        user: &User,
    ) -> Result<(Vec<LinkedIdentity>, crate::store::Factors), AuthError> {
        let identities = self.store.identities(user.id).await?;
        let (_, factors, _) = self.store.password_and_factors(user.id).await?;
        Ok((identities, factors))
    }

    /// Disconnects the provider `slug` from the user, unless it is their last way to sign
    /// in (the rule and the delete are one store transaction). A provider no longer
    /// configured can be disconnected too.
    pub async fn unlink(&self, user: &User, slug: &str) -> Result<Unlinked, AuthError> {
        let unlinked = self.store.unlink_identity(user.id, slug).await?;
        if unlinked == Unlinked::Done {
            log::info!("user {} disconnected {slug}", user.id);
            let detail = json!({ "provider": slug });
            self.user_did(user.id, EventKind::IdentityUnlinked, None, detail).await;
        }
        Ok(unlinked)
    }
}

/// Why a back-channel logout was not done.
#[derive(Debug, thiserror::Error)]
pub enum BackchannelError {
    /// No such provider, or one that cannot send logout tokens (404).
    #[error("the provider is not configured")]
    NotConfigured,
    /// The logout token did not check out (400, the reason logged only).
    #[error("invalid logout token")]
    Invalid,
    #[error(transparent)]
    Failed(#[from] AuthError),
}

impl Auth {
    /// OpenID Connect Back-Channel Logout: checks the provider's logout token and ends the
    /// portal sessions made through that provider session (`sid`), or every one made through
    /// that provider for its `sub`. Audited per user; returns how many sessions ended.
    pub async fn backchannel_logout(
        &self,
        slug: &str,
        logout_token: &str,
    ) -> Result<usize, BackchannelError> {
        let provider = self.providers.get(slug).ok_or(BackchannelError::NotConfigured)?;
        let now = self.now();
        let request = match provider.logout_token(logout_token, now).await {
            None => return Err(BackchannelError::NotConfigured),
            Some(Err(e)) => {
                log::warn!("{slug}: refused a back-channel logout: {e}");
                return Err(BackchannelError::Invalid);
            }
            Some(Ok(request)) => request,
        };
        let user = match &request.sub {
            Some(sub) => self.store.user_by_identity(slug, sub).await.map_err(AuthError::from)?.map(|u| u.id),
            None => None,
        };
        let ended = if request.sub.is_some() && user.is_none() {
            // Nobody here signed in as that subject.
            Vec::new()
        } else {
            self.store
                .end_upstream_sessions(slug, request.sid.as_deref(), user, now)
                .await
                .map_err(AuthError::from)?
        };
        let mut users: Vec<i64> = ended.iter().map(|(_, user_id)| *user_id).collect();
        users.extend(user);
        users.sort_unstable();
        users.dedup();
        for user_id in &users {
            let sessions = ended.iter().filter(|(_, u)| u == user_id).count();
            self.record(Event {
                kind: EventKind::UpstreamLogout,
                actor: Actor::System,
                subject: Some(*user_id),
                subject_name: None,
                client: None,
                detail: json!({ "provider": slug, "by": "back-channel", "sessions": sessions }),
            })
            .await;
        }
        log::info!(target: AUDIT_TARGET, "back-channel logout provider={slug} sessions={}", ended.len());
        Ok(ended.len())
    }

    /// Where to send the browser after signing out of a session made through a provider
    /// with `logout = "provider"`: its end-session URL (the sign-out there is audited).
    pub async fn upstream_sign_out(&self, user: &User, session: &SessionRecord) -> Option<(String, String)> {
        let provider = self.providers.get(&session.method)?;
        let url = provider.end_session_url()?;
        let detail = json!({ "provider": provider.slug.as_str(), "by": "portal", "session": session.id });
        self.user_did(user.id, EventKind::UpstreamLogout, None, detail).await;
        Some((provider.name.clone(), url))
    }
}

/// Logs why a callback was refused, and says "try again" to the person.
fn refused(slug: &str, why: &str) -> ArrivalError {
    log::warn!("{slug}: refused a callback: {why}");
    ArrivalError::TryAgain(why.to_owned())
}
