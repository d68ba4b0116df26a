-- S-CSCF registrations and contact bindings (TS 24.229 §5.4.1), SQLite dialect.
-- Times are Unix seconds.

CREATE TABLE registration (
    impu     TEXT NOT NULL PRIMARY KEY,  -- the public identity registered (To)
    impi     TEXT NOT NULL,              -- the private identity that authenticated
    profile  TEXT NOT NULL               -- IMSSubscription XML from the SAA / PPR
);

CREATE TABLE binding (
    impu        TEXT    NOT NULL,
    key         TEXT    NOT NULL,        -- instance;reg-id, instance, or contact URI
    position    INTEGER NOT NULL,
    contact     TEXT    NOT NULL,
    path        TEXT    NOT NULL,        -- Path values, one per line
    call_id     TEXT    NOT NULL,
    cseq        INTEGER NOT NULL,
    expires_at  INTEGER NOT NULL,
    PRIMARY KEY (impu, key)
);
CREATE INDEX binding_expires ON binding (expires_at);
