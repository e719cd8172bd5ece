-- Sessions as records: the cookie carries the id and a secret; the store keeps a hash of
-- the secret. Ended sessions keep their row (ended_at) until the sweep deletes them.
CREATE TABLE sessions (
    id            TEXT    PRIMARY KEY,
    secret_hash   TEXT    NOT NULL,
    user_id       BIGINT  NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    method        TEXT    NOT NULL,
    created_at    BIGINT  NOT NULL,
    last_seen_at  BIGINT  NOT NULL,
    ended_at      BIGINT,
    client        TEXT    NOT NULL,
    ip            TEXT,
    persist       BOOLEAN NOT NULL DEFAULT FALSE
);

CREATE INDEX sessions_user ON sessions (user_id, created_at);
CREATE INDEX sessions_last_seen ON sessions (last_seen_at);
