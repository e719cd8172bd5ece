-- The admin console: one-time password links, search by email, and an audit log that
-- outlives the users it is about.

-- A one-time link (`/reset/<token>`) lets a person set their password. The token itself is
-- never stored: only its SHA-256, so a copy of the database cannot be used to follow one.
CREATE TABLE reset_links (
    token_hash  TEXT    PRIMARY KEY,
    user_id     INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    created_at  BIGINT  NOT NULL,
    expires_at  BIGINT  NOT NULL,
    -- Set when the link is followed, or when a newer link for the same user replaces it.
    used_at     BIGINT,
    -- Who made it: a user id (as text) or `cli`.
    created_by  TEXT    NOT NULL
);

CREATE INDEX reset_links_user ON reset_links (user_id);

-- The lowercased email, written by the portal: what the console's prefix search reads,
-- through an index (filled for existing rows at start).
ALTER TABLE users ADD COLUMN email_key TEXT;
CREATE INDEX users_email_key ON users (email_key);

-- Events keep their subject's id and name after the user is deleted (the audit log is the
-- record of what happened to them): no foreign key on the subject any more.
CREATE TABLE events_kept (
    id               INTEGER PRIMARY KEY,
    at               BIGINT  NOT NULL,
    kind             TEXT    NOT NULL,
    actor            TEXT    NOT NULL,
    subject_user_id  INTEGER,
    -- The subject's username when the event was written.
    subject_name     TEXT,
    ip               TEXT,
    client           TEXT,
    detail           TEXT    NOT NULL DEFAULT '{}'
);

INSERT INTO events_kept (id, at, kind, actor, subject_user_id, subject_name, ip, client, detail)
SELECT e.id, e.at, e.kind, e.actor, e.subject_user_id,
       (SELECT u.username FROM users u WHERE u.id = e.subject_user_id), e.ip, e.client, e.detail
FROM events e;

DROP TABLE events;
ALTER TABLE events_kept RENAME TO events;

CREATE INDEX events_at ON events (at);
CREATE INDEX events_subject ON events (subject_user_id, at);
CREATE INDEX events_subject_name ON events (subject_name, at);
CREATE INDEX events_kind ON events (kind, at);
