//! Socket tables and counters in the layout of iproute2 `ss` and `nstat`.
//!
//! `filter.rs` is ss's filter language, `info.rs` the `-i` line and `-o`
//! timer, `summary.rs` the `-s` summary.

mod filter;
mod info;
mod summary;

pub use info::tcp_info_json;
pub use summary::memory_json;

use berth_core::{SkMem, SocketInfo, SocketKind, Stats, TcpInfo};
use std::fmt::Write;
use std::io::{BufRead, BufReader, Write as _};
use std::net::{Ipv6Addr, SocketAddr};
use std::os::unix::net::UnixStream;
use std::path::PathBuf;

/// `berth ss`: the socket table of a running `berth serve`.
#[derive(clap::Args, Debug)]
pub struct SsArgs {
    /// TCP sockets.
    #[arg(short = 't', long)]
    pub tcp: bool,
    /// UDP sockets.
    #[arg(short = 'u', long)]
    pub udp: bool,
    /// Raw sockets.
    #[arg(short = 'w', long)]
    pub raw: bool,
    /// Unix domain sockets: berth has none, so only the header is printed
    /// (with -t/-u/-w too, their sockets).
    #[arg(short = 'x', long)]
    pub unix: bool,
    /// Only listening sockets (LISTEN, unconnected UDP/raw).
    #[arg(short = 'l', long)]
    pub listening: bool,
    /// Listening and non-listening sockets.
    #[arg(short = 'a', long)]
    pub all: bool,
    /// Only IPv4 sockets (AF_INET).
    #[arg(short = '4', long = "ipv4", conflicts_with = "ipv6")]
    pub ipv4: bool,
    /// Only IPv6 sockets (AF_INET6).
    #[arg(short = '6', long = "ipv6")]
    pub ipv6: bool,
    /// Numeric: berth never resolves names; rates in -i are plain bps.
    #[arg(short = 'n', long)]
    pub numeric: bool,
    /// TCP details (rtt, rto, cwnd, ssthresh, mss, bytes, rates, times).
    #[arg(short = 'i', long)]
    pub info: bool,
    /// Socket memory, as iproute2: skmem:(r,rb,t,tb,f,w,o,bl,d) under each
    /// socket (receive memory held, receive buffer, transmit memory, send
    /// buffer, forward alloc, queued, option memory, backlog, drops).
    #[arg(short = 'm', long)]
    pub memory: bool,
    /// Timers: timer:(on|keepalive|timewait|persist,TIME,RETRANS); with -i,
    /// the negotiated options (ts, sack) too.
    #[arg(short = 'o', long)]
    pub options: bool,
    /// Details: uid (when not 0), ino (berth's socket handle + 1; 0 for a
    /// socket no application holds), sk, v6only, shutdown state; implies -o.
    #[arg(short = 'e', long)]
    pub extended: bool,
    /// The owner: users:(("SERVICE",pid=PID,fd=HANDLE)), the berth service
    /// (or process) and the socket handle.
    #[arg(short = 'p', long)]
    pub processes: bool,
    /// No header line.
    #[arg(short = 'H', long = "no-header")]
    pub no_header: bool,
    /// Summary (with stack-wide memory and pressure) and the stack's counters.
    #[arg(short = 's', long)]
    pub summary: bool,
    /// Print JSON (the control protocol's rows) instead of a table.
    #[arg(long)]
    pub json: bool,
    /// The server's control socket.
    #[arg(long, value_name = "PATH", conflicts_with = "name")]
    pub control: Option<PathBuf>,
    /// The server's device name (control socket /run/berth/NAME.sock).
    #[arg(long)]
    pub name: Option<String>,
    /// `berth run`'s relayed flows: each namespace-side flow with the host
    /// socket that carries it.
    #[arg(long, conflicts_with = "summary")]
    pub relays: bool,
    /// iproute2's filter: `state NAME`/`exclude NAME` (established, syn-sent,
    /// syn-recv, fin-wait-1, fin-wait-2, time-wait, closed, close-wait,
    /// last-ack, listening, closing; all, connected, synchronized, bucket,
    /// big), then conditions on sport/dport/src/dst (`dport = :80`,
    /// `src 192.0.2.0/24`, `sport >= :1024`) joined by and/or/not/( ).
    #[arg(value_name = "FILTER")]
    pub filter: Vec<String>,
}

/// What a table shows besides the columns (ss -i, -m, -o, -e, -p, -n, -H).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Show {
    pub info: bool,
    pub mem: bool,
    pub options: bool,
    pub details: bool,
    pub processes: bool,
    pub numeric: bool,
    pub header: bool,
    /// The Netid column; iproute2 leaves it out when a single socket table is
    /// shown (`-t`, `-u` or `-w` alone; misc/ss.c disables COL_NETID unless
    /// several are selected).
    pub netid: bool,
    /// The State column; iproute2 leaves it out when the filter selects a
    /// single state (`state established`).
    pub state: bool,
}

impl Show {
    /// The simulator's and soak's tables: tcp_info with its options, no
    /// memory, process or details.
    const TABLE: Show = Show {
        info: true,
        mem: false,
        options: true,
        details: false,
        processes: false,
        numeric: false,
        header: true,
        netid: true,
        state: true,
    };
}

pub fn run(a: SsArgs) -> Result<(), String> {
    let filt = filter::parse(&a.filter)?;
    let path = match (&a.control, &a.name) {
        (Some(p), _) => p.clone(),
        (None, Some(n)) => crate::serve::default_control(n),
        (None, None) => only_server()?,
    };
    let mut c = Client::connect(&path)?;
    if a.relays {
        let v = c.request("relays")?;
        let rows = v
            .get("relays")
            .and_then(|r| r.as_array())
            .cloned()
            .unwrap_or_default();
        if a.json {
            println!("{}", serde_json::Value::Array(rows));
        } else {
            print!("{}", relay_table(&rows));
        }
        return Ok(());
    }
    if a.summary {
        let rows = c.rows()?;
        let stats = c.request("stats")?;
        // A server without memory accounting answers an error: no memory lines.
        let memory = c.request("memory").ok();
        let memory = memory.as_ref().and_then(|m| m.get("memory"));
        if a.json {
            // The counters object as before, with the memory object added.
            let mut s = stats.get("stats").cloned().unwrap_or_default();
            if let (serde_json::Value::Object(o), Some(m)) = (&mut s, memory) {
                o.insert("memory".into(), m.clone());
            }
            println!("{s}");
        } else {
            print!("{}", summary::summary(&rows, &stats, memory));
        }
        return Ok(());
    }
    let raw_rows = c.raw_rows()?;
    let rows: Vec<Row> = raw_rows
        .iter()
        .map(|v| Row::from_json(v).ok_or_else(|| format!("bad socket row: {v}")))
        .collect::<Result<_, _>>()?;
    let any_kind = !(a.tcp || a.udp || a.raw || a.unix);
    // As iproute2: explicit states win; else -a all, -l the listening ones,
    // and by default each table's own: TCP's (and Unix's) the connected ones
    // (not LISTEN, closed, TIME-WAIT or SYN-RECV), UDP's and raw's only
    // ESTAB (so `ss -u` has no State column either).
    let default_states = if any_kind || a.tcp || a.unix {
        filter::st::CONN
    } else {
        filter::st::ESTABLISHED
    };
    let states = match (filt.states, a.all, a.listening) {
        (Some(s), _, _) => s,
        (None, true, _) => filter::st::ALL,
        (None, false, true) => filter::st::LISTEN | filter::st::CLOSE,
        (None, false, false) => default_states,
    };
    // iproute2 counts socket tables: -x alone is three (stream, datagram,
    // seqpacket), no kind flag is all of them; the Netid column only for
    // more than one.
    let tables = [a.tcp, a.udp, a.raw, a.unix, a.unix, a.unix]
        .iter()
        .filter(|&&on| on)
        .count();
    let keep = |r: &Row| {
        let kind = any_kind
            || (a.tcp && r.netid == "tcp")
            || (a.udp && r.netid == "udp")
            || (a.raw && r.netid == "raw");
        let state = states & filter::state_bit(&r.state) != 0;
        let family = !(a.ipv4 || a.ipv6) || a.ipv6 == r.is_ipv6();
        let expr = filt
            .expr
            .as_ref()
            .is_none_or(|e| r.endpoints().is_some_and(|s| e.matches(&s)));
        kind && state && family && expr
    };
    if a.json {
        let kept: Vec<_> = raw_rows
            .into_iter()
            .zip(&rows)
            .filter(|(_, r)| keep(r))
            .map(|(v, _)| v)
            .collect();
        println!("{}", serde_json::Value::Array(kept));
    } else {
        let kept: Vec<Row> = rows.into_iter().filter(|r| keep(r)).collect();
        let show = Show {
            info: a.info,
            mem: a.memory,
            options: a.options || a.extended,
            details: a.extended,
            processes: a.processes,
            numeric: a.numeric,
            header: !a.no_header,
            netid: tables != 1,
            state: states.count_ones() != 1,
        };
        print!("{}", render(&kept, &show));
    }
    Ok(())
}

/// `berth ss --relays`: one line per relayed flow, the namespace side
/// (peer → original destination) and the host socket (local → remote).
fn relay_table(rows: &[serde_json::Value]) -> String {
    let field = |r: &serde_json::Value, k: &str| {
        r.get(k).and_then(|v| v.as_str()).unwrap_or("*").to_string()
    };
    let mut lines = vec![[
        "Netid".to_string(),
        "Namespace-Peer".into(),
        "Destination".into(),
        "Host-Local".into(),
        "Host-Remote".into(),
    ]];
    for r in rows {
        lines.push([
            field(r, "proto"),
            field(r, "inside"),
            field(r, "destination"),
            field(r, "host_local"),
            field(r, "host_remote"),
        ]);
    }
    let mut w = [0usize; 5];
    for l in &lines {
        for (i, c) in l.iter().enumerate() {
            w[i] = w[i].max(c.len());
        }
    }
    let mut out = String::new();
    for l in &lines {
        let cells: Vec<String> = l
            .iter()
            .enumerate()
            .map(|(i, c)| format!("{c:<width$}", width = w[i]))
            .collect();
        out.push_str(cells.join("  ").trim_end());
        out.push('\n');
    }
    out
}

/// With no --name or --control: the one server in the control directory.
fn only_server() -> Result<PathBuf, String> {
    let dir = crate::serve::control_dir();
    let socks: Vec<PathBuf> = std::fs::read_dir(&dir)
        .map(|d| {
            d.flatten()
                .map(|e| e.path())
                .filter(|p| p.extension().is_some_and(|x| x == "sock"))
                .collect()
        })
        .unwrap_or_default();
    match socks.as_slice() {
        [one] => Ok(one.clone()),
        [] => Err(format!(
            "no berth server found under {}; start one with \
             `berth serve --tun NAME --create --addr 192.0.2.2/24 --echo` or `berth run -- CMD`",
            dir.display()
        )),
        many => Err(format!(
            "several berth servers: {}; pick one with --name or --control",
            many.iter()
                .map(|p| p.display().to_string())
                .collect::<Vec<_>>()
                .join(", ")
        )),
    }
}

/// Why the control socket at `path` (of server `name`) cannot be reached,
/// and what to do about it.
fn connect_error(path: &std::path::Path, name: &str, e: &std::io::Error) -> String {
    let start = format!("`berth serve --tun {name} --addr 192.0.2.2/24 …`");
    // ECONNREFUSED on a socket file that exists: nothing listens on it any
    // more; its server died without removing it (killed, crashed).
    if e.raw_os_error() == Some(libc::ECONNREFUSED) {
        return format!(
            "stale control socket {p}: nothing listens on it ({e}); the server that made it \
             is gone (killed?). Remove it (`rm {p}`) or restart the server with {start}",
            p = path.display()
        );
    }
    format!(
        "no berth server at {} ({e}); start one with {start}",
        path.display()
    )
}

/// A connection to a `berth serve` control socket.
pub struct Client {
    r: BufReader<UnixStream>,
    w: UnixStream,
}

impl Client {
    pub fn connect(path: &std::path::Path) -> Result<Client, String> {
        let name = path
            .file_stem()
            .and_then(|s| s.to_str())
            .unwrap_or("NAME")
            .to_string();
        let w = UnixStream::connect(path).map_err(|e| connect_error(path, &name, &e))?;
        let r = BufReader::new(w.try_clone().map_err(|e| e.to_string())?);
        Ok(Client { r, w })
    }

    pub fn request(&mut self, cmd: &str) -> Result<serde_json::Value, String> {
        let req = serde_json::json!({ "cmd": cmd });
        writeln!(self.w, "{req}").map_err(|e| format!("control socket: {e}"))?;
        let mut line = String::new();
        self.r
            .read_line(&mut line)
            .map_err(|e| format!("control socket: {e}"))?;
        let v: serde_json::Value = serde_json::from_str(&line)
            .map_err(|e| format!("bad answer from the server ({e}): {line:?}"))?;
        if v.get("ok").and_then(|o| o.as_bool()) != Some(true) {
            let err = v.get("error").and_then(|e| e.as_str()).unwrap_or("?");
            return Err(format!("server: {err}"));
        }
        Ok(v)
    }

    fn raw_rows(&mut self) -> Result<Vec<serde_json::Value>, String> {
        let v = self.request("sockets")?;
        match v.get("sockets") {
            Some(serde_json::Value::Array(a)) => Ok(a.clone()),
            _ => Err("bad answer from the server: no sockets array".into()),
        }
    }

    pub fn rows(&mut self) -> Result<Vec<Row>, String> {
        self.raw_rows()?
            .iter()
            .map(|v| Row::from_json(v).ok_or_else(|| format!("bad socket row: {v}")))
            .collect()
    }
}

/// skmem as a JSON object with iproute2's field names.
fn skmem_json(m: &SkMem) -> serde_json::Value {
    serde_json::json!({
        "r": m.rmem_alloc, "rb": m.rcvbuf, "t": m.wmem_alloc, "tb": m.sndbuf,
        "f": m.fwd_alloc, "w": m.wmem_queued, "o": m.optmem, "bl": m.backlog, "d": m.drops,
    })
}

/// [`skmem_json`] back; `None` if a field is missing.
fn skmem_from_json(v: &serde_json::Value) -> Option<SkMem> {
    let n = |k: &str| v.get(k).and_then(|x| x.as_u64());
    let u = |k: &str| n(k).map(|x| x as usize);
    Some(SkMem {
        rmem_alloc: u("r")?,
        rcvbuf: u("rb")?,
        wmem_alloc: u("t")?,
        sndbuf: u("tb")?,
        fwd_alloc: u("f")?,
        wmem_queued: u("w")?,
        optmem: u("o")?,
        backlog: u("bl")?,
        drops: n("d")?,
    })
}

/// IPV6_V6ONLY of the socket in row `r`, which decides how iproute2 writes its
/// wildcard address: an IPv6 socket is dual-stack unless set otherwise, as on
/// Linux (bindv6only=0), and a `[::]` listener that takes IPv4 too is shown as
/// `*:7`. False for IPv4 sockets, raw sockets and rows without a socket of
/// their own (a listener's half-open connections).
pub fn v6only(core: &mut berth_core::Stack, r: &SocketInfo) -> bool {
    if !r.local.is_ipv6() {
        return false;
    }
    match r.kind {
        SocketKind::Tcp => core.tcp_only_v6(r.handle).unwrap_or(false),
        SocketKind::Udp => core.udp_only_v6(r.handle).unwrap_or(false),
        SocketKind::Raw(_) => false,
    }
}

/// An address as iproute2's `ss` writes it (misc/ss.c, inet_addr_print): IPv4
/// as `192.0.2.2:7`; IPv6 bracketed, `[2001:db8::2]:7`, except the wildcard
/// of a dual-stack socket (not `v6only`), which is `*`. IPv6 port 0 is `*`;
/// IPv4 rows keep berth's `0.0.0.0:0` for an unbound socket.
pub fn addr_text(a: SocketAddr, v6only: bool) -> String {
    match a {
        SocketAddr::V4(a) => a.to_string(),
        SocketAddr::V6(a) => {
            let host = if a.ip().is_unspecified() && !v6only {
                "*".to_string()
            } else {
                format!("[{}]", a.ip())
            };
            match a.port() {
                0 => format!("{host}:*"),
                p => format!("{host}:{p}"),
            }
        }
    }
}

/// The peer column of a socket without a peer: the wildcard of its family
/// (`0.0.0.0:*`; `[::]:*`, or `*:*` for a dual-stack socket).
pub fn no_peer(local: SocketAddr, v6only: bool) -> String {
    match local {
        SocketAddr::V4(_) => "0.0.0.0:*".to_string(),
        SocketAddr::V6(_) => addr_text(SocketAddr::from((Ipv6Addr::UNSPECIFIED, 0)), v6only),
    }
}

/// One `ss` row as the control protocol carries it (owned, display-ready).
#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    pub netid: String,
    pub state: String,
    pub recv_q: u64,
    pub send_q: u64,
    pub local: String,
    pub peer: String,
    /// The `ss -i` line as the server wrote it, for TCP connections (what a
    /// row shows when it has no `tcp` fields: a server from before them).
    pub info: Option<String>,
    /// The `ss -m` skmem text (absent from servers without memory accounting).
    pub skmem: Option<String>,
    /// tcp_info, for the `-i` line and `-o` timer.
    pub tcp: Option<TcpInfo>,
    /// `-e` and `-p` (absent from servers from before them).
    pub owner: Option<Owner>,
}

/// Who holds a socket, for `ss -e` and `ss -p`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Owner {
    pub uid: u32,
    /// berth's socket handle + 1; 0 for a socket no application holds (an
    /// orphan, a half-open connection), as Linux shows ino:0 for those.
    pub ino: u64,
    /// The socket's slot (Linux prints its struct sock's address).
    pub sk: u64,
    /// IPV6_V6ONLY, for AF_INET6 sockets.
    pub v6only: Option<bool>,
    /// The holder: service (or process) name, pid and berth's socket handle.
    pub users: Option<(String, u32, u64)>,
}

/// The process that owns a server's sockets: its pid and uid, its name, and
/// the names of its services by (netid, port) (`berth serve --echo`:
/// ("tcp", 7, "berth-echo")).
#[derive(Debug, Clone, Default)]
pub struct Process {
    pub pid: u32,
    pub uid: u32,
    pub name: String,
    pub services: Vec<(&'static str, u16, String)>,
}

impl Process {
    /// This process, with `services`.
    pub fn current(services: Vec<(&'static str, u16, String)>) -> Process {
        let name = std::fs::read_to_string("/proc/self/comm")
            .map(|s| s.trim().to_string())
            .ok()
            .filter(|s| !s.is_empty())
            .unwrap_or_else(|| "berth".into());
        Process {
            pid: std::process::id(),
            // SAFETY: geteuid has no preconditions and cannot fail.
            uid: unsafe { libc::geteuid() },
            name,
            services,
        }
    }

    /// The `-e`/`-p` fields of socket row `r`.
    pub fn owner(&self, r: &SocketInfo, v6only: bool) -> Owner {
        let half_open = r.state == "SYN-RECV" && r.tcp.is_none();
        let orphan = r.tcp.as_ref().is_some_and(|t| t.orphan);
        let held = !(half_open || orphan);
        let slot = u64::from(r.handle.index());
        let name = self
            .services
            .iter()
            .find(|(netid, port, _)| *netid == r.kind.netid() && *port == r.local.port())
            .map_or_else(|| self.name.clone(), |s| s.2.clone());
        Owner {
            uid: self.uid,
            ino: if held { slot + 1 } else { 0 },
            sk: slot,
            v6only: r.local.is_ipv6().then_some(v6only),
            users: held.then_some((name, self.pid, slot)),
        }
    }
}

impl Owner {
    fn json(&self) -> serde_json::Value {
        serde_json::json!({
            "uid": self.uid,
            "ino": self.ino,
            "sk": self.sk,
            "v6only": self.v6only,
            "users": self.users.as_ref().map(|(name, pid, fd)| serde_json::json!({
                "name": name, "pid": pid, "fd": fd,
            })),
        })
    }

    fn from_json(v: &serde_json::Value) -> Option<Owner> {
        let users = v.get("users").and_then(|u| {
            Some((
                u.get("name")?.as_str()?.to_string(),
                u32::try_from(u.get("pid")?.as_u64()?).ok()?,
                u.get("fd")?.as_u64()?,
            ))
        });
        Some(Owner {
            uid: u32::try_from(v.get("uid")?.as_u64()?).ok()?,
            ino: v.get("ino")?.as_u64()?,
            sk: v.get("sk")?.as_u64()?,
            v6only: v.get("v6only").and_then(|x| x.as_bool()),
            users,
        })
    }
}

impl Row {
    /// The row of a socket that is not IPV6_V6ONLY (every IPv4 one).
    pub fn from_info(r: &SocketInfo) -> Row {
        Row::from_info_v6only(r, false)
    }

    /// The row of a socket, `v6only` saying whether it set IPV6_V6ONLY
    /// ([`v6only`]).
    pub fn from_info_v6only(r: &SocketInfo, v6only: bool) -> Row {
        Row {
            netid: r.kind.netid().into(),
            state: r.state.into(),
            recv_q: r.recv_q as u64,
            send_q: r.send_q as u64,
            local: addr_text(r.local, v6only),
            peer: match r.peer {
                Some(p) => addr_text(p, v6only),
                None => no_peer(r.local, v6only),
            },
            info: r.tcp.as_ref().map(tcp_info),
            skmem: Some(r.mem.ss_format()),
            tcp: r.tcp.clone(),
            owner: None,
        }
    }

    /// An AF_INET6 socket: its address is bracketed, or `*` (iproute2's text).
    pub fn is_ipv6(&self) -> bool {
        self.local.starts_with('[') || self.local.starts_with('*')
    }

    /// A listener's half-open connection (a SYN-RECV row without a
    /// connection of its own).
    pub fn is_half_open(&self) -> bool {
        self.state == "SYN-RECV" && self.tcp.is_none() && self.info.is_none()
    }

    /// A connection the application closed, finishing on its own.
    pub fn is_orphan(&self) -> bool {
        self.tcp.as_ref().is_some_and(|t| t.orphan)
    }

    /// Addresses and ports, for the filter.
    fn endpoints(&self) -> Option<filter::Endpoints> {
        Some(filter::Endpoints {
            local: filter::parse_column(&self.local)?,
            peer: filter::parse_column(&self.peer)?,
        })
    }

    /// The row for the control protocol: the fields above plus `tcp_info`, for
    /// a socket whose IPV6_V6ONLY is `v6only`.
    pub fn json_v6only(r: &SocketInfo, v6only: bool) -> serde_json::Value {
        let row = Row::from_info_v6only(r, v6only);
        serde_json::json!({
            "netid": row.netid,
            "state": row.state,
            "recv_q": row.recv_q,
            "send_q": row.send_q,
            "local": row.local,
            "peer": row.peer,
            "drops": r.drops,
            "info": row.info,
            "tcp_info": r.tcp.as_ref().map(tcp_info_json),
            "skmem": skmem_json(&r.mem),
        })
    }

    /// [`Row::json_v6only`] with the `-e`/`-p` fields of `process`'s socket:
    /// `uid`, `ino`, `sk`, `v6only` and `users` (`{name, pid, fd}`).
    pub fn json_owned(r: &SocketInfo, v6only: bool, process: &Process) -> serde_json::Value {
        let mut v = Row::json_v6only(r, v6only);
        if let (serde_json::Value::Object(o), serde_json::Value::Object(e)) =
            (&mut v, process.owner(r, v6only).json())
        {
            o.extend(e);
        }
        v
    }

    /// Parse a row written by [`Row::json_v6only`]; `None` if a field is missing.
    pub fn from_json(v: &serde_json::Value) -> Option<Row> {
        let s = |k: &str| v.get(k).and_then(|x| x.as_str()).map(str::to_string);
        let n = |k: &str| v.get(k).and_then(|x| x.as_u64());
        Some(Row {
            netid: s("netid")?,
            state: s("state")?,
            recv_q: n("recv_q")?,
            send_q: n("send_q")?,
            local: s("local")?,
            peer: s("peer")?,
            info: s("info"),
            skmem: v
                .get("skmem")
                .and_then(skmem_from_json)
                .map(|m| m.ss_format()),
            tcp: v.get("tcp_info").and_then(info::tcp_info_from_json),
            owner: Owner::from_json(v),
        })
    }

    /// What follows the peer column on the row's own line: `-p`'s users
    /// (the Process column), `-o`'s timer, `-e`'s details.
    fn trailer(&self, show: &Show) -> (String, String) {
        let users = match (&self.owner, show.processes) {
            (
                Some(Owner {
                    users: Some((name, pid, fd)),
                    ..
                }),
                true,
            ) => {
                format!("users:((\"{name}\",pid={pid},fd={fd}))")
            }
            _ => String::new(),
        };
        let mut more = String::new();
        if show.options {
            if let Some(t) = &self.tcp {
                more.push_str(&info::timer_text(t));
            }
        }
        if let (true, Some(o)) = (show.details, &self.owner) {
            if o.uid != 0 {
                let _ = write!(more, " uid:{}", o.uid);
            }
            let _ = write!(more, " ino:{} sk:{:x}", o.ino, o.sk);
            if let Some(v) = o.v6only {
                let _ = write!(more, " v6only:{}", u8::from(v));
            }
            // Full sockets report their shutdown state; TIME-WAIT and
            // half-open ones (Linux's minisocks) do not.
            if !(self.state == "TIME-WAIT" || self.is_half_open()) {
                let mask = self.tcp.as_ref().map_or(0, |t| t.shutdown);
                let _ = write!(
                    more,
                    " {}-{}",
                    if mask & 1 != 0 { '-' } else { '<' },
                    if mask & 2 != 0 { '-' } else { '>' }
                );
            }
        }
        (users, more)
    }
}

/// Rows in `ss -ani` layout: Netid State Recv-Q Send-Q Local Address:Port Peer
/// Address:Port, and under each TCP connection its tcp_info line (see [`tcp_info`]).
pub fn table(rows: &[SocketInfo]) -> String {
    let rows: Vec<Row> = rows.iter().map(Row::from_info).collect();
    render(&rows, &Show::TABLE)
}

/// [`table`] of sockets of `core`, whose IPV6_V6ONLY it reads for each row.
pub fn table_of(core: &mut berth_core::Stack, rows: &[SocketInfo]) -> String {
    let rows: Vec<Row> = rows
        .iter()
        .map(|r| Row::from_info_v6only(r, v6only(core, r)))
        .collect();
    render(&rows, &Show::TABLE)
}

/// [`table`] for [`Row`]s. Under each socket, as iproute2 prints them on one
/// line: `mem` adds its skmem, `info` its tcp_info.
#[cfg(test)]
pub fn table_rows(rows: &[Row], info: bool, mem: bool) -> String {
    render(
        rows,
        &Show {
            info,
            mem,
            ..Show::TABLE
        },
    )
}

/// The table as iproute2 lays it out: the columns (with `-p` the Process
/// column), then on the same line `-o`'s timer and `-e`'s details, and on
/// the next, after a tab, `-m`'s skmem and `-i`'s tcp_info.
pub fn render(rows: &[Row], show: &Show) -> String {
    // Which of Netid, State, Recv-Q, Send-Q, Local, Peer, Process show.
    let on = [
        show.netid,
        show.state,
        true,
        true,
        true,
        true,
        show.processes,
    ];
    let pick = |all: [String; 7]| -> Vec<String> {
        all.into_iter()
            .zip(on)
            .filter_map(|(c, shown)| shown.then_some(c))
            .collect()
    };
    let header = pick(
        [
            "Netid",
            "State",
            "Recv-Q",
            "Send-Q",
            "Local Address:Port",
            "Peer Address:Port",
            "Process",
        ]
        .map(String::from),
    );
    // Recv-Q and Send-Q are right-aligned, the rest left.
    let first_q = usize::from(show.netid) + usize::from(show.state);
    let cols = header.len();
    let mut lines: Vec<(Vec<String>, String)> = Vec::new();
    if show.header {
        lines.push((header, String::new()));
    }
    for r in rows {
        let (users, more) = r.trailer(show);
        let l = pick([
            r.netid.clone(),
            r.state.clone(),
            r.recv_q.to_string(),
            r.send_q.to_string(),
            r.local.clone(),
            r.peer.clone(),
            users,
        ]);
        lines.push((l, more));
    }
    let mut w = vec![0usize; cols];
    for (l, _) in &lines {
        for (i, c) in l.iter().enumerate() {
            w[i] = w[i].max(c.len());
        }
    }
    let mut out = String::new();
    // Row i of `rows` is line i (+ 1 with the header).
    let skip = usize::from(show.header);
    for (k, (l, more)) in lines.iter().enumerate() {
        let mut line = String::new();
        for (i, c) in l.iter().enumerate() {
            if i > 0 {
                line.push(' ');
            }
            if i == first_q || i == first_q + 1 {
                let _ = write!(line, "{c:>width$}", width = w[i]);
            } else {
                let _ = write!(line, "{c:<width$}", width = w[i]);
            }
        }
        let _ = writeln!(out, "{}{more}", line.trim_end());
        let Some(r) = k.checked_sub(skip).and_then(|i| rows.get(i)) else {
            continue;
        };
        let info = match (&r.tcp, show.info) {
            (Some(t), true) => Some(info::line(t, show.options, show.numeric)),
            (None, true) => r.info.clone(),
            _ => None,
        };
        let parts: Vec<String> = [r.skmem.clone().filter(|_| show.mem), info]
            .into_iter()
            .flatten()
            .collect();
        if !parts.is_empty() {
            let _ = writeln!(out, "\t {}", parts.join(" "));
        }
    }
    out
}

/// One connection's details in the words of iproute2 `ss -i` (with `-o`'s
/// options, rates scaled): see [`info::line`].
pub fn tcp_info(t: &TcpInfo) -> String {
    info::line(t, true, false)
}

/// Non-zero counters, one per line: name, value, description.
pub fn counters(stats: &Stats) -> String {
    let mut out = String::new();
    let nz: Vec<_> = stats.non_zero().collect();
    let w = nz.iter().map(|c| c.0.len()).max().unwrap_or(0);
    for (name, doc, v) in nz {
        let _ = writeln!(out, "  {name:<w$} {v:>10}  {doc}");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use berth_core::{MemoryUsage, SocketHandle, SocketKind};
    use std::net::{Ipv4Addr, SocketAddrV4};

    #[test]
    fn layout() {
        let rows = vec![
            SocketInfo {
                handle: SocketHandle::from_raw(0, 0),
                kind: SocketKind::Udp,
                state: "UNCONN",
                recv_q: 1234,
                send_q: 0,
                local: SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, 7).into(),
                peer: None,
                drops: 0,
                tcp: None,
                mem: SkMem::default(),
            },
            SocketInfo {
                handle: SocketHandle::from_raw(1, 0),
                kind: SocketKind::Udp,
                state: "ESTAB",
                recv_q: 0,
                send_q: 0,
                local: SocketAddrV4::new(Ipv4Addr::new(192, 0, 2, 1), 50000).into(),
                peer: Some(SocketAddrV4::new(Ipv4Addr::new(192, 0, 2, 2), 7).into()),
                drops: 0,
                tcp: None,
                mem: SkMem::default(),
            },
        ];
        let t = table(&rows);
        let lines: Vec<&str> = t.lines().collect();
        assert_eq!(lines.len(), 3);
        assert!(lines[0].starts_with("Netid State "));
        assert!(lines[1].contains("udp   UNCONN   1234      0 0.0.0.0:7"));
        assert!(lines[1].trim_end().ends_with("0.0.0.0:*"));
        assert!(lines[2].contains("192.0.2.1:50000"));
        assert!(lines[2].trim_end().ends_with("192.0.2.2:7"));
    }

    /// One socket table (`ss -t`, `ss -tln`): no Netid column, as iproute2;
    /// Recv-Q and Send-Q still right-aligned, with or without State.
    #[test]
    fn one_kind_has_no_netid_column() {
        let row = |state: &str, local: &str, peer: &str, recv_q: u64| Row {
            netid: "tcp".into(),
            state: state.into(),
            recv_q,
            send_q: 128,
            local: local.into(),
            peer: peer.into(),
            info: None,
            skmem: None,
            tcp: None,
            owner: None,
        };
        let rows = [
            row("LISTEN", "0.0.0.0:7", "0.0.0.0:*", 0),
            row("ESTAB", "192.0.2.2:7", "192.0.2.1:40000", 12345),
        ];
        let show = Show {
            netid: false,
            ..Show::TABLE
        };
        let t = render(&rows, &show);
        let lines: Vec<&str> = t.lines().collect();
        assert_eq!(
            lines[0],
            "State  Recv-Q Send-Q Local Address:Port Peer Address:Port"
        );
        assert_eq!(
            lines[1],
            format!("LISTEN      0    128 {:<18} 0.0.0.0:*", "0.0.0.0:7")
        );
        assert!(
            lines[2].starts_with("ESTAB   12345    128 192.0.2.2:7 "),
            "{t}"
        );
        // State left out too (`ss -t state established`).
        let t = render(
            &rows[1..],
            &Show {
                state: false,
                ..show
            },
        );
        assert!(t.starts_with("Recv-Q Send-Q Local Address:Port"), "{t}");
        assert!(
            t.lines()
                .nth(1)
                .unwrap_or("")
                .starts_with(" 12345    128 192.0.2.2:7 "),
            "{t}"
        );
        // Several kinds (the default): Netid first.
        assert!(render(&rows, &Show::TABLE).starts_with("Netid State  Recv-Q"));
    }

    /// A control socket whose server was killed refuses connections: the
    /// error says it is stale and what to do.
    #[test]
    fn stale_control_socket_says_remove_or_restart() {
        let dir = std::env::temp_dir().join(format!("berth-ss-stale-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("temp dir");
        let path = dir.join("bt9.sock");
        // Bound, then closed without unlinking: what a killed server leaves.
        drop(std::os::unix::net::UnixListener::bind(&path).expect("bind"));
        let err = Client::connect(&path).err();
        let missing = Client::connect(&dir.join("none.sock")).err();
        let _ = std::fs::remove_dir_all(&dir);
        let err = err.expect("a stale socket refuses");
        assert!(err.starts_with("stale control socket "), "{err}");
        assert!(err.contains(&format!("`rm {}`", path.display())), "{err}");
        assert!(
            err.contains("restart the server with `berth serve --tun bt9 "),
            "{err}"
        );
        let missing = missing.expect("no socket file");
        assert!(missing.starts_with("no berth server at "), "{missing}");
    }

    fn row6(state: &'static str, local: &str, peer: Option<&str>) -> SocketInfo {
        let sa = |s: &str| s.parse::<std::net::SocketAddr>().expect("test address");
        SocketInfo {
            handle: SocketHandle::from_raw(2, 0),
            kind: SocketKind::Tcp,
            state,
            recv_q: 0,
            send_q: 0,
            local: sa(local),
            peer: peer.map(sa),
            drops: 0,
            tcp: None,
            mem: SkMem::default(),
        }
    }

    /// IPv6 rows as iproute2 prints them: bracketed addresses; the wildcard of
    /// a dual-stack socket (berth's default, as Linux's) and port 0 as `*`.
    #[test]
    fn ipv6_rows_like_iproute2() {
        let rows = vec![
            row6("LISTEN", "[::]:7", None),
            row6("ESTAB", "[2001:db8::2]:7", Some("[2001:db8::1]:50000")),
            row6("CLOSE", "[::]:0", None),
        ];
        let t = table(&rows);
        let lines: Vec<&str> = t.lines().collect();
        assert_eq!(lines.len(), 4, "{t}");
        assert!(lines[1].contains(" *:7 "), "{t}");
        assert!(lines[1].trim_end().ends_with(" *:*"), "{t}");
        assert!(lines[2].contains(" [2001:db8::2]:7 "), "{t}");
        assert!(lines[2].trim_end().ends_with(" [2001:db8::1]:50000"), "{t}");
        assert!(lines[3].contains(" *:* "), "{t}");
        let r = Row::from_info(&rows[1]);
        assert!(r.is_ipv6());
        assert_eq!(r.local, "[2001:db8::2]:7");
        // The row survives the control protocol's JSON unchanged.
        assert_eq!(Row::from_json(&Row::json_v6only(&rows[1], false)), Some(r));
    }

    /// A V6ONLY listener is `[::]:7` with peer `[::]:*`; a dual-stack one
    /// `*:8` with `*:*`, as iproute2 shows them (v6only read from the core).
    #[test]
    fn v6only_sockets_show_bracketed_wildcards() {
        let mut core = berth_core::Stack::new(berth_core::Config::default());
        let any = |p: u16| std::net::SocketAddr::from((std::net::Ipv6Addr::UNSPECIFIED, p));
        let only = core.tcp_socket_v6();
        core.tcp_set_only_v6(only, true).unwrap();
        core.tcp_bind(only, any(7)).unwrap();
        core.tcp_listen(only, 8).unwrap();
        let dual = core.tcp_socket_v6();
        core.tcp_bind(dual, any(8)).unwrap();
        core.tcp_listen(dual, 8).unwrap();
        let u = core.udp_socket_v6();
        core.udp_set_only_v6(u, true).unwrap();
        core.udp_bind(u, any(9)).unwrap();
        let rows = core.sockets();
        let t = table_of(&mut core, &rows);
        let line = |port: &str| {
            t.lines()
                .find(|l| l.contains(port))
                .unwrap_or_else(|| panic!("{port} in {t}"))
                .trim_end()
                .to_string()
        };
        assert!(line("]:7 ").ends_with(" [::]:*"), "{t}");
        assert!(line("[::]:7 ").starts_with("tcp   LISTEN"), "{t}");
        assert!(line(" *:8 ").ends_with(" *:*"), "{t}");
        assert!(line("[::]:9 ").starts_with("udp   UNCONN"), "{t}");
        assert!(line("[::]:9 ").ends_with(" [::]:*"), "{t}");
    }

    #[test]
    fn address_text_follows_iproute2_inet_addr_print() {
        let sa = |s: &str| s.parse::<std::net::SocketAddr>().expect("test address");
        // A dual-stack (not V6ONLY) wildcard is "*", a V6ONLY one "[::]".
        assert_eq!(addr_text(sa("[::]:80"), false), "*:80");
        assert_eq!(addr_text(sa("[::]:80"), true), "[::]:80");
        assert_eq!(no_peer(sa("[::]:80"), false), "*:*");
        assert_eq!(no_peer(sa("[::]:80"), true), "[::]:*");
        assert_eq!(addr_text(sa("[fe80::1]:0"), true), "[fe80::1]:*");
        assert_eq!(
            addr_text(sa("[::ffff:192.0.2.1]:7"), false),
            "[::ffff:192.0.2.1]:7"
        );
        // IPv4 is unchanged, port 0 included.
        assert_eq!(addr_text(sa("192.0.2.2:7"), false), "192.0.2.2:7");
        assert_eq!(addr_text(sa("0.0.0.0:0"), true), "0.0.0.0:0");
        assert_eq!(no_peer(sa("0.0.0.0:7"), true), "0.0.0.0:*");
        assert!(!Row::from_info(&row6("LISTEN", "0.0.0.0:7", None)).is_ipv6());
    }

    #[test]
    fn tcp_info_line_like_ss_i() {
        let info = TcpInfo {
            rtt_us: 1200,
            rttvar_us: 300,
            rto_us: 204_000,
            snd_cwnd_bytes: 14480,
            ssthresh: Some(28960),
            snd_mss: 1448,
            pmtu: 1500,
            rcv_mss: 1448,
            bytes_sent: 100,
            bytes_acked: 90,
            bytes_received: 5,
            total_retrans: 3,
            snd_wnd: 65535,
            rcv_wnd: 262144,
            window_scaling: true,
            snd_wscale: 7,
            rcv_wscale: 7,
            timestamps: true,
            congestion: "cubic",
            ..TcpInfo::default()
        };
        let l = tcp_info(&info);
        assert!(
            l.starts_with("ts cubic wscale:7,7 rto:204 rtt:1.2/0.3 mss:1448 pmtu:1500 rcvmss:1448"),
            "{l}"
        );
        assert!(l.contains(" cwnd:10 ssthresh:20 bytes_sent:100 bytes_acked:90"));
        assert!(l.contains(" retrans:0/3 snd_wnd:65535 rcv_wnd:262144"));
        // iproute2's order: ts, sack, then the congestion-control name.
        let with_sack = tcp_info(&TcpInfo { sack: true, ..info });
        assert!(
            with_sack.starts_with("ts sack cubic wscale:7,7"),
            "{with_sack}"
        );
        let mut row = SocketInfo {
            handle: SocketHandle::from_raw(0, 0),
            kind: SocketKind::Tcp,
            state: "ESTAB",
            recv_q: 0,
            send_q: 0,
            local: SocketAddrV4::new(Ipv4Addr::new(192, 0, 2, 1), 50000).into(),
            peer: Some(SocketAddrV4::new(Ipv4Addr::new(192, 0, 2, 2), 80).into()),
            drops: 0,
            tcp: Some(info),
            mem: SkMem::default(),
        };
        let t = table(std::slice::from_ref(&row));
        assert_eq!(t.lines().count(), 3);
        assert!(t.lines().nth(2).unwrap().starts_with("\t ts cubic wscale"));
        row.tcp = None;
        assert_eq!(table(&[row]).lines().count(), 2);
    }

    #[test]
    fn summary_counts_half_open_connections() {
        let row = |state: &str| Row {
            netid: "tcp".into(),
            state: state.into(),
            recv_q: 0,
            send_q: 0,
            local: "192.0.2.2:80".into(),
            peer: "192.0.2.1:40000".into(),
            info: None,
            skmem: None,
            tcp: None,
            owner: None,
        };
        let rows = [
            row("LISTEN"),
            row("SYN-RECV"),
            row("SYN-RECV"),
            row("ESTAB"),
        ];
        let s = summary::summary(&rows, &serde_json::Value::Null, None);
        // iproute2's lines; the half-open connections are not sockets yet,
        // and berth counts them on a line of its own.
        assert!(
            s.starts_with(
                "Total: 2\nTCP:   2 (estab 1, closed 0, orphaned 0, timewait 0)\n\n\
                 Transport Total     IP        IPv6\n"
            ),
            "{s}"
        );
        assert!(
            s.contains("\nTCP\t  2         2         0        \n"),
            "{s}"
        );
        assert!(
            s.contains("\nINET\t  2         2         0        \n"),
            "{s}"
        );
        assert!(s.contains("TCP queues: listen 1, synrecv 2 "), "{s}");
    }

    #[test]
    fn skmem_line_under_each_socket_as_iproute2() {
        let mut row = SocketInfo {
            handle: SocketHandle::from_raw(0, 0),
            kind: SocketKind::Tcp,
            state: "ESTAB",
            recv_q: 10,
            send_q: 0,
            local: SocketAddrV4::new(Ipv4Addr::new(192, 0, 2, 2), 80).into(),
            peer: Some(SocketAddrV4::new(Ipv4Addr::new(192, 0, 2, 1), 40000).into()),
            drops: 3,
            tcp: Some(TcpInfo {
                congestion: "cubic",
                snd_mss: 1448,
                ..TcpInfo::default()
            }),
            mem: SkMem {
                rmem_alloc: 10,
                rcvbuf: 131_072,
                sndbuf: 87_040,
                drops: 3,
                ..SkMem::default()
            },
        };
        // Through the control protocol and back.
        let back = Row::from_json(&Row::json_v6only(&row, false)).unwrap();
        let t = table_rows(std::slice::from_ref(&back), false, true);
        assert_eq!(
            t.lines().nth(2),
            Some("\t skmem:(r10,rb131072,t0,tb87040,f0,w0,o0,bl0,d3)")
        );
        // With -i too: skmem first, then tcp_info, on one line.
        let t = table_rows(&[back], true, true);
        assert!(
            t.lines().nth(2).unwrap().starts_with("\t skmem:(r10,")
                && t.contains(") cubic mss:1448"),
            "{t}"
        );
        // Without -m, no skmem.
        row.tcp = None;
        assert_eq!(
            table_rows(&[Row::from_info(&row)], true, false)
                .lines()
                .count(),
            2
        );
    }

    #[test]
    fn summary_shows_memory_and_pressure() {
        let mut m = MemoryUsage {
            tcp_bytes: 2_000_000,
            tcp_pages: 489,
            tcp_peak: 2_097_152,
            tcp_limits: berth_core::MemLimits::new(256, 384, 512).unwrap(),
            tcp_pressure: true,
            udp_bytes: 5000,
            udp_pages: 2,
            udp_peak: 5000,
            udp_limits: berth_core::MemLimits::UDP_DEFAULT,
            udp_pressure: false,
            frag_bytes: 0,
            frag_limit: 4 << 20,
            frag_pending: 3,
            frag6_pending: 1,
        };
        let s = summary::summary(&[], &serde_json::Value::Null, Some(&memory_json(&m)));
        assert!(
            s.contains("SYN queues)\nMemory (pages of 4096 bytes"),
            "{s}"
        );
        assert!(
            s.contains("\nFRAG\t  3         2         1        \n"),
            "{s}"
        );
        assert!(
            s.contains(
                "  TCP: mem 489 (2000000 bytes, peak 2097152) tcp_mem 256 384 512 pressure yes"
            ),
            "{s}"
        );
        assert!(s.contains("  UDP: mem 2 (5000 bytes, peak 5000) udp_mem 24576 32768 49152"));
        assert!(s.contains("  FRAG: inuse 3 memory 0 (limit 4194304)"));
        m.tcp_pressure = false;
        let s = summary::summary(&[], &serde_json::Value::Null, Some(&memory_json(&m)));
        assert!(s.contains("pressure no"));
        // An old server: no memory block, the rest unchanged.
        let s = summary::summary(&[], &serde_json::Value::Null, None);
        assert!(s.ends_with("SYN queues)\n\n"), "{s:?}");
    }

    #[test]
    fn only_non_zero_counters() {
        let mut s = Stats::default();
        assert_eq!(counters(&s), "");
        s.udp_no_ports = 2;
        let c = counters(&s);
        assert_eq!(c.lines().count(), 1);
        assert!(c.contains("udp_no_ports"));
        assert!(c.contains(" 2 "));
    }
}
