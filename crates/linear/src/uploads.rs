//! Images people put in issues: finding them (attachments, markdown images
//! in descriptions and comments) and fetching them without letting whoever
//! writes an issue aim the worker at its own network.
//!
//! The rules, all enforced here so no caller can skip one:
//! - Linear's upload origin is fetched with the workspace's token (its files
//!   are private); any other host only when listed, over HTTPS, and never
//!   with a credential.
//! - A host that resolves to a loopback, private, link-local, unique-local
//!   or otherwise non-public address is refused, checked on the addresses
//!   actually connected to (a resolver of our own) and on every redirect.
//! - Caps on bytes and time; the type comes from the bytes, not the URL.

use crate::client::LinearClient;
use secrecy::ExposeSecret;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;
use url::Url;

/// Where images may come from, and how much of them.
#[derive(Clone, Debug)]
pub struct ImageRules {
    /// Linear's upload origin (`https://uploads.linear.app`; a simulator's
    /// own). Fetched with the workspace's token; trusted as configured.
    pub upload_origin: Url,
    /// Other hosts images may be fetched from (HTTPS, public addresses).
    pub allowed_hosts: Vec<String>,
    pub max_bytes: usize,
    pub timeout: Duration,
}

/// An image, typed from its bytes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Image {
    pub mime: &'static str,
    pub bytes: Vec<u8>,
}

impl Image {
    /// A base64 `data:` URI, the form Codegen's `images` takes.
    pub fn data_uri(&self) -> String {
        use base64::Engine;
        format!(
            "data:{};base64,{}",
            self.mime,
            base64::engine::general_purpose::STANDARD.encode(&self.bytes)
        )
    }
}

/// Why an image was not fetched. The short `label` goes to metrics.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ImageRefused {
    #[error("not a valid URL")]
    InvalidUrl,
    #[error("only https URLs are fetched")]
    NotHttps,
    #[error("host {0} is not Linear's uploads nor listed in images.allowedHosts")]
    HostNotAllowed(String),
    #[error("{0} is not a public address")]
    PrivateAddress(IpAddr),
    #[error("larger than {0} bytes")]
    TooLarge(usize),
    #[error("not a PNG, JPEG, GIF or WebP image")]
    NotAnImage,
    #[error("the server answered {0}")]
    Status(u16),
    #[error("download failed: {0}")]
    Transport(String),
}

impl ImageRefused {
    pub fn label(&self) -> &'static str {
        match self {
            ImageRefused::InvalidUrl => "invalid_url",
            ImageRefused::NotHttps => "not_https",
            ImageRefused::HostNotAllowed(_) => "host_not_allowed",
            ImageRefused::PrivateAddress(_) => "private_address",
            ImageRefused::TooLarge(_) => "too_large",
            ImageRefused::NotAnImage => "not_an_image",
            ImageRefused::Status(_) => "status",
            ImageRefused::Transport(_) => "transport",
        }
    }
}

/// Fetches images under [`ImageRules`]. One per process: cheap to clone,
/// clones share the connection pool.
#[derive(Clone)]
pub struct ImageFetcher {
    http: reqwest::Client,
    rules: Arc<ImageRules>,
}

impl std::fmt::Debug for ImageFetcher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ImageFetcher")
            .field("rules", &self.rules)
            .finish_non_exhaustive()
    }
}

/// Most redirects followed for one image.
const MAX_REDIRECTS: usize = 5;

impl ImageFetcher {
    pub fn new(rules: ImageRules) -> Result<Self, reqwest::Error> {
        let rules = Arc::new(rules);
        let checked = rules.clone();
        let redirect = reqwest::redirect::Policy::custom(move |attempt| {
            if attempt.previous().len() > MAX_REDIRECTS {
                return attempt.error("too many redirects");
            }
            match check_url(&checked, attempt.url()) {
                Ok(()) => attempt.follow(),
                Err(refused) => attempt.error(refused),
            }
        });
        let http = reqwest::Client::builder()
            .timeout(rules.timeout)
            .connect_timeout(rules.timeout)
            .redirect(redirect)
            // A proxy would resolve names itself, past our resolver's check.
            .no_proxy()
            .dns_resolver(Arc::new(PublicOnly {
                trusted_host: rules.upload_origin.host_str().map(str::to_owned),
            }))
            .user_agent(concat!("cyrus/", env!("CARGO_PKG_VERSION")))
            .build()?;
        Ok(ImageFetcher { http, rules })
    }

    pub fn rules(&self) -> &ImageRules {
        &self.rules
    }

    /// True when `url` is on Linear's upload origin.
    pub fn is_upload(&self, url: &str) -> bool {
        Url::parse(url).is_ok_and(|u| same_origin(&u, &self.rules.upload_origin))
    }

    /// The rules that need no network (scheme, host list, literal
    /// addresses): a caller can drop such URLs before spending a download
    /// attempt on them. [`ImageFetcher::fetch`] applies them too.
    pub fn check(&self, url: &str) -> Result<(), ImageRefused> {
        let parsed = Url::parse(url).map_err(|_| ImageRefused::InvalidUrl)?;
        check_url(&self.rules, &parsed)
    }

    /// Fetches one image; `linear` supplies the token for Linear's uploads.
    pub async fn fetch(&self, url: &str, linear: &LinearClient) -> Result<Image, ImageRefused> {
        let parsed = Url::parse(url).map_err(|_| ImageRefused::InvalidUrl)?;
        check_url(&self.rules, &parsed)?;
        let mut request = self.http.get(parsed.clone());
        if same_origin(&parsed, &self.rules.upload_origin) {
            // Never sent elsewhere: reqwest drops it on a redirect to
            // another host, and other hosts get no credential at all.
            let header = linear
                .authorization_header()
                .await
                .map_err(|e| ImageRefused::Transport(e.to_string()))?;
            let mut value = reqwest::header::HeaderValue::from_str(header.expose_secret())
                .map_err(|_| {
                    ImageRefused::Transport("the workspace token is not a valid header".into())
                })?;
            value.set_sensitive(true);
            request = request.header(reqwest::header::AUTHORIZATION, value);
        }
        let mut response = request.send().await.map_err(transport)?;
        if !response.status().is_success() {
            return Err(ImageRefused::Status(response.status().as_u16()));
        }
        let max = self.rules.max_bytes;
        if response.content_length().is_some_and(|n| n as usize > max) {
            return Err(ImageRefused::TooLarge(max));
        }
        let mut bytes = Vec::new();
        while let Some(chunk) = response.chunk().await.map_err(transport)? {
            if bytes.len() + chunk.len() > max {
                return Err(ImageRefused::TooLarge(max));
            }
            bytes.extend_from_slice(&chunk);
        }
        let mime = image_type(&bytes).ok_or(ImageRefused::NotAnImage)?;
        Ok(Image { mime, bytes })
    }
}

/// The most specific refusal in a reqwest error's chain (a redirect or a
/// resolver refusal arrives wrapped).
fn transport(err: reqwest::Error) -> ImageRefused {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(&err);
    while let Some(e) = source {
        if let Some(refused) = e.downcast_ref::<ImageRefused>() {
            return refused.clone();
        }
        source = e.source();
    }
    ImageRefused::Transport(err.without_url().to_string())
}

fn same_origin(a: &Url, b: &Url) -> bool {
    a.scheme() == b.scheme()
        && a.host_str() == b.host_str()
        && a.port_or_known_default() == b.port_or_known_default()
}

/// The URL-level rules: scheme, host allowlist, and literal addresses (which
/// never reach the resolver).
fn check_url(rules: &ImageRules, url: &Url) -> Result<(), ImageRefused> {
    if same_origin(url, &rules.upload_origin) {
        return Ok(());
    }
    if url.scheme() != "https" {
        return Err(ImageRefused::NotHttps);
    }
    let host = match url.host() {
        Some(url::Host::Domain(d)) => d.to_ascii_lowercase(),
        Some(url::Host::Ipv4(ip)) => return Err(refuse_literal(IpAddr::V4(ip))),
        Some(url::Host::Ipv6(ip)) => return Err(refuse_literal(IpAddr::V6(ip))),
        None => return Err(ImageRefused::InvalidUrl),
    };
    if !rules.allowed_hosts.iter().any(|h| h == &host) {
        return Err(ImageRefused::HostNotAllowed(host));
    }
    Ok(())
}

/// A literal address is refused as private when it is, else as unlisted
/// (an allowlist names hosts, not addresses).
fn refuse_literal(ip: IpAddr) -> ImageRefused {
    if is_public(ip) {
        ImageRefused::HostNotAllowed(ip.to_string())
    } else {
        ImageRefused::PrivateAddress(ip)
    }
}

/// True for an address on the public internet. Everything else — loopback,
/// RFC 1918 and shared (CGNAT) ranges, link-local (cloud metadata lives at
/// 169.254.169.254), unique-local, multicast, documentation and reserved
/// ranges, and IPv4 addresses mapped into IPv6 — is refused.
pub fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => {
            let [a, b, ..] = v4.octets();
            !(v4.is_loopback()
                || v4.is_private()
                || v4.is_link_local()
                || v4.is_unspecified()
                || v4.is_broadcast()
                || v4.is_multicast()
                || v4.is_documentation()
                || a == 0
                || (a == 100 && (64..128).contains(&b))
                || (a == 192 && b == 0)
                || (a == 198 && (18..20).contains(&b))
                || a >= 240)
        }
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return is_public(IpAddr::V4(v4));
            }
            let s = v6.segments();
            !(v6.is_loopback()
                || v6.is_unspecified()
                || v6.is_multicast()
                || v6.is_unique_local()
                || v6.is_unicast_link_local()
                // IPv4-compatible ::/96 (deprecated, still routable to IPv4).
                || s[..6] == [0, 0, 0, 0, 0, 0]
                // Site-local fec0::/10 (deprecated, private in practice).
                || (s[0] & 0xffc0) == 0xfec0
                // NAT64 64:ff9b::/96 and local-use 64:ff9b:1::/48 reach IPv4.
                || s[..2] == [0x64, 0xff9b]
                // 6to4 2002::/16 and Teredo 2001::/32 embed IPv4 addresses.
                || s[0] == 0x2002
                || s[..2] == [0x2001, 0]
                // Documentation 2001:db8::/32, discard 100::/64.
                || s[..2] == [0x2001, 0xdb8]
                || s[..4] == [0x100, 0, 0, 0])
        }
    }
}

/// Resolves with the system resolver and keeps only public addresses, so
/// the connection goes to an address that was checked (no second lookup an
/// attacker's DNS could answer differently).
struct PublicOnly {
    /// Linear's upload host as configured by the operator (a simulator's may
    /// be local).
    trusted_host: Option<String>,
}

impl reqwest::dns::Resolve for PublicOnly {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let host = name.as_str().to_owned();
        let trusted = self.trusted_host.as_deref() == Some(host.as_str());
        Box::pin(async move {
            let resolved: Vec<SocketAddr> =
                tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            let public: Vec<SocketAddr> = resolved
                .iter()
                .copied()
                .filter(|a| trusted || is_public(a.ip()))
                .collect();
            if public.is_empty() {
                let refused: Box<dyn std::error::Error + Send + Sync> = match resolved.first() {
                    Some(a) => Box::new(ImageRefused::PrivateAddress(a.ip())),
                    None => format!("{host} has no address").into(),
                };
                return Err(refused);
            }
            Ok(Box::new(public.into_iter()) as reqwest::dns::Addrs)
        })
    }
}

/// The image type from the first bytes; `None` for anything else (an SVG
/// is not accepted: it is a document that can carry scripts).
pub fn image_type(bytes: &[u8]) -> Option<&'static str> {
    let kind = infer::get(bytes)?;
    match kind.mime_type() {
        m @ ("image/png" | "image/jpeg" | "image/gif" | "image/webp") => Some(m),
        _ => None,
    }
}

/// Image URLs in markdown text, in order (`![alt](url)` and reference
/// images), deduplicated.
pub fn markdown_images(text: &str) -> Vec<String> {
    use pulldown_cmark::{Event, Parser, Tag};
    let mut out: Vec<String> = Vec::new();
    for event in Parser::new(text) {
        if let Event::Start(Tag::Image { dest_url, .. }) = event {
            let url = dest_url.to_string();
            if !url.is_empty() && !out.contains(&url) {
                out.push(url);
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rules(allowed: &[&str]) -> ImageRules {
        ImageRules {
            upload_origin: Url::parse("https://uploads.linear.app").unwrap(),
            allowed_hosts: allowed.iter().map(|h| h.to_string()).collect(),
            max_bytes: 1024,
            timeout: Duration::from_secs(1),
        }
    }

    #[test]
    fn url_rules() {
        let r = rules(&["cdn.acme.dev"]);
        let check = |u: &str| check_url(&r, &Url::parse(u).unwrap());
        assert_eq!(check("https://uploads.linear.app/o/a/b"), Ok(()));
        assert_eq!(check("https://cdn.acme.dev/x.png"), Ok(()));
        assert_eq!(
            check("http://cdn.acme.dev/x.png"),
            Err(ImageRefused::NotHttps)
        );
        assert_eq!(
            check("https://evil.example/x.png"),
            Err(ImageRefused::HostNotAllowed("evil.example".into()))
        );
        for private in [
            "https://127.0.0.1/x.png",
            "https://10.0.0.1/x.png",
            "https://169.254.169.254/latest/meta-data",
            "https://[::1]/x.png",
            "https://[fd00::1]/x.png",
            "https://[::ffff:127.0.0.1]/x.png",
            "https://100.64.0.1/x.png",
        ] {
            assert!(
                matches!(check(private), Err(ImageRefused::PrivateAddress(_))),
                "{private}: {:?}",
                check(private)
            );
        }
    }

    #[test]
    fn public_addresses() {
        for ip in ["8.8.8.8", "1.1.1.1", "2606:4700::1111"] {
            assert!(is_public(ip.parse().unwrap()), "{ip}");
        }
        for ip in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "0.0.0.0",
            "100.100.100.200",
            "::1",
            "fe80::1",
            "fc00::1",
            "::",
            "64:ff9b::a00:1",
        ] {
            assert!(!is_public(ip.parse().unwrap()), "{ip}");
        }
    }

    #[test]
    fn types_come_from_bytes() {
        assert_eq!(
            image_type(b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR"),
            Some("image/png")
        );
        assert_eq!(
            image_type(b"\xff\xd8\xff\xe0\0\x10JFIF\0"),
            Some("image/jpeg")
        );
        assert_eq!(image_type(b"GIF89a\x01\0\x01\0"), Some("image/gif"));
        assert_eq!(image_type(b"RIFF\x1a\0\0\0WEBPVP8 "), Some("image/webp"));
        assert_eq!(
            image_type(b"<svg xmlns='http://www.w3.org/2000/svg'/>"),
            None
        );
        assert_eq!(image_type(b"%PDF-1.7"), None);
    }

    #[test]
    fn finds_markdown_images() {
        let text = "See ![shot](https://uploads.linear.app/o/1/2) and ![again](https://uploads.linear.app/o/1/2)\n\n[a link](https://x.dev) ![ref][r]\n\n[r]: https://cdn.acme.dev/r.png";
        assert_eq!(
            markdown_images(text),
            vec![
                "https://uploads.linear.app/o/1/2".to_string(),
                "https://cdn.acme.dev/r.png".to_string()
            ]
        );
    }
}
