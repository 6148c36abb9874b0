//! SOCKS5 client for `berth run --socks5`: every relayed TCP flow is opened
//! through the proxy with CONNECT (RFC 1928), with username/password
//! authentication (RFC 1929) when the proxy URL carries credentials.
//!
//! Destinations are always numeric (the relay knows the IP the namespace
//! dialled), so only ATYP IPv4 and IPv6 are sent; replies may carry any ATYP.
//!
//! Timeouts are the caller's: a proxy that accepts and then says nothing
//! stalls [`connect`], so wrap it in `tokio::time::timeout` (mapping the
//! elapsed timeout to `ErrorKind::TimedOut`).

use std::io;
use std::net::{IpAddr, SocketAddr};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const VERSION: u8 = 0x05;
const METHOD_NONE: u8 = 0x00;
const METHOD_USERPASS: u8 = 0x02;
const METHOD_REFUSED: u8 = 0xff;
const CMD_CONNECT: u8 = 0x01;
const ATYP_V4: u8 = 0x01;
const ATYP_DOMAIN: u8 = 0x03;
const ATYP_V6: u8 = 0x04;

/// Connects to `dst` through the SOCKS5 proxy at `proxy` and returns the
/// stream, positioned at the first byte from `dst` (nothing past the reply is
/// read). Errors carry the `ErrorKind` of the proxy's reply code (RFC 1928 §6)
/// so the relay can answer the namespace with RST or ICMP unreachable.
/// No timeout of its own: see the module comment.
pub async fn connect(
    proxy: SocketAddr,
    auth: Option<(String, String)>,
    dst: SocketAddr,
) -> io::Result<TcpStream> {
    let mut s = TcpStream::connect(proxy).await.map_err(|e| {
        io::Error::new(
            e.kind(),
            format!("SOCKS5 proxy {proxy}: cannot connect: {e}"),
        )
    })?;
    handshake(&mut s, auth.as_ref(), dst)
        .await
        .map_err(|e| io::Error::new(e.kind(), format!("SOCKS5 proxy {proxy}: {e}")))?;
    Ok(s)
}

async fn handshake(
    s: &mut TcpStream,
    auth: Option<&(String, String)>,
    dst: SocketAddr,
) -> io::Result<()> {
    // Method negotiation (RFC 1928 §3): offer user/pass only when we have it.
    let greeting: &[u8] = if auth.is_some() {
        &[VERSION, 2, METHOD_NONE, METHOD_USERPASS]
    } else {
        &[VERSION, 1, METHOD_NONE]
    };
    s.write_all(greeting).await?;
    let mut sel = [0u8; 2];
    read_exact(s, &mut sel, "the method selection").await?;
    if sel[0] != VERSION {
        return Err(not_socks5(sel[0], "the method selection"));
    }
    match (sel[1], auth) {
        (METHOD_NONE, _) => {}
        (METHOD_USERPASS, Some((user, pass))) => userpass(s, user, pass).await?,
        (METHOD_REFUSED, _) => {
            return Err(io::Error::new(
                io::ErrorKind::PermissionDenied,
                if auth.is_some() {
                    "accepts neither no authentication nor username/password"
                } else {
                    "requires authentication; give socks5://USER:PASS@HOST:PORT"
                },
            ))
        }
        (m, _) => {
            return Err(invalid(format!(
                "chose method {m:#04x}, which we did not offer"
            )))
        }
    }

    // CONNECT request (RFC 1928 §4): at most 4 + 16 + 2 bytes.
    let mut req = Vec::with_capacity(22);
    req.extend_from_slice(&[VERSION, CMD_CONNECT, 0x00]);
    match dst.ip() {
        IpAddr::V4(a) => {
            req.push(ATYP_V4);
            req.extend_from_slice(&a.octets());
        }
        IpAddr::V6(a) => {
            req.push(ATYP_V6);
            req.extend_from_slice(&a.octets());
        }
    }
    req.extend_from_slice(&dst.port().to_be_bytes());
    s.write_all(&req).await?;

    // Reply (RFC 1928 §6): VER REP RSV ATYP, then BND.ADDR and BND.PORT,
    // read exactly so the stream is left at the tunnel's first byte.
    // A failure is reported as soon as REP is known: BND is meaningless then
    // and some servers close right after the code.
    let mut head = [0u8; 2];
    read_exact(s, &mut head, "the CONNECT reply").await?;
    if head[0] != VERSION {
        return Err(not_socks5(head[0], "the CONNECT reply"));
    }
    if head[1] != 0x00 {
        return Err(reply_error(head[1], dst));
    }
    let mut rsv_atyp = [0u8; 2];
    read_exact(s, &mut rsv_atyp, "the CONNECT reply").await?;
    let addr_len = match rsv_atyp[1] {
        ATYP_V4 => 4,
        ATYP_V6 => 16,
        ATYP_DOMAIN => {
            let mut len = [0u8; 1];
            read_exact(s, &mut len, "the CONNECT reply's bound address").await?;
            usize::from(len[0])
        }
        t => {
            return Err(invalid(format!(
                "sent an unknown address type {t:#04x} in its reply"
            )))
        }
    };
    // 255-byte domain + 2-byte port at most: bounded.
    let mut bnd = [0u8; 255 + 2];
    read_exact(
        s,
        &mut bnd[..addr_len + 2],
        "the CONNECT reply's bound address",
    )
    .await?;
    Ok(())
}

/// Username/password sub-negotiation (RFC 1929 §2).
async fn userpass(s: &mut TcpStream, user: &str, pass: &str) -> io::Result<()> {
    let (u, p) = (user.as_bytes(), pass.as_bytes());
    let (Ok(ulen), Ok(plen)) = (u8::try_from(u.len()), u8::try_from(p.len())) else {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "username and password must be at most 255 bytes each (RFC 1929)",
        ));
    };
    let mut msg = Vec::with_capacity(3 + u.len() + p.len());
    msg.push(0x01);
    msg.push(ulen);
    msg.extend_from_slice(u);
    msg.push(plen);
    msg.extend_from_slice(p);
    s.write_all(&msg).await?;
    let mut rep = [0u8; 2];
    read_exact(s, &mut rep, "the authentication reply").await?;
    // RFC 1929 says VER 0x01; some servers echo 0x05. Only STATUS matters.
    if rep[0] != 0x01 && rep[0] != VERSION {
        return Err(invalid(format!(
            "answered authentication with version {:#04x}, not 0x01",
            rep[0]
        )));
    }
    if rep[1] != 0x00 {
        return Err(io::Error::new(
            io::ErrorKind::PermissionDenied,
            format!(
                "rejected username '{user}' and its password (status {:#04x})",
                rep[1]
            ),
        ));
    }
    Ok(())
}

/// The `ErrorKind` for a CONNECT reply code (RFC 1928 §6).
fn reply_error(code: u8, dst: SocketAddr) -> io::Error {
    use io::ErrorKind as K;
    let (kind, what) = match code {
        0x01 => (K::Other, "general SOCKS server failure"),
        0x02 => (K::PermissionDenied, "connection not allowed by ruleset"),
        0x03 => (K::NetworkUnreachable, "network unreachable"),
        0x04 => (K::HostUnreachable, "host unreachable"),
        0x05 => (K::ConnectionRefused, "connection refused"),
        0x06 => (K::TimedOut, "TTL expired"),
        0x07 => (K::Other, "command not supported"),
        0x08 => (K::Other, "address type not supported"),
        _ => (K::Other, "unassigned reply code"),
    };
    io::Error::new(kind, format!("CONNECT {dst}: {what} (reply {code:#04x})"))
}

async fn read_exact(s: &mut TcpStream, buf: &mut [u8], what: &str) -> io::Result<()> {
    match s.read_exact(buf).await {
        Ok(_) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => Err(io::Error::new(
            io::ErrorKind::UnexpectedEof,
            format!("closed the connection in the middle of {what}"),
        )),
        Err(e) => Err(e),
    }
}

fn not_socks5(ver: u8, what: &str) -> io::Error {
    invalid(format!(
        "is not a SOCKS5 server: {what} starts with {ver:#04x}, not 0x05"
    ))
}

fn invalid(msg: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, msg)
}

/// `--socks5`: `HOST:PORT`, `socks5://HOST:PORT` or
/// `socks5://USER:PASS@HOST:PORT`, with a numeric host (IPv6 in brackets).
/// USER and PASS may be percent-encoded, as in any URL (RFC 3986 §3.2.1).
pub fn parse_proxy(s: &str) -> Result<(SocketAddr, Option<(String, String)>), String> {
    let t = s.trim();
    let rest = match t.split_once("://") {
        // socks5h (proxy resolves names) is the same here: we send numbers.
        Some((scheme, rest))
            if scheme.eq_ignore_ascii_case("socks5") || scheme.eq_ignore_ascii_case("socks5h") =>
        {
            rest
        }
        Some((scheme, _)) => {
            return Err(format!(
                "'{s}': only SOCKS5 proxies are supported, not {scheme}://; \
                 write socks5://HOST:PORT"
            ))
        }
        None => t,
    };
    let rest = rest.strip_suffix('/').unwrap_or(rest);
    // The host part holds no '@', so the last '@' ends the user info.
    let (auth, hostport) = match rest.rsplit_once('@') {
        None => (None, rest),
        Some((info, hostport)) => {
            let Some((user, pass)) = info.split_once(':') else {
                return Err(format!(
                    "'{s}': credentials need a user and a password: socks5://USER:PASS@HOST:PORT"
                ));
            };
            let (user, pass) = (percent_decode(user, s)?, percent_decode(pass, s)?);
            if user.is_empty() || pass.is_empty() {
                return Err(format!(
                    "'{s}': the user and the password must not be empty"
                ));
            }
            if user.len() > 255 || pass.len() > 255 {
                return Err(format!(
                    "'{s}': the user and the password are at most 255 bytes each (RFC 1929)"
                ));
            }
            (Some((user, pass)), hostport)
        }
    };
    let addr: SocketAddr = hostport.parse().map_err(|_| {
        format!(
            "'{s}': '{hostport}' is not a numeric address with a port; \
             write e.g. 127.0.0.1:1080 or [::1]:1080"
        )
    })?;
    if addr.port() == 0 {
        return Err(format!("'{s}': the proxy's port must not be 0"));
    }
    Ok((addr, auth))
}

fn percent_decode(part: &str, whole: &str) -> Result<String, String> {
    let b = part.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            let hex = b
                .get(i + 1..i + 3)
                .and_then(|h| std::str::from_utf8(h).ok());
            let Some(v) = hex.and_then(|h| u8::from_str_radix(h, 16).ok()) else {
                return Err(format!(
                    "'{whole}': a '%' in the credentials must start %XX"
                ));
            };
            out.push(v);
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8(out).map_err(|_| format!("'{whole}': the credentials are not UTF-8"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::future::Future;
    use std::net::{Ipv4Addr, Ipv6Addr};
    use tokio::net::TcpListener;

    /// Runs `f` on the first connection to a listener on 127.0.0.1.
    async fn serve_once<F, Fut>(f: F) -> SocketAddr
    where
        F: FnOnce(TcpStream) -> Fut + Send + 'static,
        Fut: Future<Output = ()> + Send,
    {
        let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = l.local_addr().unwrap();
        tokio::spawn(async move {
            if let Ok((s, _)) = l.accept().await {
                f(s).await;
            }
        });
        addr
    }

    /// An echo server (the destination) on `ip`.
    async fn echo_server(ip: IpAddr) -> SocketAddr {
        let l = TcpListener::bind((ip, 0)).await.unwrap();
        let addr = l.local_addr().unwrap();
        tokio::spawn(async move {
            while let Ok((mut s, _)) = l.accept().await {
                tokio::spawn(async move {
                    let (mut r, mut w) = s.split();
                    let _ = tokio::io::copy(&mut r, &mut w).await;
                });
            }
        });
        addr
    }

    /// A small SOCKS5 server: checks the credentials if `creds` is given,
    /// connects to the requested address and relays; answers 0x05 when the
    /// destination refuses.
    async fn socks_server(creds: Option<(&'static str, &'static str)>) -> SocketAddr {
        serve_once(move |mut c| async move {
            let mut h = [0u8; 2];
            c.read_exact(&mut h).await.unwrap();
            let mut methods = vec![0u8; usize::from(h[1])];
            c.read_exact(&mut methods).await.unwrap();
            if let Some((user, pass)) = creds {
                if !methods.contains(&METHOD_USERPASS) {
                    c.write_all(&[5, METHOD_REFUSED]).await.unwrap();
                    return;
                }
                c.write_all(&[5, METHOD_USERPASS]).await.unwrap();
                let mut v = [0u8; 2];
                c.read_exact(&mut v).await.unwrap();
                let mut u = vec![0u8; usize::from(v[1])];
                c.read_exact(&mut u).await.unwrap();
                let mut pl = [0u8; 1];
                c.read_exact(&mut pl).await.unwrap();
                let mut p = vec![0u8; usize::from(pl[0])];
                c.read_exact(&mut p).await.unwrap();
                let ok = u == user.as_bytes() && p == pass.as_bytes();
                c.write_all(&[1, if ok { 0 } else { 1 }]).await.unwrap();
                if !ok {
                    return;
                }
            } else {
                c.write_all(&[5, METHOD_NONE]).await.unwrap();
            }
            let mut req = [0u8; 4];
            c.read_exact(&mut req).await.unwrap();
            assert_eq!(req[..3], [5, CMD_CONNECT, 0]);
            let ip: IpAddr = match req[3] {
                ATYP_V4 => {
                    let mut a = [0u8; 4];
                    c.read_exact(&mut a).await.unwrap();
                    Ipv4Addr::from(a).into()
                }
                ATYP_V6 => {
                    let mut a = [0u8; 16];
                    c.read_exact(&mut a).await.unwrap();
                    Ipv6Addr::from(a).into()
                }
                t => panic!("client sent ATYP {t}"),
            };
            let mut port = [0u8; 2];
            c.read_exact(&mut port).await.unwrap();
            let dst = SocketAddr::new(ip, u16::from_be_bytes(port));
            match TcpStream::connect(dst).await {
                Ok(mut d) => {
                    let b = d.local_addr().unwrap();
                    let mut rep = vec![5, 0, 0];
                    match b.ip() {
                        IpAddr::V4(a) => {
                            rep.push(ATYP_V4);
                            rep.extend_from_slice(&a.octets());
                        }
                        IpAddr::V6(a) => {
                            rep.push(ATYP_V6);
                            rep.extend_from_slice(&a.octets());
                        }
                    }
                    rep.extend_from_slice(&b.port().to_be_bytes());
                    c.write_all(&rep).await.unwrap();
                    let _ = tokio::io::copy_bidirectional(&mut c, &mut d).await;
                }
                Err(_) => {
                    let _ = c.write_all(&[5, 0x05, 0, ATYP_V4, 0, 0, 0, 0, 0, 0]).await;
                }
            }
        })
        .await
    }

    async fn roundtrip(s: &mut TcpStream) {
        s.write_all(b"through the proxy").await.unwrap();
        let mut back = [0u8; 17];
        s.read_exact(&mut back).await.unwrap();
        assert_eq!(&back, b"through the proxy");
    }

    fn has_ipv6_loopback() -> bool {
        std::net::TcpListener::bind("[::1]:0").is_ok()
    }

    #[tokio::test]
    async fn socks5_connect_ipv4_destination() {
        let dst = echo_server(Ipv4Addr::LOCALHOST.into()).await;
        let proxy = socks_server(None).await;
        let mut s = connect(proxy, None, dst).await.unwrap();
        roundtrip(&mut s).await;
    }

    #[tokio::test]
    async fn socks5_connect_ipv6_destination() {
        if !has_ipv6_loopback() {
            eprintln!("skipped: no ::1 on this host");
            return;
        }
        let dst = echo_server(Ipv6Addr::LOCALHOST.into()).await;
        let proxy = socks_server(None).await;
        let mut s = connect(proxy, None, dst).await.unwrap();
        roundtrip(&mut s).await;
    }

    #[tokio::test]
    async fn socks5_refused_destination_is_connection_refused() {
        // A port that was just free: bind, learn it, close.
        let closed = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap();
        let proxy = socks_server(None).await;
        let e = connect(proxy, None, closed).await.unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::ConnectionRefused, "{e}");
        assert!(e.to_string().contains("connection refused"), "{e}");
    }

    #[tokio::test]
    async fn socks5_auth_success() {
        let dst = echo_server(Ipv4Addr::LOCALHOST.into()).await;
        let proxy = socks_server(Some(("alice", "s3cret"))).await;
        let auth = Some(("alice".to_string(), "s3cret".to_string()));
        let mut s = connect(proxy, auth, dst).await.unwrap();
        roundtrip(&mut s).await;
    }

    #[tokio::test]
    async fn socks5_auth_failure_is_permission_denied() {
        let dst = echo_server(Ipv4Addr::LOCALHOST.into()).await;
        let proxy = socks_server(Some(("alice", "s3cret"))).await;
        let auth = Some(("alice".to_string(), "wrong".to_string()));
        let e = connect(proxy, auth, dst).await.unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::PermissionDenied, "{e}");
        assert!(e.to_string().contains("rejected username 'alice'"), "{e}");
    }

    #[tokio::test]
    async fn socks5_auth_required_but_not_given() {
        let dst = echo_server(Ipv4Addr::LOCALHOST.into()).await;
        let proxy = socks_server(Some(("alice", "s3cret"))).await;
        let e = connect(proxy, None, dst).await.unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::PermissionDenied, "{e}");
        assert!(e.to_string().contains("requires authentication"), "{e}");
    }

    /// A server that answers the greeting, then sends `reply` to CONNECT
    /// and (if `then`) some tunnel bytes, then closes.
    async fn scripted(reply: Vec<u8>, then: &'static [u8]) -> SocketAddr {
        serve_once(move |mut c| async move {
            let mut g = [0u8; 3];
            if c.read_exact(&mut g).await.is_err() {
                return;
            }
            let _ = c.write_all(&[5, 0]).await;
            let mut req = [0u8; 10];
            if c.read_exact(&mut req).await.is_err() {
                return;
            }
            let _ = c.write_all(&reply).await;
            let _ = c.write_all(then).await;
        })
        .await
    }

    const DST: SocketAddr = SocketAddr::new(IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1)), 80);

    #[tokio::test]
    async fn socks5_domain_bound_address_is_consumed_exactly() {
        let proxy = scripted(
            b"\x05\x00\x00\x03\x0bexample.org\x04\x38".to_vec(),
            b"HELLO",
        )
        .await;
        let mut s = connect(proxy, None, DST).await.unwrap();
        let mut got = [0u8; 5];
        s.read_exact(&mut got).await.unwrap();
        assert_eq!(&got, b"HELLO");
    }

    #[tokio::test]
    async fn socks5_ipv6_bound_address_is_consumed_exactly() {
        let mut reply = vec![5, 0, 0, ATYP_V6];
        reply.extend_from_slice(&[0; 16]);
        reply.extend_from_slice(&[0x04, 0x38]);
        let proxy = scripted(reply, b"X").await;
        let mut s = connect(proxy, None, DST).await.unwrap();
        let mut got = [0u8; 1];
        s.read_exact(&mut got).await.unwrap();
        assert_eq!(&got, b"X");
    }

    #[tokio::test]
    async fn socks5_truncated_reply_is_unexpected_eof() {
        let proxy = scripted(vec![5, 0, 0, ATYP_V4, 127], b"").await;
        let e = connect(proxy, None, DST).await.unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::UnexpectedEof, "{e}");
        assert!(
            e.to_string().contains("in the middle of the CONNECT reply"),
            "{e}"
        );
    }

    #[tokio::test]
    async fn socks5_close_after_greeting_is_unexpected_eof() {
        let proxy = serve_once(|mut c| async move {
            let mut g = [0u8; 3];
            let _ = c.read_exact(&mut g).await;
        })
        .await;
        let e = connect(proxy, None, DST).await.unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::UnexpectedEof, "{e}");
        assert!(e.to_string().contains("method selection"), "{e}");
    }

    #[tokio::test]
    async fn socks5_garbage_is_invalid_data() {
        // An HTTP server where a SOCKS5 proxy was expected.
        let proxy = serve_once(|mut c| async move {
            let mut g = [0u8; 3];
            let _ = c.read_exact(&mut g).await;
            let _ = c.write_all(b"HTTP/1.1 400 Bad Request\r\n\r\n").await;
        })
        .await;
        let e = connect(proxy, None, DST).await.unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::InvalidData, "{e}");
        assert!(e.to_string().contains("is not a SOCKS5 server"), "{e}");

        let proxy = scripted(vec![5, 0, 0, 0x09, 1, 2, 3, 4, 5, 6], b"").await;
        let e = connect(proxy, None, DST).await.unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::InvalidData, "{e}");
        assert!(e.to_string().contains("unknown address type 0x09"), "{e}");
    }

    #[tokio::test]
    async fn socks5_unoffered_method_is_invalid_data() {
        let proxy = serve_once(|mut c| async move {
            let mut g = [0u8; 3];
            let _ = c.read_exact(&mut g).await;
            let _ = c.write_all(&[5, METHOD_USERPASS]).await;
        })
        .await;
        let e = connect(proxy, None, DST).await.unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::InvalidData, "{e}");
    }

    #[tokio::test]
    async fn socks5_failure_reply_needs_no_bound_address() {
        // Some servers close right after a failure code; the kind still shows.
        let proxy = scripted(vec![5, 0x04], b"").await;
        let e = connect(proxy, None, DST).await.unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::HostUnreachable, "{e}");
        assert!(e.to_string().contains("CONNECT 192.0.2.1:80"), "{e}");
        assert!(e.to_string().contains("host unreachable"), "{e}");
    }

    #[test]
    fn socks5_reply_codes_map_to_error_kinds() {
        use io::ErrorKind as K;
        for (code, kind) in [
            (0x01, K::Other),
            (0x02, K::PermissionDenied),
            (0x03, K::NetworkUnreachable),
            (0x04, K::HostUnreachable),
            (0x05, K::ConnectionRefused),
            (0x06, K::TimedOut),
            (0x07, K::Other),
            (0x08, K::Other),
            (0x42, K::Other),
        ] {
            let e = reply_error(code, DST);
            assert_eq!(e.kind(), kind, "code {code:#04x}");
            assert!(e.to_string().contains(&format!("{code:#04x}")), "{e}");
        }
    }

    #[test]
    fn socks5_parse_proxy_forms() {
        let v4: SocketAddr = "127.0.0.1:1080".parse().unwrap();
        let v6: SocketAddr = "[::1]:1080".parse().unwrap();
        assert_eq!(parse_proxy("127.0.0.1:1080"), Ok((v4, None)));
        assert_eq!(parse_proxy("socks5://127.0.0.1:1080"), Ok((v4, None)));
        assert_eq!(parse_proxy("socks5h://127.0.0.1:1080/"), Ok((v4, None)));
        assert_eq!(parse_proxy("[::1]:1080"), Ok((v6, None)));
        assert_eq!(parse_proxy("socks5://[::1]:1080"), Ok((v6, None)));
        let creds = Some(("al ice".to_string(), "p@ss:w".to_string()));
        assert_eq!(
            parse_proxy("socks5://al%20ice:p%40ss:w@[::1]:1080"),
            Ok((v6, creds))
        );
    }

    #[test]
    fn socks5_parse_proxy_errors_say_what_to_write() {
        let err = |s: &str| parse_proxy(s).unwrap_err();
        assert!(err("localhost:1080").contains("not a numeric address"));
        assert!(err("127.0.0.1").contains("with a port"));
        assert!(err("::1:1080").contains("[::1]:1080"));
        assert!(err("http://127.0.0.1:8080").contains("only SOCKS5"));
        assert!(err("socks5://bob@127.0.0.1:1080").contains("USER:PASS"));
        assert!(err("socks5://:pw@127.0.0.1:1080").contains("empty"));
        assert!(err("socks5://a:%zz@127.0.0.1:1080").contains("%XX"));
        assert!(err("socks5://a:%f@127.0.0.1:1080").contains("%XX"));
        assert!(err("127.0.0.1:0").contains("port"));
        let long = format!("socks5://{}:p@127.0.0.1:1080", "u".repeat(256));
        assert!(err(&long).contains("255"));
    }
}
