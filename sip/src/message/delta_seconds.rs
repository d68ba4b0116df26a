//! `delta-seconds` values (RFC 3261 §25.1: `1*DIGIT`) as peers send them in Expires,
//! the `expires` Contact parameter, Min-Expires and Retry-After. A value above
//! 2^32-1 is taken as 2^32-1 (RFC 3261 §20.19), so no later arithmetic on a peer's
//! number can overflow a `u64` or a clock.

/// The seconds in `text` (surrounding whitespace ignored), saturated at `u32::MAX`;
/// `None` unless it is one or more ASCII digits.
pub fn delta_seconds(text: &str) -> Option<u32> {
    let digits = text.trim();
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Some(digits.bytes().fold(0u32, |acc, d| {
        acc.saturating_mul(10).saturating_add(u32::from(d - b'0'))
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn reads_digits_and_saturates() {
        assert_eq!(delta_seconds("3600"), Some(3600));
        assert_eq!(delta_seconds(" 0 "), Some(0));
        assert_eq!(delta_seconds("4294967295"), Some(u32::MAX));
        assert_eq!(delta_seconds("4294967296"), Some(u32::MAX));
        assert_eq!(delta_seconds("99999999999999999999"), Some(u32::MAX));
        assert_eq!(delta_seconds("18446744073709551615"), Some(u32::MAX));
        assert_eq!(delta_seconds(&"9".repeat(5000)), Some(u32::MAX));
    }

    #[test]
    fn refuses_what_is_not_digits() {
        for bad in ["", " ", "-1", "+5", "1e9", "0x10", "3600s", "1 2", "١٢"] {
            assert_eq!(delta_seconds(bad), None, "{bad:?}");
        }
    }

    proptest! {
        #[test]
        fn agrees_with_u128_parsing(n in any::<u128>()) {
            let expected = u32::try_from(n).unwrap_or(u32::MAX);
            prop_assert_eq!(delta_seconds(&n.to_string()), Some(expected));
        }
    }
}
