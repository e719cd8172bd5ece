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

-- The address was proved: a link sent to it was followed, or a provider said so. Addresses
-- from before mail were set by an administrator, the command line or a provider that
-- verified them (nobody could type their own): they count as verified.
ALTER TABLE users ADD COLUMN email_verified BOOLEAN NOT NULL DEFAULT FALSE;
UPDATE users SET email_verified = TRUE WHERE email IS NOT NULL;

-- One-time links (`/verify/<token>`) that prove an address: only the SHA-256 of the token is
-- kept, with the address it was sent to (a link for an address the user has since changed
-- proves nothing).
CREATE TABLE email_links (
    token_hash  TEXT    PRIMARY KEY,
    user_id     INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    email       TEXT    NOT NULL,
    created_at  BIGINT  NOT NULL,
    expires_at  BIGINT  NOT NULL,
    used_at     BIGINT
);

CREATE INDEX email_links_user ON email_links (user_id);

-- The address a password link was mailed to (NULL: handed over by an administrator).
-- Following it proves that address too.
ALTER TABLE reset_links ADD COLUMN sent_to TEXT;
