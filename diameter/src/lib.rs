//! Diameter base protocol (RFC 6733) and the 3GPP Cx/Dx application (TS 29.228/29.229).
//!
//! The codec, dictionaries, peer state machine and Cx commands arrive with the HSS issue;
//! this crate exists now so the workspace layout is final from the first commit.
