-- Security notices by mail: the ones a user turned off, and the devices they sign in from.

-- Comma-separated: new_device, password, factor, email. Empty: every notice is on.
ALTER TABLE users ADD COLUMN notices_off TEXT NOT NULL DEFAULT '';

-- Where a user signed in from (with [email] only): a sign-in from a device that is not here,
-- or was last seen more than 90 days ago, sends a notice. The device is the SHA-256 of the
-- browser's description and the address, never the address itself.
CREATE TABLE known_devices (
    user_id     INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    device      TEXT    NOT NULL,
    first_seen  BIGINT  NOT NULL,
    last_seen   BIGINT  NOT NULL,
    PRIMARY KEY (user_id, device)
);

CREATE INDEX known_devices_last_seen ON known_devices (last_seen);
