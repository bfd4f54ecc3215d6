//! Where a request comes from, and which of its headers to believe.
//!
//! - **Links.** `Href`s and `Location`s start with `PUBLIC_BASE_URL` when it is set. Otherwise,
//!   for a connection from a trusted proxy (`TRUSTED_PROXIES`), with the scheme and host the proxy
//!   forwarded (`Forwarded`, `X-Forwarded-Host`, `X-Forwarded-Proto`); for any other connection,
//!   with the address the client actually connected to. `Host` and the forwarded headers of an
//!   untrusted client never shape a link.
//! - **Client address** (for logon throttling): the peer address, or, behind trusted proxies, the
//!   right-most `X-Forwarded-For` entry that is not itself a trusted proxy.
//! - **Cross-site requests**: a browser announces where a request comes from (`Origin`,
//!   `Referer`, `Sec-Fetch-Site`); `is_cross_site` says when that is another site.

use actix_web::HttpRequest;
use actix_web::http::header::{HeaderMap, ORIGIN, REFERER};
use std::net::{IpAddr, SocketAddr};

/// The base of the links a response carries (see the module's header), as an extractor.
#[derive(Debug, Clone)]
pub struct BaseUrl(pub String);

impl BaseUrl {
    pub fn of(req: &HttpRequest, state: &crate::state::AppState) -> Self {
        BaseUrl(base_url(req, state.public_base_url.as_deref(), &state.trusted_proxies))
    }

    /// The `Operation-Location` header naming the task where the bearer-token callers read it:
    /// `<base>/api/tasks/{id}`.
    pub fn operation_location(&self, task_id: i32) -> (&'static str, String) {
        ("Operation-Location", format!("{}/api/tasks/{task_id}", self.0))
    }
}

impl actix_web::FromRequest for BaseUrl {
    type Error = actix_web::Error;
    type Future = std::future::Ready<Result<Self, Self::Error>>;

    fn from_request(req: &HttpRequest, _: &mut actix_web::dev::Payload) -> Self::Future {
        let state = req.app_data::<actix_web::web::Data<crate::state::AppState>>();
        std::future::ready(
            state
                .map(|state| BaseUrl::of(req, state))
                .ok_or_else(|| actix_web::error::ErrorInternalServerError("no application state")),
        )
    }
}

/// The local address of a connection, recorded when it is accepted (see `startup`).
#[derive(Clone, Copy)]
pub struct LocalAddr(pub SocketAddr);

/// Addresses (`10.0.0.7`) and networks (`10.0.0.0/8`, `fd00::/8`) whose forwarded headers are
/// believed.
#[derive(Clone, Debug, Default)]
pub struct TrustedProxies(Vec<(IpAddr, u8)>);

impl TrustedProxies {
    pub fn parse(entries: &[String]) -> Result<Self, String> {
        let parse_one = |entry: &str| -> Option<(IpAddr, u8)> {
            let (addr, bits) = match entry.split_once('/') {
                Some((addr, bits)) => (addr.parse::<IpAddr>().ok()?, Some(bits.parse::<u8>().ok()?)),
                None => (entry.parse::<IpAddr>().ok()?, None),
            };
            let max = if addr.is_ipv4() { 32 } else { 128 };
            let bits = bits.unwrap_or(max);
            (bits <= max).then_some((addr, bits))
        };
        entries
            .iter()
            .map(|e| e.trim())
            .filter(|e| !e.is_empty())
            .map(|e| parse_one(e).ok_or_else(|| format!("TRUSTED_PROXIES: {e:?} is not an address or a network")))
            .collect::<Result<_, _>>()
            .map(TrustedProxies)
    }

    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = canonical(ip);
        self.0.iter().any(|(net, bits)| match (canonical(*net), ip) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => prefix_eq(&net.octets(), &ip.octets(), *bits),
            (IpAddr::V6(net), IpAddr::V6(ip)) => prefix_eq(&net.octets(), &ip.octets(), *bits),
            _ => false,
        })
    }

    fn trusts(&self, req: &HttpRequest) -> bool {
        req.peer_addr().is_some_and(|peer| self.contains(peer.ip()))
    }
}

fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

fn prefix_eq(a: &[u8], b: &[u8], bits: u8) -> bool {
    let (bytes, rest) = (usize::from(bits / 8), bits % 8);
    a[..bytes] == b[..bytes] && (rest == 0 || (a[bytes] ^ b[bytes]) >> (8 - rest) == 0)
}

/// The base of every link in the answer to `req` (no trailing slash).
pub fn base_url(req: &HttpRequest, public_base_url: Option<&str>, proxies: &TrustedProxies) -> String {
    if let Some(base) = public_base_url {
        return base.trim_end_matches('/').to_owned();
    }
    if proxies.trusts(req) {
        let info = req.connection_info();
        return format!("{}://{}", info.scheme(), info.host());
    }
    let local = req.conn_data::<LocalAddr>().map(|l| l.0).or_else(|| Some(req.app_config().local_addr()));
    match local {
        Some(addr) => format!("http://{addr}"),
        None => "http://127.0.0.1".to_owned(),
    }
}

/// The client's address, as far as it can be believed.
pub fn client_ip(req: &HttpRequest, proxies: &TrustedProxies) -> Option<IpAddr> {
    let peer = req.peer_addr()?.ip();
    if !proxies.contains(peer) {
        return Some(peer);
    }
    let forwarded: Vec<IpAddr> = req
        .headers()
        .get_all("x-forwarded-for")
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|part| part.trim().parse().ok())
        .collect();
    Some(forwarded.into_iter().rev().find(|ip| !proxies.contains(*ip)).unwrap_or(peer))
}

/// True when a browser says the request comes from another site: `Sec-Fetch-Site` is
/// `cross-site` or `same-site`, or `Origin` (else `Referer`) names a host other than the one
/// the request was sent to. A client that sends none of them (not a browser) is not cross-site.
pub fn is_cross_site(headers: &HeaderMap) -> bool {
    let header = |name| headers.get(name).and_then(|v| v.to_str().ok()).map(str::trim);
    if let Some(site) = header("sec-fetch-site")
        && (site.eq_ignore_ascii_case("cross-site") || site.eq_ignore_ascii_case("same-site"))
    {
        return true;
    }
    let Some(source) = header(ORIGIN.as_str()).or_else(|| header(REFERER.as_str())) else {
        return false;
    };
    let source_host = source.split_once("://").map(|(_, rest)| rest.split(['/', '?', '#']).next().unwrap_or(""));
    let host = header("host");
    match (source_host, host) {
        (Some(source_host), Some(host)) => !source_host.eq_ignore_ascii_case(host),
        // `Origin: null` (sandboxed or privacy-stripped) or no Host: not provably ours.
        _ => true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use actix_web::http::header::{HeaderName, HeaderValue};

    #[test]
    fn trusted_proxies_are_addresses_and_networks() {
        let proxies =
            TrustedProxies::parse(&["10.0.0.0/8".into(), "192.168.1.7".into(), "fd00::/8".into()]).expect("parse");
        assert!(proxies.contains("10.200.3.4".parse().expect("ip")));
        assert!(proxies.contains("::ffff:10.1.1.1".parse().expect("ip")), "IPv4-mapped");
        assert!(proxies.contains("192.168.1.7".parse().expect("ip")));
        assert!(!proxies.contains("192.168.1.8".parse().expect("ip")));
        assert!(proxies.contains("fd12::1".parse().expect("ip")));
        assert!(!proxies.contains("fe80::1".parse().expect("ip")));
        assert!(!TrustedProxies::default().contains("127.0.0.1".parse().expect("ip")));
        for bad in ["10.0.0.0/33", "example.com", "10.0.0.0/x"] {
            assert!(TrustedProxies::parse(&[bad.into()]).is_err(), "{bad}");
        }
    }

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (k, v) in pairs {
            map.insert(HeaderName::from_static(k), HeaderValue::from_str(v).expect("value"));
        }
        map
    }

    #[test]
    fn a_request_is_cross_site_when_the_browser_says_it_comes_from_elsewhere() {
        assert!(!is_cross_site(&headers(&[("host", "em:9399")])), "not a browser");
        assert!(!is_cross_site(&headers(&[("host", "em:9399"), ("origin", "http://em:9399")])));
        assert!(!is_cross_site(&headers(&[("host", "em:9399"), ("referer", "http://em:9399/ui?x=1")])));
        assert!(!is_cross_site(&headers(&[("host", "em:9399"), ("sec-fetch-site", "same-origin")])));
        assert!(is_cross_site(&headers(&[("host", "em:9399"), ("origin", "https://evil.example")])));
        assert!(is_cross_site(&headers(&[("host", "em:9399"), ("origin", "null")])));
        assert!(is_cross_site(&headers(&[("host", "em:9399"), ("referer", "https://evil.example/em:9399")])));
        assert!(is_cross_site(&headers(&[("host", "em:9399"), ("sec-fetch-site", "cross-site")])));
    }
}
