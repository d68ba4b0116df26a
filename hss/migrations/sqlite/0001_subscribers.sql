-- HSS subscriber data (TS 29.228 §6.5 / Annex B data model), SQLite dialect.
-- Flags are 0/1 integers in both dialects: sqlx's Any driver cannot decode SQLite BOOLEAN.
-- Times are Unix seconds.

CREATE TABLE subscription (
    id          TEXT    NOT NULL PRIMARY KEY,
    project_id  TEXT,                -- Keystone project (tenant) of the subscriber
    user_id     TEXT,                -- optional Keystone user
    created_at  INTEGER NOT NULL,
    updated_at  INTEGER NOT NULL
);

-- Private identities (IMPI) and their credentials. digest_ha1 is H(user:realm:password)
-- (RFC 2617 §3.2.2.2), never the password. aka_k / aka_opc are AES-256-GCM
-- nonce || ciphertext || tag, bound to the IMPI as associated data.
CREATE TABLE private_identity (
    impi             TEXT    NOT NULL PRIMARY KEY,
    subscription_id  TEXT    NOT NULL REFERENCES subscription (id) ON DELETE CASCADE,
    realm            TEXT    NOT NULL,
    digest_ha1       TEXT,
    aka_k            BLOB,
    aka_opc          BLOB,
    aka_amf          TEXT,            -- 4 hex digits
    aka_sqn          INTEGER,         -- SQN_HE, 48 bits (TS 33.102 Annex C)
    CHECK ((aka_k IS NULL) = (aka_opc IS NULL))
);
CREATE INDEX private_identity_subscription ON private_identity (subscription_id);

CREATE TABLE service_profile (
    subscription_id  TEXT NOT NULL REFERENCES subscription (id) ON DELETE CASCADE,
    name             TEXT NOT NULL,
    PRIMARY KEY (subscription_id, name)
);

-- InitialFilterCriteria (TS 29.228 Annex B.2.2); cnf is NULL when there is no trigger
-- point, else 1 for ConditionTypeCNF true.
CREATE TABLE ifc (
    subscription_id            TEXT    NOT NULL,
    profile                    TEXT    NOT NULL,
    position                   INTEGER NOT NULL,
    priority                   INTEGER NOT NULL,
    cnf                        INTEGER,
    server_name                TEXT    NOT NULL,
    default_handling           INTEGER NOT NULL,
    service_info               TEXT,
    include_register_request   INTEGER NOT NULL DEFAULT 0,
    include_register_response  INTEGER NOT NULL DEFAULT 0,
    profile_part_indicator     INTEGER,
    PRIMARY KEY (subscription_id, profile, position),
    FOREIGN KEY (subscription_id, profile)
        REFERENCES service_profile (subscription_id, name) ON DELETE CASCADE
);

-- Service point triggers of an iFC's trigger point.
CREATE TABLE spt (
    subscription_id  TEXT    NOT NULL,
    profile          TEXT    NOT NULL,
    ifc_position     INTEGER NOT NULL,
    position         INTEGER NOT NULL,
    grp              INTEGER NOT NULL,
    negated          INTEGER NOT NULL DEFAULT 0,
    kind             TEXT    NOT NULL,
    value            TEXT    NOT NULL,
    content          TEXT,
    PRIMARY KEY (subscription_id, profile, ifc_position, position),
    FOREIGN KEY (subscription_id, profile, ifc_position)
        REFERENCES ifc (subscription_id, profile, position) ON DELETE CASCADE
);

-- Public identities (IMPU, sip: or tel:) with their S-CSCF assignment and registration
-- state (IMS-User-State, TS 29.229 §6.3.7: 0 NOT_REGISTERED, 1 REGISTERED,
-- 2 UNREGISTERED). `profile` names a service_profile of the same subscription; the store
-- checks it (no foreign key, so that profiles can be replaced under existing identities).
CREATE TABLE public_identity (
    impu             TEXT    NOT NULL PRIMARY KEY,
    subscription_id  TEXT    NOT NULL REFERENCES subscription (id) ON DELETE CASCADE,
    profile          TEXT    NOT NULL,
    barred           INTEGER NOT NULL DEFAULT 0,
    implicit_set     INTEGER,
    position         INTEGER NOT NULL,
    reg_state        INTEGER NOT NULL DEFAULT 0,
    scscf_name       TEXT
);
CREATE INDEX public_identity_subscription ON public_identity (subscription_id);

-- Visited networks where the subscriber may roam (Visited-Network-Identifier).
CREATE TABLE roaming_network (
    subscription_id  TEXT NOT NULL REFERENCES subscription (id) ON DELETE CASCADE,
    network          TEXT NOT NULL,
    PRIMARY KEY (subscription_id, network)
);
