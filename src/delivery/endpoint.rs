//! Where a URL given by a client may make this server send requests: only to public hosts. A push
//! subscription names its endpoint; without this, a client could make the server POST (signed
//! with its VAPID key) to a cloud metadata address, an admin port on the private network, or any
//! loopback service. Checked when the endpoint is given and again at every send, through a DNS
//! resolver that hands the connection only public addresses (a name may resolve elsewhere later).

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

/// Whether `ip` is a public unicast address: not loopback, private, link-local, shared (CGNAT),
/// unspecified, multicast, broadcast, documentation, benchmarking or reserved. An IPv6 address
/// is public only inside global unicast (2000::/3) and outside the blocks that carry or reach
/// IPv4 or private networks (6to4 2002::/16, Teredo and the other IETF assignments of
/// 2001::/23, documentation 2001:db8::/32); IPv4-mapped addresses are judged as IPv4, and
/// everything else (NAT64 64:ff9b::/96, IPv4-compatible ::a.b.c.d, site-local fec0::/10,
/// unique-local, link-local) is not public.
pub fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => {
            let [a, b, c, _] = v4.octets();
            !(v4.is_loopback()
                || v4.is_private()
                || v4.is_link_local()
                || v4.is_unspecified()
                || v4.is_multicast()
                || v4.is_broadcast()
                || v4.is_documentation()
                || a == 0
                || (a == 100 && (64..128).contains(&b))
                || (a == 192 && b == 0 && c == 0)
                || (a == 192 && b == 88 && c == 99)
                || (a == 198 && (b == 18 || b == 19))
                || a >= 240)
        }
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return is_public(IpAddr::V4(v4));
            }
            let [first, second, ..] = v6.segments();
            let global_unicast = (first & 0xe000) == 0x2000;
            let ietf = first == 0x2001 && second < 0x0200;
            let six_to_four = first == 0x2002;
            // 2001:db8::/32 and 3fff::/20 (RFC 9637) are for documentation.
            let documentation = (first == 0x2001 && second == 0x0db8) || (first & 0xfff0) == 0x3ff0;
            global_unicast && !ietf && !six_to_four && !documentation
        }
    }
}

/// Which addresses requests may go to: public ones, and loopback ones too when allowed (tests, a
/// push relay on the same machine).
#[derive(Debug, Clone, Copy)]
pub struct Allowed {
    pub loopback: bool,
}

impl Allowed {
    pub fn ip(self, ip: IpAddr) -> bool {
        is_public(ip) || (self.loopback && ip.is_loopback())
    }

    /// Whether `url` may be sent to, from what it says (before any resolution): `https://` to a
    /// name or an allowed address; plain `http://` only to loopback when that is allowed.
    pub fn url(self, url: &url::Url) -> Result<(), String> {
        let loopback_host = match url.host() {
            Some(url::Host::Ipv4(ip)) => {
                if !self.ip(IpAddr::V4(ip)) {
                    return Err(format!("{ip} is not a public address"));
                }
                ip.is_loopback()
            }
            Some(url::Host::Ipv6(ip)) => {
                if !self.ip(IpAddr::V6(ip)) {
                    return Err(format!("{ip} is not a public address"));
                }
                ip.is_loopback()
            }
            Some(url::Host::Domain(d)) => {
                let d = d.trim_end_matches('.').to_ascii_lowercase();
                if d == "localhost" || d.ends_with(".localhost") {
                    if !self.loopback {
                        return Err("localhost is not a public host".into());
                    }
                    true
                } else {
                    false
                }
            }
            None => return Err("no host".into()),
        };
        match url.scheme() {
            "https" => Ok(()),
            "http" if self.loopback && loopback_host => Ok(()),
            other => Err(format!("`{other}` is not https")),
        }
    }

    /// Checks `url` and, for a name, what it resolves to now: every address must be allowed. A
    /// name that does not resolve now passes (the send-time resolver checks it again).
    pub async fn check(self, url: &url::Url) -> Result<(), String> {
        self.url(url)?;
        if let Some(url::Host::Domain(d)) = url.host() {
            let port = url.port_or_known_default().unwrap_or(443);
            if let Ok(addrs) = tokio::net::lookup_host((d, port)).await {
                for a in addrs {
                    if !self.ip(a.ip()) {
                        return Err(format!("{d} resolves to {}, not a public address", a.ip()));
                    }
                }
            }
        }
        Ok(())
    }
}

/// A DNS resolver for outgoing requests that hands out only allowed addresses: a name that
/// resolves to none fails the request.
#[derive(Debug, Clone, Copy)]
pub struct PublicResolver(pub Allowed);

impl reqwest::dns::Resolve for PublicResolver {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let allowed = self.0;
        Box::pin(async move {
            let host = name.as_str().to_owned();
            let addrs: Vec<SocketAddr> = tokio::net::lookup_host((host.as_str(), 0))
                .await?
                .filter(|a| allowed.ip(a.ip()))
                .collect();
            if addrs.is_empty() {
                return Err(format!("{host} resolves to no public address").into());
            }
            Ok(Box::new(addrs.into_iter()) as reqwest::dns::Addrs)
        })
    }
}

impl PublicResolver {
    pub fn shared(allowed: Allowed) -> Arc<Self> {
        Arc::new(Self(allowed))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_public_addresses_are_public() {
        for private in [
            "127.0.0.1",
            "10.0.0.1",
            "172.16.5.4",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "0.0.0.0",
            "224.0.0.1",
            "255.255.255.255",
            "::1",
            "::",
            "fc00::1",
            "fd12:3456::1",
            "fe80::1",
            "::ffff:10.0.0.1",
            "::ffff:127.0.0.1",
            // Addresses that reach IPv4 or private networks by other roads.
            "64:ff9b::7f00:1",
            "64:ff9b::a9fe:a9fe",
            "64:ff9b:1::a00:1",
            "::127.0.0.1",
            "::a00:1",
            "2002:7f00:1::1",
            "2002:a9fe:a9fe::1",
            "fec0::1",
            "2001::1",
            "2001:0:4136:e378:8000:63bf:3fff:fdd2",
            "2001:db8::1",
            "100::1",
            "3fff::1",
            "192.0.0.1",
            "192.88.99.1",
        ] {
            assert!(!is_public(private.parse().unwrap()), "{private}");
        }
        for public in ["8.8.8.8", "1.1.1.1", "2606:4700::1111", "::ffff:8.8.8.8"] {
            assert!(is_public(public.parse().unwrap()), "{public}");
        }
    }

    #[test]
    fn endpoints_must_be_https_to_a_public_host() {
        let strict = Allowed { loopback: false };
        let tests = Allowed { loopback: true };
        let url = |s: &str| url::Url::parse(s).unwrap();
        for refused in [
            "https://169.254.169.254/latest/meta-data",
            "https://10.0.0.1:8443/actuator/shutdown",
            "http://127.0.0.1:9/x",
            "https://127.0.0.1/x",
            "https://[::1]/x",
            "https://localhost/x",
            "http://push.example/x",
            "ftp://push.example/x",
        ] {
            assert!(strict.url(&url(refused)).is_err(), "{refused}");
        }
        assert!(
            strict
                .url(&url("https://fcm.googleapis.com/fcm/send/x"))
                .is_ok()
        );
        assert!(tests.url(&url("http://127.0.0.1:9/x")).is_ok());
        assert!(tests.url(&url("https://10.0.0.1/x")).is_err());
        assert!(tests.url(&url("http://push.example/x")).is_err());
    }
}
