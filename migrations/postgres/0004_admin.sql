-- The admin console: one-time password links and search by email.
CREATE TABLE reset_links (
    token_hash  TEXT    PRIMARY KEY,
    user_id     BIGINT  NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    created_at  BIGINT  NOT NULL,
    expires_at  BIGINT  NOT NULL,
    used_at     BIGINT,
    created_by  TEXT    NOT NULL
);

CREATE INDEX reset_links_user ON reset_links (user_id);

ALTER TABLE users ADD COLUMN email_key TEXT COLLATE "C";
CREATE INDEX users_email_key ON users (email_key);
