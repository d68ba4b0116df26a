-- GRUUs (RFC 5627, TS 24.229 §5.4.7A), SQLite dialect.
-- The CSeq of the REGISTER that started the binding's current set of temporary GRUUs
-- (RFC 5627 §5.3: the set starts again with a new Call-ID; RFC 5628 `first-cseq`);
-- -1: the UE asked for no GRUU. The temporary GRUUs themselves are not stored: each is
-- sealed with the S-CSCF's GRUU key and checked against this column and the binding's
-- call_id and cseq.
ALTER TABLE binding ADD COLUMN gruu_first_cseq INTEGER NOT NULL DEFAULT -1;
