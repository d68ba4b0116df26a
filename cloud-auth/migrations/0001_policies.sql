-- Every version of every policy (the audit trail); the current policy is the latest
-- version of (owner, name) unless that version is a deletion (enforcer IS NULL).
-- Same text for SQLite and PostgreSQL.
CREATE TABLE policy_version (
    revision   BIGINT NOT NULL PRIMARY KEY,
    owner      TEXT NOT NULL,
    name       TEXT NOT NULL,
    version    BIGINT NOT NULL,
    enforcer   TEXT,
    rules      TEXT,
    created_by TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    UNIQUE (owner, name, version)
);
