//! Addresses: which are on the public internet (a provider's file link, an alert's webhook).

/// Whether `ip` is an address on the public internet: not loopback, private (10/8, 172.16/12,
/// 192.168/16, fc00::/7), link-local (169.254/16 with the instance metadata service, fe80::/10),
/// shared (100.64/10), unspecified, broadcast, multicast, documentation, benchmarking (198.18/15),
/// IETF protocol (192.0.0/24) or reserved (0/8, 240/4); IPv6 only within the global unicast
/// 2000::/3, and an IPv4 address inside an IPv6 one (`::ffff:a.b.c.d`, 6to4 `2002::/16`) judged as
/// that IPv4 address.
pub fn is_public(ip: std::net::IpAddr) -> bool {
    use std::net::{IpAddr, Ipv4Addr};
    fn v4(ip: Ipv4Addr) -> bool {
        let [a, b, c, _] = ip.octets();
        !(ip.is_loopback()
            || ip.is_private()
            || ip.is_link_local()
            || ip.is_unspecified()
            || ip.is_broadcast()
            || ip.is_multicast()
            || ip.is_documentation()
            || a == 0
            || a >= 240
            || (a == 100 && (64..128).contains(&b))
            || (a == 198 && (18..20).contains(&b))
            || (a == 192 && b == 0 && c == 0))
    }
    match ip {
        IpAddr::V4(ip) => v4(ip),
        IpAddr::V6(ip) => {
            if let Some(mapped) = ip.to_ipv4_mapped() {
                return v4(mapped);
            }
            let s = ip.segments();
            if s[0] == 0x2002 {
                let [a, b] = s[1].to_be_bytes();
                let [c, d] = s[2].to_be_bytes();
                return v4(Ipv4Addr::new(a, b, c, d));
            }
            (s[0] & 0xe000) == 0x2000 && !(s[0] == 0x2001 && s[1] == 0x0db8)
        }
    }
}
