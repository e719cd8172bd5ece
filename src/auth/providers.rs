//! Signing in, and linking accounts, through Google and GitHub: minting a flow, completing
//! a callback, and the rule that keeps a last way to sign in.

use serde_json::json;

use crate::auth::admin::valid_email;
use crate::auth::audit::EventKind;
use crate::auth::oauth::{
    tidy_provider_text, Admission, Flow, FlowError, OAuthError, ProviderKind, FLOW_LIFETIME_SECS,
};
use crate::auth::throttle::RetryAfter;
use crate::auth::{ArrivalError, Auth, AuthError, ClientInfo, FirstStep, Pending, SignedIn, StartError};
use crate::logging::AUDIT_TARGET;
use crate::store::{EventRecord, LinkError, LinkedIdentity, Unlinked, User};

/// A provider's callback, as it arrived.
#[derive(Debug, Default)]
pub struct Callback<'a> {
    pub code: Option<&'a str>,
    pub state: Option<&'a str>,
    pub error: Option<&'a str>,
    pub error_description: Option<&'a str>,
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
}

/// How many recent sign-in attempts the account page shows.
pub const RECENT_SIGN_INS: i64 = 5;

impl Auth {
    /// Mints a flow for a sign-in through `kind` (throttled per client address), returning
    /// it with the URL to send the browser to. `next` must already be a safe path.
    pub async fn start_provider_sign_in(
        &self,
        kind: ProviderKind,
        next: Option<&str>,
        client: &ClientInfo,
    ) -> Result<(Flow, String), StartError> {
        if !self.providers.is_enabled(kind) {
            return Err(StartError::NotConfigured);
        }
        let started = self.throttle.oauth_start(client.ip, self.now()).await.map_err(AuthError::from)?;
        if let Err(RetryAfter(seconds)) = started {
            crate::metrics::get()
                .throttled
                .get_or_create(&crate::metrics::WhatLabels { what: "oauth_start" })
                .inc();
            log::warn!("{}: throttled sign-in starts from {}", kind.slug(), client.ip_text());
            return Err(AuthError::Throttled(seconds).into());
        }
        self.begin(kind, next, None).await
    }

    /// Mints a flow that links `kind` to the signed-in `user` and comes back to `/account`.
    pub async fn start_provider_link(
        &self,
        kind: ProviderKind,
        user: &User,
    ) -> Result<(Flow, String), StartError> {
        if !self.providers.is_enabled(kind) {
            return Err(StartError::NotConfigured);
        }
        self.begin(kind, Some("/account"), Some(user.id)).await
    }

    async fn begin(
        &self,
        kind: ProviderKind,
        next: Option<&str>,
        link_user: Option<i64>,
    ) -> Result<(Flow, String), StartError> {
        let now = self.now();
        let started = self.providers.start(kind, now).await.map_err(|e| {
            log::warn!("{}: could not start a sign-in: {e}", kind.slug());
            StartError::Unavailable(e)
        })?;
        let flow = Flow {
            provider: kind,
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
        kind: ProviderKind,
        callback: Callback<'_>,
        stored_flow: Option<&str>,
        me: Option<&User>,
        client: &ClientInfo,
    ) -> Result<Arrival, ArrivalError> {
        let result = self.arrive(kind, callback, stored_flow, me, client).await;
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
            crate::metrics::get().sign_in(kind.slug(), outcome);
        }
        result
    }

    async fn arrive(
        &self,
        kind: ProviderKind,
        callback: Callback<'_>,
        stored_flow: Option<&str>,
        me: Option<&User>,
        client: &ClientInfo,
    ) -> Result<Arrival, ArrivalError> {
        if !self.providers.is_enabled(kind) {
            return Err(ArrivalError::NotConfigured);
        }
        let (slug, now) = (kind.slug(), self.now());
        let flow = Flow::check(stored_flow, kind, callback.state, now);
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

        let (identity, admission) = match self.providers.finish(kind, code, &flow, now).await {
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
            Some(user) => user,
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
        Ok(match self.after_first_step(user, kind.method(), false, client, now).await? {
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
        Ok(Account { identities, has_password, factors, recent_sign_ins, applications })
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

    /// Disconnects `kind` from the user, unless it is their last way to sign in (the rule
    /// and the delete are one store transaction).
    pub async fn unlink(&self, user: &User, kind: ProviderKind) -> Result<Unlinked, AuthError> {
        let unlinked = self.store.unlink_identity(user.id, kind.slug()).await?;
        if unlinked == Unlinked::Done {
            log::info!("user {} disconnected {}", user.id, kind.slug());
            let detail = json!({ "provider": kind.slug() });
            self.user_did(user.id, EventKind::IdentityUnlinked, None, detail).await;
        }
        Ok(unlinked)
    }
}

/// Logs why a callback was refused, and says "try again" to the person.
fn refused(slug: &str, why: &str) -> ArrivalError {
    log::warn!("{slug}: refused a callback: {why}");
    ArrivalError::TryAgain(why.to_owned())
}
