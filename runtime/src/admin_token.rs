//! The operator's admin token on a node's HTTP API (`Authorization: Bearer <token>`):
//! the HSS provisioning API and the S-CSCF's registration API check it the same way.

use axum::http::{header, HeaderMap};

/// Whether `headers` carry `Authorization: Bearer <token>` with exactly `token`,
/// compared in constant time.
pub fn bearer_matches(headers: &HeaderMap, token: &str) -> bool {
    let presented = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim);
    presented.is_some_and(|p| same(token.as_bytes(), p.as_bytes()))
}

/// `a == b` without an early exit on the first difference.
pub fn same(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_exact_bearer_token() {
        let mut h = HeaderMap::new();
        assert!(!bearer_matches(&h, "secret"));
        h.insert(header::AUTHORIZATION, "Bearer secret".parse().unwrap());
        assert!(bearer_matches(&h, "secret"));
        assert!(!bearer_matches(&h, "secreT"));
        assert!(!bearer_matches(&h, "secret2"));
        h.insert(header::AUTHORIZATION, "Basic secret".parse().unwrap());
        assert!(!bearer_matches(&h, "secret"));
    }
}
