//! HSS: subscriber database speaking Diameter Cx (TS 29.228/29.229).
fn main() {}
