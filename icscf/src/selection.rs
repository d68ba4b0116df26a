//! S-CSCF selection from a UAA (TS 29.228 §6.1.1, §6.7; TS 24.229 §5.3.1.2): the
//! Server-Name when the HSS gives one (an S-CSCF already assigned), else the
//! configured S-CSCF that has every Mandatory-Capability and the most
//! Optional-Capabilities (ties: the one the HSS names in Server-Capabilities, then
//! the highest rendezvous score of the user and the S-CSCF's name).
//!
//! The rendezvous (highest-random-weight) tie-break spreads new users over a pool of
//! equally capable S-CSCFs, gives every I-CSCF the same choice for the same user with
//! no shared state, and when an S-CSCF leaves the list moves only its own users. It is
//! load sharing, not a secret: the hash is FNV-1a with a 64-bit finaliser, stable
//! across builds and versions (the standard library's hasher is not).

use ims_config::ScscfEntry;
use ims_diameter::cx::ServerCapabilities;

/// Where the REGISTER goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Selected {
    /// The S-CSCF's Server-Name.
    pub name: String,
    /// The Route value to pre-load, `<sip:...;lr>`.
    pub route: String,
}

fn route_of(uri: &str) -> String {
    if uri.to_ascii_lowercase().contains(";lr") {
        format!("<{uri}>")
    } else {
        format!("<{uri};lr>")
    }
}

/// The S-CSCF named `name`: its configured URI, else the name itself as a SIP URI.
pub fn by_name(name: &str, scscfs: &[ScscfEntry]) -> Selected {
    let uri = scscfs
        .iter()
        .find(|s| s.name.eq_ignore_ascii_case(name))
        .map_or(name, |s| s.uri.as_str());
    Selected {
        name: name.to_string(),
        route: route_of(uri),
    }
}

/// The rendezvous score of `user` on the S-CSCF `name`: FNV-1a over both (a zero byte
/// between them), mixed by the SplitMix64 finaliser so that similar names and users
/// spread evenly.
fn rendezvous(user: &str, name: &str) -> u64 {
    const FNV_OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
    const FNV_PRIME: u64 = 0x0000_0100_0000_01b3;
    let bytes = name
        .bytes()
        .map(|b| b.to_ascii_lowercase())
        .chain(std::iter::once(0))
        .chain(user.bytes());
    let mut h = bytes.fold(FNV_OFFSET, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(FNV_PRIME)
    });
    h ^= h >> 30;
    h = h.wrapping_mul(0xbf58_476d_1ce4_e5b9);
    h ^= h >> 27;
    h = h.wrapping_mul(0x94d0_49bb_1331_11eb);
    h ^ (h >> 31)
}

/// The best configured S-CSCF for `caps` to serve `user` (the public identity the
/// request is for), or `None` when none has every mandatory capability.
pub fn by_capabilities(
    caps: &ServerCapabilities,
    user: &str,
    scscfs: &[ScscfEntry],
) -> Option<Selected> {
    let named = |s: &ScscfEntry| {
        caps.server_names
            .iter()
            .any(|n| n.eq_ignore_ascii_case(&s.name))
    };
    scscfs
        .iter()
        .filter(|s| caps.mandatory.iter().all(|m| s.capabilities.contains(m)))
        .max_by_key(|s| {
            let optional = caps
                .optional
                .iter()
                .filter(|o| s.capabilities.contains(o))
                .count();
            // Larger is better; equally capable S-CSCFs share the users.
            (optional, named(s), rendezvous(user, &s.name))
        })
        .map(|s| Selected {
            name: s.name.clone(),
            route: route_of(&s.uri),
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(name: &str, caps: &[u32]) -> ScscfEntry {
        ScscfEntry {
            name: format!("sip:{name}.ims.example.net"),
            uri: format!("sip:{name}.local:5080;lr"),
            capabilities: caps.to_vec(),
        }
    }

    fn caps(mandatory: &[u32], optional: &[u32]) -> ServerCapabilities {
        ServerCapabilities {
            mandatory: mandatory.to_vec(),
            optional: optional.to_vec(),
            server_names: Vec::new(),
        }
    }

    #[test]
    fn mandatory_all_then_most_optional() {
        let list = [
            entry("a", &[1]),
            entry("b", &[1, 2, 3]),
            entry("c", &[1, 2]),
        ];
        let s = by_capabilities(&caps(&[1], &[2, 3]), USER, &list).unwrap();
        assert_eq!(s.name, "sip:b.ims.example.net");
        assert_eq!(s.route, "<sip:b.local:5080;lr>");
        // b lacks 4: only the one with every mandatory capability.
        let list = [entry("a", &[1, 4]), entry("b", &[1, 2, 3])];
        let s = by_capabilities(&caps(&[1, 4], &[2, 3]), USER, &list).unwrap();
        assert_eq!(s.name, "sip:a.ims.example.net");
        assert_eq!(by_capabilities(&caps(&[9], &[]), USER, &list), None);
        assert_eq!(by_capabilities(&caps(&[], &[]), USER, &[]), None);
    }

    const USER: &str = "sip:alice@ims.example.net";

    fn user(i: usize) -> String {
        format!("sip:user{i}@ims.example.net")
    }

    #[test]
    fn ties_go_to_the_one_the_hss_names() {
        let list = [entry("a", &[]), entry("b", &[])];
        let mut named = caps(&[], &[]);
        for name in ["a", "b"] {
            named.server_names = vec![format!("sip:{name}.ims.example.net")];
            for i in 0..50 {
                assert_eq!(
                    by_capabilities(&named, &user(i), &list).unwrap().name,
                    format!("sip:{name}.ims.example.net")
                );
            }
        }
    }

    #[test]
    fn equally_capable_s_cscfs_share_the_users_and_each_user_keeps_its_choice() {
        let list = [entry("a", &[1]), entry("b", &[1]), entry("c", &[1])];
        let none = caps(&[1], &[]);
        let chosen: Vec<String> = (0..3000)
            .map(|i| by_capabilities(&none, &user(i), &list).unwrap().name)
            .collect();
        for name in ["a", "b", "c"] {
            let n = chosen
                .iter()
                .filter(|c| **c == format!("sip:{name}.ims.example.net"))
                .count();
            // A fair split is 1 000 each; the hash is deterministic, so this bound is
            // about the spread, not about luck.
            assert!((800..=1200).contains(&n), "{name}: {n} of 3000");
        }
        // The same user, asked again (another I-CSCF, later): the same S-CSCF.
        for (i, c) in chosen.iter().enumerate().take(100) {
            assert_eq!(&by_capabilities(&none, &user(i), &list).unwrap().name, c);
        }
        // Without c, only c's users move; a's and b's stay where they were.
        let without_c = [entry("a", &[1]), entry("b", &[1])];
        for (i, c) in chosen.iter().enumerate() {
            let now = by_capabilities(&none, &user(i), &without_c).unwrap().name;
            if c != "sip:c.ims.example.net" {
                assert_eq!(&now, c, "user {i} moved");
            }
        }
    }

    #[test]
    fn the_score_ignores_the_case_of_the_s_cscf_name() {
        assert_eq!(
            rendezvous(USER, "sip:A.ims.example.net"),
            rendezvous(USER, "sip:a.ims.example.net")
        );
    }

    #[test]
    fn server_name_maps_to_its_configured_uri() {
        let list = [entry("a", &[])];
        assert_eq!(
            by_name("sip:A.ims.example.net", &list).route,
            "<sip:a.local:5080;lr>"
        );
        assert_eq!(
            by_name("sip:other.example.net:6060", &list).route,
            "<sip:other.example.net:6060;lr>"
        );
    }
}
