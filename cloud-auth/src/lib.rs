//! Cloud authorization for the IMS core: Keystone token validation, the MultiPol-style
//! policy service and the request filter used by the P-CSCF and S-CSCF.
//!
//! Built in the cloud-authorization issue; the crate exists now so the layout is final.
