-- Keys that sign forward-auth assertions (`X-Portal-Assertion`, EdDSA). The newest key
-- signs; keys it replaced stay published at /.well-known/jwks.json for a day, so an
-- assertion signed just before a rotation still verifies.
CREATE TABLE signing_keys (
    kid            TEXT    PRIMARY KEY,
    algorithm      TEXT    NOT NULL,
    -- PKCS#8 DER, base64. The store file is the portal's alone (mode 0600).
    private_pkcs8  TEXT    NOT NULL,
    -- The raw Ed25519 public key, base64url (the JWK's `x`).
    public_key     TEXT    NOT NULL,
    created_at     BIGINT  NOT NULL,
    -- When a newer key took over; NULL for the current one.
    retired_at     BIGINT
);
