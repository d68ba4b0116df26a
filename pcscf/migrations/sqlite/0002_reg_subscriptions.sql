-- The dialogs of the P-CSCF's reg event subscriptions (TS 24.229 §5.2.3, RFC 6665),
-- one per registered UDP flow, so that the S-CSCF's NOTIFYs are still matched after a
-- restart. SQLite dialect. Times are Unix seconds.

CREATE TABLE pcscf_reg_subscription (
    pcscf       TEXT   NOT NULL,  -- [node] name
    flow        TEXT   NOT NULL,  -- label of the flow whose registration is watched
    call_id     TEXT   NOT NULL,
    local_tag   TEXT   NOT NULL,  -- our tag (From of our SUBSCRIBEs)
    remote_tag  TEXT   NOT NULL,  -- the notifier's tag
    resource    TEXT   NOT NULL,  -- the UE's public identity subscribed to (To)
    identity    TEXT   NOT NULL,  -- our node identity (From, P-Asserted-Identity)
    contact     TEXT   NOT NULL,  -- our Contact URI
    target      TEXT   NOT NULL,  -- Request-URI of the next SUBSCRIBE
    route_set   TEXT   NOT NULL,  -- Route values of the next SUBSCRIBE, one per line
    cseq        INTEGER NOT NULL,  -- CSeq of the last SUBSCRIBE answered 2xx
    expires_at  INTEGER NOT NULL,  -- when the notifier's grant lapses
    refresh_at  INTEGER NOT NULL,  -- when to refresh it
    PRIMARY KEY (pcscf, flow)
);
