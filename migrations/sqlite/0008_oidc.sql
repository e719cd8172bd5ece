-- The portal as an OpenID provider: the applications added from the console, API or CLI (those
-- in the configuration are not stored), the consents people gave them, and the grants: one per
-- authorization, holding its single-use code, and the refresh tokens it has issued.

-- An application. `secret_hash` is SHA-256 of a generated secret, hex (NULL for a public
-- client); `redirect_uris` and `post_logout_redirect_uris` are newline-separated; `allow` is the
-- rule's JSON (`"signed-in"`, `"admins"` or a list of usernames).
CREATE TABLE oidc_clients (
    client_id                  TEXT    PRIMARY KEY,
    name                       TEXT    NOT NULL,
    secret_hash                TEXT,
    redirect_uris              TEXT    NOT NULL,
    post_logout_redirect_uris  TEXT    NOT NULL DEFAULT '',
    public                     BOOLEAN NOT NULL DEFAULT FALSE,
    consent                    TEXT    NOT NULL DEFAULT 'explicit',
    allow                      TEXT    NOT NULL DEFAULT '"signed-in"',
    second_factor              BOOLEAN NOT NULL DEFAULT FALSE,
    signing_alg                TEXT    NOT NULL DEFAULT 'RS256',
    created_at                 BIGINT  NOT NULL
);

-- What a person let an application see (space-separated scopes), until they revoke it.
CREATE TABLE oidc_consents (
    user_id     INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    client_id   TEXT    NOT NULL,
    scopes      TEXT    NOT NULL,
    granted_at  BIGINT  NOT NULL,
    PRIMARY KEY (user_id, client_id)
);

-- One authorization: who, for which application, from which portal session, how that session
-- was made. The code is kept as SHA-256 (hex) and taken once (`code_used_at`); every token the
-- grant issues dies with it (`revoked_at`). A grant with `offline_access` outlives its session.
CREATE TABLE oidc_grants (
    id              TEXT    PRIMARY KEY,
    client_id       TEXT    NOT NULL,
    user_id         INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    session_id      TEXT,
    scopes          TEXT    NOT NULL,
    nonce           TEXT,
    auth_time       BIGINT  NOT NULL,
    methods         TEXT    NOT NULL,
    aal             BIGINT  NOT NULL,
    code_hash       TEXT    NOT NULL UNIQUE,
    code_expires_at BIGINT  NOT NULL,
    code_used_at    BIGINT,
    redirect_uri    TEXT    NOT NULL,
    code_challenge  TEXT,
    offline         BOOLEAN NOT NULL DEFAULT FALSE,
    created_at      BIGINT  NOT NULL,
    revoked_at      BIGINT
);

CREATE INDEX oidc_grants_user ON oidc_grants (user_id);
CREATE INDEX oidc_grants_session ON oidc_grants (session_id);
CREATE INDEX oidc_grants_created ON oidc_grants (created_at);

-- A grant's refresh tokens as SHA-256 (hex). Each is used once: its use makes the next one, and
-- a second use of a used one revokes the grant (the whole family).
CREATE TABLE oidc_refresh_tokens (
    token_hash  TEXT    PRIMARY KEY,
    grant_id    TEXT    NOT NULL REFERENCES oidc_grants (id) ON DELETE CASCADE,
    created_at  BIGINT  NOT NULL,
    expires_at  BIGINT  NOT NULL,
    used_at     BIGINT
);

CREATE INDEX oidc_refresh_grant ON oidc_refresh_tokens (grant_id);
