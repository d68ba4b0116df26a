-- A pool of S-CSCFs on one database (docs/scale-out.md), SQLite dialect.
-- Each registration is owned by one S-CSCF (its Server-Name); an S-CSCF holds a lease
-- it renews while it runs. The registrations of an owner whose lease ran out are taken
-- over by another S-CSCF of the pool. Times are Unix seconds.

-- The Server-Name of the S-CSCF serving the registration ('' before this migration:
-- the first S-CSCF to start takes those over).
ALTER TABLE registration ADD COLUMN owner TEXT NOT NULL DEFAULT '';
CREATE INDEX registration_owner ON registration (owner);

-- One row per S-CSCF of the pool: until when it is known to run.
CREATE TABLE scscf_lease (
    owner        TEXT    NOT NULL PRIMARY KEY,  -- Server-Name
    lease_until  INTEGER  NOT NULL
);

-- Every identity of a registration's implicit set (the registered one included), so
-- that an S-CSCF finds the registration covering a called identity (tel URI, alias).
CREATE TABLE registration_identity (
    identity  TEXT NOT NULL,
    impu      TEXT NOT NULL,   -- the registered identity (registration.impu)
    PRIMARY KEY (identity, impu)
);
CREATE INDEX registration_identity_impu ON registration_identity (impu);
