//! I-CSCF: entry point of the home network (TS 24.229 §5.3).
fn main() {}
