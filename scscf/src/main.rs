//! S-CSCF: registrar and session control (TS 24.229 §5.4).
fn main() {}
