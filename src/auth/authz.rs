//! The forward-auth check: may the request a proxy asks about go through, and who is it?
//! The session is checked as the `LoggedIn` guard checks it (cached the same way); the rules
//! are [`Policy`]'s; an assertion is signed only when `forward_auth.assertion` is on.

use crate::auth::assertion::Claims;
use crate::auth::forward::{Policy, Target, Verdict};
use crate::auth::{Auth, AuthError};
use crate::store::{SessionRecord, User};

/// What a check comes to, for a request with a valid session.
#[derive(Debug)]
pub enum Gate {
    /// Through, as this user (with an assertion when configured).
    Allowed { assertion: Option<String> },
    /// Signed in, but the rules (or a host outside `allowed_domains`, or a request the
    /// proxy did not describe) refuse it.
    Refused,
    /// The rule asks for a second factor this session has not shown: to the second step.
    SecondFactor,
}

impl Auth {
    /// The forward-auth policy.
    pub fn forward_policy(&self) -> &Policy {
        &self.forward
    }

    /// Whether the rules refuse `target` whoever asks (an ambiguous path where a path rule
    /// could cover it; see [`Policy::refuses_unseen`]). Logged at `debug` with the reason,
    /// never the path, which may carry a token.
    pub fn refuses_unseen(&self, target: &Target) -> bool {
        let Some(ambiguity) = self.forward.refuses_unseen(target) else {
            return false;
        };
        log::debug!("forward-auth: refused an ambiguous path on {}: {ambiguity}", target.host);
        true
    }

    /// Decides for a signed-in user. `target` is `None` when the proxy sent neither
    /// `X-Original-URL` nor `X-Forwarded-Host`: refused, and logged, since the proxy's
    /// configuration is wrong.
    pub async fn gate(
        &self,
        user: &User,
        session: &SessionRecord,
        target: Option<&Target>,
    ) -> Result<Gate, AuthError> {
        let Some(target) = target else {
            log::warn!(
                "forward-auth: the proxy sent neither X-Original-URL nor X-Forwarded-Proto/Host/Uri; refused"
            );
            return Ok(Gate::Refused);
        };
        match self.forward.decide(target, user, session.aal) {
            Verdict::Deny => return Ok(Gate::Refused),
            Verdict::SecondFactor => return Ok(Gate::SecondFactor),
            Verdict::Allow => {}
        }
        let assertion = if self.forward.assertion {
            let now = self.now();
            let claims = Claims::new(&self.issuer, user, session, &target.host, now);
            let signed =
                self.signer.sign(&claims, now).await.map_err(|e| AuthError::Internal(e.to_string()))?;
            Some(signed)
        } else {
            None
        };
        Ok(Gate::Allowed { assertion })
    }

    /// Whether the portal gates `target`'s host at all (`forward_auth.allowed_domains`).
    /// Asked before the session: a host outside them is refused whoever asks, so an
    /// anonymous request is not sent to sign in for a host it could never reach.
    pub fn gates(&self, target: Option<&Target>) -> bool {
        let Some(target) = target else {
            log::warn!(
                "forward-auth: the proxy sent neither X-Original-URL nor X-Forwarded-Proto/Host/Uri; refused"
            );
            return false;
        };
        self.forward.is_allowed_host(&target.host)
    }

    /// The JWK Set of the assertion keys.
    pub async fn jwks(&self) -> Result<std::sync::Arc<str>, AuthError> {
        self.signer.jwks(self.now()).await.map_err(|e| match e {
            crate::auth::assertion::KeyError::Store(e) => AuthError::Store(e),
            other => AuthError::Internal(other.to_string()),
        })
    }

    /// Where to go after signing in (or out): `next` when it is a path on this site, else
    /// `rd` when it is an absolute URL on a host in `forward_auth.allowed_domains`, else
    /// `None` (the caller's own default).
    pub fn destination(&self, next: Option<&str>, rd: Option<&str>) -> Option<String> {
        next.and_then(crate::auth::next::safe_next)
            .map(str::to_owned)
            .or_else(|| rd.and_then(|rd| self.forward.redirect_target(rd)))
    }

    /// The signer (for `portal keys`).
    pub fn signer(&self) -> &crate::auth::assertion::Signer {
        &self.signer
    }
}
