-- Email (`[email]`): the outbox, and the state mail gives a user.

-- Every message is written here first, in the transaction of the change that caused it; a
-- worker sends it, retrying with backoff, and marks it sent or failed. The message itself
-- (subject, text, HTML: it may hold a one-time link) is sealed under a key derived from
-- `secret_key` and dropped once the message is sent or given up.
CREATE TABLE outbox (
    id               INTEGER PRIMARY KEY,
    -- Random: the Message-ID's left part, and what the seal is bound to.
    message_id       TEXT    NOT NULL UNIQUE,
    -- reset, verify, invite, or notice_* (the template's name).
    kind             TEXT    NOT NULL,
    user_id          INTEGER REFERENCES users (id) ON DELETE SET NULL,
    recipient        TEXT    NOT NULL,
    sealed           TEXT,
    -- pending, sent or failed.
    status           TEXT    NOT NULL DEFAULT 'pending',
    attempts         INTEGER NOT NULL DEFAULT 0,
    next_attempt_at  BIGINT  NOT NULL,
    -- A worker sending it holds it until then (another instance, or this one after a
    -- crash, takes it up afterwards).
    claimed_until    BIGINT,
    last_error       TEXT,
    created_at       BIGINT  NOT NULL,
    sent_at          BIGINT
);

CREATE INDEX outbox_due ON outbox (status, next_attempt_at);
CREATE INDEX outbox_user ON outbox (user_id, kind, created_at);

-- The address was proved: a link sent to it was followed, or a provider said so.
ALTER TABLE users ADD COLUMN email_verified BOOLEAN NOT NULL DEFAULT FALSE;
