-- Sessions as records: the cookie carries the id and a secret; the store keeps a hash of the
-- secret, so a copy of the database cannot be replayed as cookies. Ended sessions keep their
-- row (ended_at) until the sweep deletes them after `session.retention`.
CREATE TABLE sessions (
    id            TEXT    PRIMARY KEY,
    -- SHA-256 of the secret the cookie carries, hex.
    secret_hash   TEXT    NOT NULL,
    user_id       INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    -- password | google | github
    method        TEXT    NOT NULL,
    created_at    BIGINT  NOT NULL,
    last_seen_at  BIGINT  NOT NULL,
    ended_at      BIGINT,
    -- The client as a person recognises it: "Firefox on Linux", and its address.
    client        TEXT    NOT NULL,
    ip            TEXT,
    -- "Keep me signed in"
    persist       BOOLEAN NOT NULL DEFAULT FALSE
);

CREATE INDEX sessions_user ON sessions (user_id, created_at);
CREATE INDEX sessions_last_seen ON sessions (last_seen_at);

-- Revocation is per session now: one statement ends every session of a user.
ALTER TABLE users DROP COLUMN session_epoch;
