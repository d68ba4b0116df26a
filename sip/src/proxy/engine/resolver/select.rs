//! The choices RFC 3263 leaves to the client once DNS has answered, as pure functions
//! over the records (no I/O, the random source passed in so that tests are
//! deterministic): which NAPTR services a proxy can use and in which order (§4.1), and
//! the order of the SRV targets (RFC 2782: lowest priority first, within one priority a
//! random order weighted by the records' weights).

use std::net::{IpAddr, SocketAddr};

use rand::Rng;

use crate::transport::TransportKind;

/// A NAPTR record as §4.1 reads it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Naptr {
    /// ORDER: lower first.
    pub order: u16,
    /// PREFERENCE: lower first among records of one order.
    pub preference: u16,
    /// FLAGS: SIP uses `s` (the replacement is an SRV name).
    pub flags: String,
    /// SERVICES: `SIP+D2U`, `SIP+D2T`, `SIPS+D2T` (RFC 3263 §4.1).
    pub services: String,
    /// REPLACEMENT: the SRV name to look up next.
    pub replacement: String,
}

/// The transport a NAPTR SERVICES field names, for a `sips` URI or not (§4.1: a SIPS
/// URI only takes `SIPS+` services).
pub fn naptr_transport(services: &str, sips: bool) -> Option<TransportKind> {
    let services = services.to_ascii_uppercase();
    match services.as_str() {
        "SIPS+D2T" => Some(TransportKind::Tls),
        "SIP+D2T" if !sips => Some(TransportKind::Tcp),
        "SIP+D2U" if !sips => Some(TransportKind::Udp),
        _ => None,
    }
}

/// The NAPTR records a proxy with the `supported` transports can use, in the order to
/// try them (§4.1: ORDER, then PREFERENCE; the `s` flag only, as SIP defines no other
/// terminal flag and regexp rewriting is not used), each with its transport and SRV
/// name.
pub fn usable_naptrs(
    records: &[Naptr],
    sips: bool,
    supported: &[TransportKind],
) -> Vec<(TransportKind, String)> {
    let mut usable: Vec<&Naptr> = records
        .iter()
        .filter(|r| r.flags.eq_ignore_ascii_case("s"))
        .filter(|r| {
            naptr_transport(&r.services, sips).is_some_and(|kind| supported.contains(&kind))
        })
        .collect();
    usable.sort_by_key(|r| (r.order, r.preference));
    usable
        .into_iter()
        .filter_map(|r| Some((naptr_transport(&r.services, sips)?, r.replacement.clone())))
        .collect()
}

/// The SRV names to try when a domain has no usable NAPTR record (§4.1: one query per
/// transport the client supports; a SIPS URI uses `_sips._tcp` only), in our order of
/// preference: TLS, TCP, UDP (§4.1 lets the client pick; a reliable transport first
/// fits the larger IMS messages, RFC 3261 §18.1.1).
pub fn srv_names(
    domain: &str,
    sips: bool,
    supported: &[TransportKind],
) -> Vec<(TransportKind, String)> {
    [TransportKind::Tls, TransportKind::Tcp, TransportKind::Udp]
        .into_iter()
        .filter(|kind| supported.contains(kind) && (!sips || *kind == TransportKind::Tls))
        .filter_map(|kind| Some((kind, srv_name(domain, kind)?)))
        .collect()
}

/// The SRV name of `domain` for `kind` (§4.2: `_sips._tcp` for TLS, `_sip._tcp` for
/// TCP, `_sip._udp` for UDP); `None` for transports SRV is not looked up for here.
pub fn srv_name(domain: &str, kind: TransportKind) -> Option<String> {
    let prefix = match kind {
        TransportKind::Tls => "_sips._tcp",
        TransportKind::Tcp => "_sip._tcp",
        TransportKind::Udp => "_sip._udp",
        _ => return None,
    };
    Some(format!("{prefix}.{domain}"))
}

/// An SRV target with the addresses its name resolved to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SrvTarget {
    /// PRIORITY: lower first.
    pub priority: u16,
    /// WEIGHT: share of the selections among targets of one priority.
    pub weight: u16,
    /// PORT.
    pub port: u16,
    /// The target's addresses (IPv4 first).
    pub addrs: Vec<IpAddr>,
}

/// The order to try `targets` in (RFC 2782 "Usage rules"): by priority, and within
/// one priority by repeated weighted draws without replacement, so that a target of
/// weight `w` among targets of total weight `W` comes first with probability exactly
/// `w / W`. Targets of weight 0 come after the weighted ones of their priority, in a
/// uniformly random order (RFC 2782 gives them "a very small chance" of coming first;
/// here none while a weighted target is left). Each target contributes its addresses
/// in turn.
pub fn order_targets(targets: &[SrvTarget], rng: &mut impl Rng) -> Vec<SocketAddr> {
    let mut by_priority: Vec<&SrvTarget> = targets.iter().collect();
    by_priority.sort_by_key(|t| t.priority);
    let mut ordered = Vec::new();
    for group in by_priority.chunk_by(|a, b| a.priority == b.priority) {
        let mut weighted: Vec<&SrvTarget> =
            group.iter().copied().filter(|t| t.weight > 0).collect();
        let mut unweighted: Vec<&SrvTarget> =
            group.iter().copied().filter(|t| t.weight == 0).collect();
        while !weighted.is_empty() {
            let total: u32 = weighted.iter().map(|t| u32::from(t.weight)).sum();
            let pick = rng.gen_range(0..total);
            let mut sum = 0u32;
            let index = weighted
                .iter()
                .position(|t| {
                    sum += u32::from(t.weight);
                    sum > pick
                })
                .unwrap_or(0);
            push_addrs(&mut ordered, weighted.remove(index));
        }
        while !unweighted.is_empty() {
            let index = rng.gen_range(0..unweighted.len());
            push_addrs(&mut ordered, unweighted.remove(index));
        }
    }
    ordered
}

fn push_addrs(ordered: &mut Vec<SocketAddr>, target: &SrvTarget) {
    ordered.extend(
        target
            .addrs
            .iter()
            .map(|ip| SocketAddr::new(*ip, target.port)),
    );
}

#[cfg(test)]
mod tests {
    use std::net::Ipv4Addr;

    use rand::rngs::StdRng;
    use rand::SeedableRng;

    use super::*;

    const ALL: [TransportKind; 3] = [TransportKind::Udp, TransportKind::Tcp, TransportKind::Tls];

    fn naptr(order: u16, preference: u16, services: &str, replacement: &str) -> Naptr {
        Naptr {
            order,
            preference,
            flags: "S".into(),
            services: services.into(),
            replacement: replacement.into(),
        }
    }

    fn target(priority: u16, weight: u16, last_octet: u8) -> SrvTarget {
        SrvTarget {
            priority,
            weight,
            port: 5060,
            addrs: vec![IpAddr::V4(Ipv4Addr::new(192, 0, 2, last_octet))],
        }
    }

    #[test]
    fn naptr_records_are_taken_by_order_then_preference_and_filtered_by_transport() {
        let records = [
            naptr(20, 10, "SIP+D2U", "_sip._udp.example.test"),
            naptr(10, 60, "SIP+D2T", "_sip._tcp.example.test"),
            naptr(10, 50, "SIPS+D2T", "_sips._tcp.example.test"),
            naptr(5, 10, "SIP+D2S", "_sip._sctp.example.test"),
            Naptr {
                flags: "U".into(),
                ..naptr(1, 1, "SIP+D2U", "x")
            },
        ];
        let usable = usable_naptrs(&records, false, &ALL);
        assert_eq!(
            usable,
            [
                (TransportKind::Tls, "_sips._tcp.example.test".to_string()),
                (TransportKind::Tcp, "_sip._tcp.example.test".to_string()),
                (TransportKind::Udp, "_sip._udp.example.test".to_string()),
            ],
            "SCTP (unsupported) and the U flag skipped"
        );
        // A proxy with UDP listeners only takes the UDP record.
        let udp_only = usable_naptrs(&records, false, &[TransportKind::Udp]);
        assert_eq!(udp_only.len(), 1);
        assert_eq!(udp_only[0].0, TransportKind::Udp);
        // A SIPS URI takes SIPS+D2T only.
        let sips = usable_naptrs(&records, true, &ALL);
        assert_eq!(sips.len(), 1);
        assert_eq!(sips[0].0, TransportKind::Tls);
    }

    #[test]
    fn srv_names_without_naptr_follow_the_supported_transports() {
        let names = srv_names(
            "example.test",
            false,
            &[TransportKind::Udp, TransportKind::Tcp],
        );
        assert_eq!(
            names,
            [
                (TransportKind::Tcp, "_sip._tcp.example.test".to_string()),
                (TransportKind::Udp, "_sip._udp.example.test".to_string()),
            ]
        );
        assert_eq!(
            srv_names("example.test", true, &ALL),
            [(TransportKind::Tls, "_sips._tcp.example.test".to_string())]
        );
    }

    #[test]
    fn lower_priority_always_comes_first() {
        let targets = [target(20, 100, 3), target(10, 1, 1), target(10, 1, 2)];
        let mut rng = StdRng::seed_from_u64(7);
        for _ in 0..100 {
            let order = order_targets(&targets, &mut rng);
            assert_eq!(order.len(), 3);
            assert_eq!(order[2].ip(), IpAddr::V4(Ipv4Addr::new(192, 0, 2, 3)));
        }
    }

    #[test]
    fn weights_share_the_first_place() {
        // Weights 3:1: the first target comes first with probability 3/4. Over 10 000
        // orderings the count is binomial (mean 7 500, standard deviation 43.3); the
        // bounds are 6 standard deviations either side (a chance of about 2e-9 to fall
        // outside for any seed), and the seeded generator makes the run repeatable.
        let targets = [target(10, 3, 1), target(10, 1, 2)];
        let mut rng = StdRng::seed_from_u64(2024);
        let n = 10_000;
        let first = (0..n)
            .filter(|_| order_targets(&targets, &mut rng)[0].ip() == targets[0].addrs[0])
            .count();
        assert!(
            (7_240..=7_760).contains(&first),
            "first chosen {first} times"
        );
    }

    #[test]
    fn zero_weights_are_still_tried() {
        let targets = [target(10, 0, 1), target(10, 0, 2), target(10, 5, 3)];
        let mut rng = StdRng::seed_from_u64(1);
        let mut zero_first = [0usize; 2];
        for _ in 0..200 {
            let order = order_targets(&targets, &mut rng);
            assert_eq!(order.len(), 3, "every target is in the list");
            assert_eq!(order[0].ip(), targets[2].addrs[0], "the weighted one first");
            zero_first[usize::from(order[1].ip() == targets[1].addrs[0])] += 1;
        }
        assert!(
            zero_first.iter().all(|n| *n > 0),
            "weight-0 targets in random order"
        );
    }
}
