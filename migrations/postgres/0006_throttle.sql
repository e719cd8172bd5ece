-- Throttle windows kept in the store, so that several instances share one budget: a bucket is
-- an HMAC of (scope, account, address) under a key derived from `secret_key`, never the
-- typed name itself. Rows whose window has passed are deleted by the sweep.
CREATE TABLE throttle (
    bucket    TEXT    PRIMARY KEY,
    started   BIGINT  NOT NULL,
    attempts  BIGINT  NOT NULL,
    -- Whether a refusal in this window was already written to the audit log.
    reported  BOOLEAN NOT NULL DEFAULT FALSE
);

CREATE INDEX throttle_started ON throttle (started);
