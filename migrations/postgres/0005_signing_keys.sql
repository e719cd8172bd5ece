-- Keys that sign forward-auth assertions (`X-Portal-Assertion`, EdDSA).
CREATE TABLE signing_keys (
    kid            TEXT    PRIMARY KEY,
    algorithm      TEXT    NOT NULL,
    private_pkcs8  TEXT    NOT NULL,
    public_key     TEXT    NOT NULL,
    created_at     BIGINT  NOT NULL,
    retired_at     BIGINT
);
