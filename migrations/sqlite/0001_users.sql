-- Users, and the identities (provider, subject) linked to them.
-- Times are Unix seconds in BIGINT so the same queries serve PostgreSQL.
CREATE TABLE users (
    id             INTEGER PRIMARY KEY,
    username       TEXT    NOT NULL,
    -- NFKC + lowercase form of `username`: what uniqueness and lookups use.
    username_key   TEXT    NOT NULL UNIQUE,
    email          TEXT,
    -- PHC string (Argon2id); NULL for accounts that only sign in through a provider.
    password_hash  TEXT,
    is_admin       BOOLEAN NOT NULL DEFAULT FALSE,
    disabled       BOOLEAN NOT NULL DEFAULT FALSE,
    -- Bumped on logout, password change and disable: session cookies carrying an older
    -- epoch stop working.
    session_epoch  BIGINT  NOT NULL DEFAULT 0,
    created_at     BIGINT  NOT NULL,
    last_login_at  BIGINT
);

CREATE TABLE identities (
    provider    TEXT    NOT NULL,
    subject     TEXT    NOT NULL,
    user_id     INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    email       TEXT,
    created_at  BIGINT  NOT NULL,
    PRIMARY KEY (provider, subject)
);

CREATE INDEX identities_user ON identities (user_id);
