-- RegistrationType of an SPT testing the REGISTER method (TS 29.228 Annex B.2.2, in the
-- SPT's Extension): a bit set of the registration kinds it matches, bit n for the value
-- n (1 INITIAL_REGISTRATION, 2 RE_REGISTRATION, 4 DE_REGISTRATION); 0 when none is
-- given (every REGISTER matches). Rows written before this migration get 0.
ALTER TABLE spt ADD COLUMN registration_types INTEGER NOT NULL DEFAULT 0;
