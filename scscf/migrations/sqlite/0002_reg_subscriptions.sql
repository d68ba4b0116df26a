-- Subscriptions to the reg event package (RFC 3680, TS 24.229 §5.4.2.1) and their
-- dialogs, so that they survive a restart of the S-CSCF. SQLite dialect.
-- Times are Unix seconds.

CREATE TABLE reg_subscription (
    key            TEXT    NOT NULL PRIMARY KEY, -- Call-ID, our tag, their tag
    resource       TEXT    NOT NULL,             -- the public identity subscribed to
    subscriber     TEXT    NOT NULL,             -- the asserted identity of the subscriber
    kind           TEXT    NOT NULL,             -- user, pcscf or application_server
    call_id        TEXT    NOT NULL,
    local_tag      TEXT    NOT NULL,
    remote_tag     TEXT    NOT NULL,
    local_uri      TEXT    NOT NULL,             -- From of our NOTIFYs
    remote_uri     TEXT    NOT NULL,             -- To of our NOTIFYs
    remote_target  TEXT    NOT NULL,             -- Request-URI of our NOTIFYs
    route_set      TEXT    NOT NULL,             -- Route values, one per line
    local_cseq     INTEGER  NOT NULL,             -- CSeq of the last NOTIFY
    remote_cseq    INTEGER  NOT NULL,             -- CSeq of the last SUBSCRIBE
    version        INTEGER  NOT NULL,             -- version of the next reginfo document
    expires_at     INTEGER  NOT NULL,
    event_id       TEXT    NOT NULL              -- Event id parameter, empty when none
);
CREATE INDEX reg_subscription_resource ON reg_subscription (resource);
