//! S-CSCF selection from a UAA (TS 29.228 §6.1.1, §6.7; TS 24.229 §5.3.1.2): the
//! Server-Name when the HSS gives one (an S-CSCF already assigned), else the
//! configured S-CSCF that has every Mandatory-Capability and the most
//! Optional-Capabilities (ties: the one the HSS names in Server-Capabilities, then
//! configuration order).

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

/// The best configured S-CSCF for `caps`, or `None` when none has every mandatory
/// capability.
pub fn by_capabilities(caps: &ServerCapabilities, scscfs: &[ScscfEntry]) -> Option<Selected> {
    let named = |s: &ScscfEntry| {
        caps.server_names
            .iter()
            .any(|n| n.eq_ignore_ascii_case(&s.name))
    };
    scscfs
        .iter()
        .enumerate()
        .filter(|(_, s)| caps.mandatory.iter().all(|m| s.capabilities.contains(m)))
        .max_by_key(|(i, s)| {
            let optional = caps
                .optional
                .iter()
                .filter(|o| s.capabilities.contains(o))
                .count();
            // Larger is better; earlier configuration wins ties (reverse index).
            (optional, named(s), usize::MAX - i)
        })
        .map(|(_, s)| Selected {
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
        let s = by_capabilities(&caps(&[1], &[2, 3]), &list).unwrap();
        assert_eq!(s.name, "sip:b.ims.example.net");
        assert_eq!(s.route, "<sip:b.local:5080;lr>");
        // b lacks 4: only the one with every mandatory capability.
        let list = [entry("a", &[1, 4]), entry("b", &[1, 2, 3])];
        let s = by_capabilities(&caps(&[1, 4], &[2, 3]), &list).unwrap();
        assert_eq!(s.name, "sip:a.ims.example.net");
        assert_eq!(by_capabilities(&caps(&[9], &[]), &list), None);
        assert_eq!(by_capabilities(&caps(&[], &[]), &[]), None);
    }

    #[test]
    fn ties_go_to_the_named_then_the_first() {
        let list = [entry("a", &[]), entry("b", &[])];
        let s = by_capabilities(&caps(&[], &[]), &list).unwrap();
        assert_eq!(s.name, "sip:a.ims.example.net");
        let mut named = caps(&[], &[]);
        named.server_names = vec!["sip:b.ims.example.net".into()];
        assert_eq!(
            by_capabilities(&named, &list).unwrap().name,
            "sip:b.ims.example.net"
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
