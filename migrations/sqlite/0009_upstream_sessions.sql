-- Sign-in through any OpenID provider: a session made through one keeps the provider's session
-- id (`sid` of its ID token), so the provider's back-channel logout can end exactly the
-- sessions that rode on it. NULL for every other session.
ALTER TABLE sessions ADD COLUMN upstream_sid TEXT;

CREATE INDEX sessions_upstream ON sessions (method, upstream_sid);
