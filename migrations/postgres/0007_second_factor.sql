-- A second factor and passkeys: an authenticator app (TOTP), single-use recovery codes, passkeys
-- (WebAuthn) and the ceremonies that make them; sessions say how they were made.

-- One authenticator app per user. The secret is sealed (AES-256-GCM under a key derived from
-- `secret_key`), never stored in plain text. `confirmed_at` is NULL while setup waits for its
-- first code; `last_step` is the newest 30-second step a code was accepted for, so that no
-- code works twice.
CREATE TABLE totp (
    user_id        BIGINT  PRIMARY KEY REFERENCES users (id) ON DELETE CASCADE,
    sealed_secret  TEXT    NOT NULL,
    created_at     BIGINT  NOT NULL,
    confirmed_at   BIGINT,
    last_step      BIGINT  NOT NULL DEFAULT 0
);

-- Ten per user, stored as SHA-256 of (user id, code); `used_at` set by the one use.
CREATE TABLE recovery_codes (
    user_id     BIGINT  NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    code_hash   TEXT    NOT NULL,
    created_at  BIGINT  NOT NULL,
    used_at     BIGINT,
    PRIMARY KEY (user_id, code_hash)
);

-- Passkeys: the credential as the WebAuthn library keeps it (JSON: public key, counter), and the
-- facts shown and checked: its name, the backup flags, the signature counter, when it was made
-- and last used. `user_handle` is the opaque id the authenticator returns for its user.
CREATE TABLE passkeys (
    credential_id    TEXT    PRIMARY KEY,
    user_id          BIGINT  NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    user_handle      TEXT    NOT NULL,
    name             TEXT    NOT NULL,
    credential       TEXT    NOT NULL,
    backup_eligible  BOOLEAN NOT NULL DEFAULT FALSE,
    backup_state     BOOLEAN NOT NULL DEFAULT FALSE,
    sign_count       BIGINT  NOT NULL DEFAULT 0,
    created_at       BIGINT  NOT NULL,
    last_used_at     BIGINT
);

CREATE INDEX passkeys_user ON passkeys (user_id);
CREATE INDEX passkeys_handle ON passkeys (user_handle);

-- A passkey ceremony under way: its challenge state, taken (deleted) by the one response that
-- may answer it, and swept once expired. The browser carries only `id`, in a private cookie.
CREATE TABLE ceremonies (
    id          TEXT    PRIMARY KEY,
    user_id     BIGINT  REFERENCES users (id) ON DELETE CASCADE,
    kind        TEXT    NOT NULL,
    state       TEXT    NOT NULL,
    expires_at  BIGINT  NOT NULL
);

CREATE INDEX ceremonies_expires ON ceremonies (expires_at);

-- Something to tell a person on their next sign-in ("an administrator reset your second
-- factor"), kept until told.
CREATE TABLE notices (
    user_id  BIGINT  NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    kind     TEXT    NOT NULL,
    at       BIGINT  NOT NULL,
    PRIMARY KEY (user_id, kind)
);

-- How each session was made: the methods (`pwd`, `otp`, `recovery`, `passkey`, a provider's
-- name), space-separated, and the assurance level (1: one factor, 2: two).
ALTER TABLE sessions ADD COLUMN methods TEXT NOT NULL DEFAULT 'pwd';
ALTER TABLE sessions ADD COLUMN aal BIGINT NOT NULL DEFAULT 1;
UPDATE sessions SET methods = method WHERE method <> 'password';
