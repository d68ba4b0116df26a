-- The registrations of UDP flows, so that they survive a restart of the P-CSCF
-- (issue 15). Rows are keyed by the P-CSCF's `[node] name` and the flow's label.
-- Times are Unix seconds; lists are one value per line. `IF NOT EXISTS`: databases
-- created before the schema had migrations hold this table already.

CREATE TABLE IF NOT EXISTS pcscf_registration (
    pcscf TEXT NOT NULL,
    flow TEXT NOT NULL,
    public_identity TEXT NOT NULL,
    contacts TEXT NOT NULL,
    expires_at BIGINT NOT NULL,
    service_route TEXT NOT NULL,
    associated TEXT NOT NULL,
    PRIMARY KEY (pcscf, flow)
);
