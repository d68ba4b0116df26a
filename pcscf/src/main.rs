//! P-CSCF: the IMS edge proxy toward UEs (TS 24.229 §5.2).
fn main() {}
