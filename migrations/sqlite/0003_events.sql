-- The audit log: what happened, when, by whom, to whom, from where. Never a password,
-- cookie value, token, code or client secret: `detail` is a small JSON object of plain facts
-- (the method, a reason, a provider, the name typed at a failed sign-in).
CREATE TABLE events (
    id               INTEGER PRIMARY KEY,
    at               BIGINT  NOT NULL,
    -- A stable slug: sign_in_succeeded, sign_in_failed, ...
    kind             TEXT    NOT NULL,
    -- The user id (as text) who did it, or cli / system / anonymous.
    actor            TEXT    NOT NULL,
    subject_user_id  INTEGER REFERENCES users (id) ON DELETE SET NULL,
    ip               TEXT,
    client           TEXT,
    detail           TEXT    NOT NULL DEFAULT '{}'
);

CREATE INDEX events_at ON events (at);
CREATE INDEX events_subject ON events (subject_user_id, at);
CREATE INDEX events_kind ON events (kind, at);
