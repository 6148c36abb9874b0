//! `berth sim transfer --trace / --plot`: each connection's sampled tcp_info
//! (`ConnReport::trace`) as CSV, and as an SVG chart of stacked panels sharing
//! the time axis: goodput, cwnd and ssthresh with the loss events, smoothed RTT.

use berth::sim::workload::{trace_events, ConnReport, TraceEventKind, TraceSample};
use plotters::coord::types::RangedCoordf64;
use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};
use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// The CSV header; one row per sample follows.
pub const CSV_HEADER: &str = "conn,t_s,bytes_acked,goodput_mbps,cwnd_bytes,ssthresh_bytes,\
srtt_ms,total_retrans,rto_events,recoveries,pacing_rate,rcv_buf,snd_wnd";

/// An output file, created before the run so that a bad path fails at once
/// instead of after a long simulation.
pub struct OutFile {
    path: PathBuf,
    what: &'static str,
    file: File,
}

impl OutFile {
    pub fn create(path: &Path, what: &'static str) -> io::Result<OutFile> {
        let file = File::create(path).map_err(|e| {
            io::Error::new(
                e.kind(),
                format!("cannot write {what} {}: {e}", path.display()),
            )
        })?;
        Ok(OutFile {
            path: path.to_path_buf(),
            what,
            file,
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    fn error(&self, e: impl std::fmt::Display) -> io::Error {
        io::Error::other(format!(
            "cannot write {} {}: {e}",
            self.what,
            self.path.display()
        ))
    }

    fn write_all(self, bytes: &[u8]) -> io::Result<()> {
        let mut w = BufWriter::new(&self.file);
        w.write_all(bytes)
            .and_then(|()| w.flush())
            .map_err(|e| self.error(e))
    }
}

/// The samples of every connection as CSV: `conn` numbers from 1 as in the
/// table, times in seconds, goodput in Mbit/s, RTT in milliseconds, windows and
/// buffers in bytes, pacing rate in bytes per second; `ssthresh_bytes` is empty
/// while ssthresh is unset (infinite).
pub fn csv(w: &mut impl Write, conns: &[ConnReport]) -> io::Result<()> {
    writeln!(w, "{CSV_HEADER}")?;
    for (i, c) in conns.iter().enumerate() {
        for s in &c.trace {
            let ssthresh = s.ssthresh.map(|v| v.to_string()).unwrap_or_default();
            writeln!(
                w,
                "{},{:.6},{},{:.3},{},{},{:.3},{},{},{},{},{},{}",
                i + 1,
                s.t.as_secs_f64(),
                s.bytes_acked,
                s.goodput_bps / 1e6,
                s.cwnd,
                ssthresh,
                s.srtt_us as f64 / 1e3,
                s.total_retrans,
                s.rto_events,
                s.recoveries,
                s.pacing_rate,
                s.rcv_buf,
                s.snd_wnd
            )?;
        }
    }
    Ok(())
}

pub fn write_csv(out: OutFile, conns: &[ConnReport]) -> io::Result<()> {
    let mut w = BufWriter::new(&out.file);
    csv(&mut w, conns)
        .and_then(|()| w.flush())
        .map_err(|e| out.error(e))
}

pub fn write_svg(
    out: OutFile,
    conns: &[ConnReport],
    title: &str,
    subtitle: &str,
) -> io::Result<()> {
    let svg = svg(conns, title, subtitle).map_err(|e| out.error(e))?;
    out.write_all(svg.as_bytes())
}

const WIDTH: u32 = 1200;
const HEADER: u32 = 64;
const PANEL: u32 = 320;
/// Right-hand column with each panel's legend, outside the plot so it hides nothing.
const LEGEND: u32 = 230;
/// Points per line at most; longer traces keep each bucket's min and max.
const MAX_POINTS: usize = 4000;
/// Connections named in the legend; the rest are summed up in one line.
const LEGEND_CONNS: usize = 10;
const FONT: &str = "sans-serif";

/// Tableau 10: distinct colours, one per connection (cycled past ten).
const PALETTE: [RGBColor; 10] = [
    RGBColor(31, 119, 180),
    RGBColor(255, 127, 14),
    RGBColor(44, 160, 44),
    RGBColor(214, 39, 40),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
    RGBColor(227, 119, 194),
    RGBColor(127, 127, 127),
    RGBColor(188, 189, 34),
    RGBColor(23, 190, 207),
];

fn colour(i: usize) -> RGBColor {
    PALETTE[i % PALETTE.len()]
}

/// Kinds of legend entries drawn in the right-hand column.
enum Key {
    Line(RGBColor),
    Dashed(RGBColor),
    Triangle,
    Cross,
    Dot,
    /// A line of text on its own.
    Text,
    /// A second line for the entry above, aligned with its text.
    Note,
}

/// An SVG chart of the traces: goodput (Mbit/s), cwnd and ssthresh (KiB) with
/// loss recoveries, RTOs and retransmissions marked, and smoothed RTT (ms).
pub fn svg(conns: &[ConnReport], title: &str, subtitle: &str) -> Result<String, String> {
    let mut buf = String::new();
    {
        let height = HEADER + 3 * PANEL;
        let root = SVGBackend::with_string(&mut buf, (WIDTH, height)).into_drawing_area();
        draw_inner(&root, conns, title, subtitle).map_err(|e| e.to_string())?;
        root.present().map_err(|e| e.to_string())?;
    }
    Ok(buf)
}

fn draw_inner<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    conns: &[ConnReport],
    title: &str,
    subtitle: &str,
) -> Result<(), DrawingAreaErrorKind<DB::ErrorType>> {
    root.fill(&WHITE)?;
    let (header, body) = root.split_vertically(HEADER);
    header.draw(&Text::new(
        title.to_string(),
        (16, 10),
        (FONT, 20).into_font().color(&BLACK),
    ))?;
    header.draw(&Text::new(
        subtitle.to_string(),
        (16, 38),
        (FONT, 14).into_font().color(&RGBColor(80, 80, 80)),
    ))?;
    let panels = body.split_evenly((3, 1));
    let t_max = conns
        .iter()
        .filter_map(|c| c.trace.last())
        .map(|s| s.t.as_secs_f64())
        .fold(0.0, f64::max)
        .max(1e-3);
    let secs = |s: &TraceSample| s.t.as_secs_f64();
    let kib = |v: usize| v as f64 / 1024.0;

    // Connections in the legend of the first panel.
    let mut conn_keys: Vec<(Key, String)> = conns
        .iter()
        .enumerate()
        .take(LEGEND_CONNS)
        .map(|(i, c)| {
            (
                Key::Line(colour(i)),
                format!("conn {} (port {})", i + 1, c.local_port),
            )
        })
        .collect();
    if conns.len() > LEGEND_CONNS {
        conn_keys.push((
            Key::Text,
            format!("+{} more connections", conns.len() - LEGEND_CONNS),
        ));
    }

    // 1: goodput. Acknowledgments come a round trip's worth at a time, so at
    // intervals below the RTT the rate per interval swings between zero and
    // bursts: plotted is the mean over a window of about one (median) RTT.
    let step = conns
        .iter()
        .find_map(|c| c.trace.get(1).map(|s| s.t))
        .unwrap_or_default();
    let window = window_samples(conns, step);
    let lines: Vec<Vec<(f64, f64)>> = conns
        .iter()
        .map(|c| windowed_goodput(&c.trace, window))
        .collect();
    let goodput_desc = format!(
        "goodput (Mbit/s, mean over {})",
        fmt_ms(step * window as u32)
    );
    panel(
        &panels[0],
        t_max,
        &goodput_desc,
        false,
        &conn_keys,
        max_y(lines.iter().flatten().map(|p| p.1)),
        |chart| {
            for (i, l) in lines.iter().enumerate() {
                chart.draw_series(LineSeries::new(thin(l), colour(i).stroke_width(2)))?;
            }
            Ok(())
        },
    )?;

    // 2: cwnd and ssthresh, with the events on the cwnd line.
    let cwnd: Vec<Vec<(f64, f64)>> = conns
        .iter()
        .map(|c| c.trace.iter().map(|s| (secs(s), kib(s.cwnd))).collect())
        .collect();
    let ssthresh: Vec<Vec<Vec<(f64, f64)>>> = conns
        .iter()
        .map(|c| runs(&c.trace, |s| s.ssthresh.map(kib)))
        .collect();
    let cwnd_max = max_y(cwnd.iter().flatten().map(|p| p.1));
    // An ssthresh far above every cwnd (an initial huge value) would flatten the
    // cwnd lines: such stretches are cut off at the top.
    let ss_max = max_y(ssthresh.iter().flatten().flatten().map(|p| p.1));
    let y2 = ss_max.min(2.0 * cwnd_max).max(cwnd_max);
    let rug = y2 * 1.1 * 0.03;
    let count = |kind| -> u64 {
        conns
            .iter()
            .flat_map(|c| trace_events(&c.trace))
            .filter(|e| e.kind == kind)
            .map(|e| e.count)
            .sum()
    };
    let mut keys2: Vec<(Key, String)> = vec![
        (Key::Line(RGBColor(60, 60, 60)), "cwnd".into()),
        (Key::Dashed(RGBColor(60, 60, 60)), "ssthresh".into()),
        (
            Key::Triangle,
            format!(
                "loss recovery entered ({})",
                count(TraceEventKind::Recovery)
            ),
        ),
        (
            Key::Cross,
            format!("retransmission timeout ({})", count(TraceEventKind::Rto)),
        ),
        (
            Key::Dot,
            format!(
                "retransmitted segments ({})",
                count(TraceEventKind::Retransmit)
            ),
        ),
        (Key::Note, "(dots along the bottom)".into()),
    ];
    if conns.len() > 1 {
        keys2.push((Key::Text, "colours: connections, as above".into()));
    }
    panel(
        &panels[1],
        t_max,
        "cwnd, ssthresh (KiB)",
        false,
        &keys2,
        y2,
        |chart| {
            let top = y2 * 1.1;
            for (i, c) in conns.iter().enumerate() {
                let col = colour(i);
                chart.draw_series(LineSeries::new(thin(&cwnd[i]), col.stroke_width(2)))?;
                for run in &ssthresh[i] {
                    let clipped: Vec<(f64, f64)> =
                        run.iter().map(|&(x, y)| (x, y.min(top))).collect();
                    chart.draw_series(DashedLineSeries::new(
                        thin(&clipped),
                        6,
                        4,
                        col.stroke_width(1),
                    ))?;
                }
                // Marks sit where the window was before it fell: at the top of the drop.
                let at = |t: Duration| {
                    let k = c.trace.iter().position(|s| s.t == t).unwrap_or(0);
                    let before = c.trace[k.saturating_sub(1)..=k].iter();
                    before.map(|s| kib(s.cwnd)).fold(0.0, f64::max)
                };
                let events = trace_events(&c.trace);
                chart.draw_series(
                    events
                        .iter()
                        .filter(|e| e.kind == TraceEventKind::Retransmit)
                        .map(|e| Circle::new((e.t.as_secs_f64(), rug), 3, col.filled())),
                )?;
                chart.draw_series(
                    events
                        .iter()
                        .filter(|e| e.kind == TraceEventKind::Recovery)
                        .map(|e| {
                            TriangleMarker::new((e.t.as_secs_f64(), at(e.t)), 6, col.filled())
                        }),
                )?;
                chart.draw_series(
                    events
                        .iter()
                        .filter(|e| e.kind == TraceEventKind::Rto)
                        .map(|e| Cross::new((e.t.as_secs_f64(), at(e.t)), 6, col.stroke_width(2))),
                )?;
            }
            Ok(())
        },
    )?;

    // 3: smoothed RTT (absent until the first measurement).
    let rtt: Vec<Vec<Vec<(f64, f64)>>> = conns
        .iter()
        .map(|c| {
            runs(&c.trace, |s| {
                (s.srtt_us > 0).then(|| s.srtt_us as f64 / 1e3)
            })
        })
        .collect();
    panel(
        &panels[2],
        t_max,
        "smoothed RTT (ms)",
        true,
        &[],
        max_y(rtt.iter().flatten().flatten().map(|p| p.1)),
        |chart| {
            for (i, r) in rtt.iter().enumerate() {
                for run in r {
                    chart.draw_series(LineSeries::new(thin(run), colour(i).stroke_width(2)))?;
                }
            }
            Ok(())
        },
    )?;
    Ok(())
}

type Chart<'a, DB> = ChartContext<'a, DB, Cartesian2d<RangedCoordf64, RangedCoordf64>>;

/// One panel: a chart over [0, t_max] x [0, 1.1 y_max] on the left, its legend
/// in the column on the right.
fn panel<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    t_max: f64,
    y_desc: &str,
    bottom: bool,
    keys: &[(Key, String)],
    y_max: f64,
    plot: impl FnOnce(&mut Chart<'_, DB>) -> Result<(), DrawingAreaErrorKind<DB::ErrorType>>,
) -> Result<(), DrawingAreaErrorKind<DB::ErrorType>> {
    let (left, right) = area.split_horizontally(WIDTH - LEGEND);
    let mut chart = ChartBuilder::on(&left)
        .margin_top(8)
        .margin_left(8)
        .margin_right(16)
        .margin_bottom(4)
        .x_label_area_size(if bottom { 48 } else { 26 })
        .y_label_area_size(78)
        .build_cartesian_2d(0.0..t_max, 0.0..y_max * 1.1)?;
    let mut mesh = chart.configure_mesh();
    mesh.y_desc(y_desc)
        .label_style((FONT, 13))
        .axis_desc_style((FONT, 15))
        .light_line_style(RGBColor(238, 238, 238))
        .bold_line_style(RGBColor(215, 215, 215));
    if bottom {
        mesh.x_desc("virtual time since the transfer started (s)");
    }
    mesh.draw()?;
    plot(&mut chart)?;
    legend(&right, keys)
}

fn legend<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    keys: &[(Key, String)],
) -> Result<(), DrawingAreaErrorKind<DB::ErrorType>> {
    let black = RGBColor(60, 60, 60);
    for (k, (key, label)) in keys.iter().enumerate() {
        let y = match key {
            Key::Note => 16 + 22 * k as i32 - 6,
            _ => 16 + 22 * k as i32,
        };
        let (x0, x1) = (6, 34);
        match key {
            Key::Line(c) => {
                area.draw(&PathElement::new(vec![(x0, y), (x1, y)], c.stroke_width(2)))?
            }
            Key::Dashed(c) => {
                for x in [x0, x0 + 11, x0 + 22] {
                    area.draw(&PathElement::new(
                        vec![(x, y), (x + 6, y)],
                        c.stroke_width(1),
                    ))?;
                }
            }
            Key::Triangle => area.draw(&TriangleMarker::new((20, y), 6, black.filled()))?,
            Key::Cross => area.draw(&Cross::new((20, y), 6, black.stroke_width(2)))?,
            Key::Dot => area.draw(&Circle::new((20, y), 3, black.filled()))?,
            Key::Text | Key::Note => {}
        }
        let x = if matches!(key, Key::Text) { x0 } else { x1 + 8 };
        area.draw(&Text::new(
            label.clone(),
            (x, y),
            (FONT, 13)
                .into_font()
                .color(&BLACK)
                .pos(Pos::new(HPos::Left, VPos::Center)),
        ))?;
    }
    Ok(())
}

/// Samples per goodput window: about the median smoothed RTT over all
/// connections, at least one.
fn window_samples(conns: &[ConnReport], step: Duration) -> usize {
    let mut rtts: Vec<u64> = conns
        .iter()
        .flat_map(|c| c.trace.iter().map(|s| s.srtt_us))
        .filter(|&r| r > 0)
        .collect();
    if rtts.is_empty() || step.is_zero() {
        return 1;
    }
    rtts.sort_unstable();
    let median = rtts[rtts.len() / 2];
    (median as f64 / step.as_micros() as f64).round().max(1.0) as usize
}

/// Goodput at each sample over a window of `m` samples around it (from the
/// bytes acknowledged at its ends), in Mbit/s.
fn windowed_goodput(trace: &[TraceSample], m: usize) -> Vec<(f64, f64)> {
    let last = trace.len().saturating_sub(1);
    (0..trace.len())
        .map(|k| {
            let (i0, i1) = if m <= 1 {
                (k.saturating_sub(1), k)
            } else {
                let i0 = k.saturating_sub(m / 2);
                (i0, (i0 + m).min(last))
            };
            let (a, b) = (&trace[i0], &trace[i1]);
            let secs = b.t.saturating_sub(a.t).as_secs_f64();
            let bits = b.bytes_acked.saturating_sub(a.bytes_acked) as f64 * 8.0;
            let v = if secs > 0.0 { bits / secs / 1e6 } else { 0.0 };
            (trace[k].t.as_secs_f64(), v)
        })
        .collect()
}

pub fn fmt_ms(d: Duration) -> String {
    let ms = d.as_secs_f64() * 1e3;
    if ms >= 100.0 || ms == ms.trunc() {
        format!("{ms:.0} ms")
    } else {
        format!("{ms:.2} ms")
    }
}

/// The largest value, or 1 when there is nothing above zero (an empty chart
/// still gets an axis).
fn max_y(values: impl Iterator<Item = f64>) -> f64 {
    let m = values.fold(0.0, f64::max);
    if m > 0.0 {
        m
    } else {
        1.0
    }
}

/// The stretches of a trace where `f` has a value, as separate lines.
fn runs(trace: &[TraceSample], f: impl Fn(&TraceSample) -> Option<f64>) -> Vec<Vec<(f64, f64)>> {
    let mut out: Vec<Vec<(f64, f64)>> = Vec::new();
    let mut cur = Vec::new();
    for s in trace {
        match f(s) {
            Some(v) => cur.push((s.t.as_secs_f64(), v)),
            None if !cur.is_empty() => out.push(std::mem::take(&mut cur)),
            None => {}
        }
    }
    if !cur.is_empty() {
        out.push(cur);
    }
    out
}

/// At most about `MAX_POINTS` points: consecutive buckets keep their lowest and
/// highest point in time order, so spikes survive.
fn thin(points: &[(f64, f64)]) -> Vec<(f64, f64)> {
    if points.len() <= MAX_POINTS {
        return points.to_vec();
    }
    let bucket = points.len().div_ceil(MAX_POINTS / 2);
    let mut out = Vec::with_capacity(MAX_POINTS + 2);
    for b in points.chunks(bucket) {
        let lo = b
            .iter()
            .enumerate()
            .min_by(|x, y| x.1 .1.total_cmp(&y.1 .1));
        let hi = b
            .iter()
            .enumerate()
            .max_by(|x, y| x.1 .1.total_cmp(&y.1 .1));
        if let (Some((i, &l)), Some((j, &h))) = (lo, hi) {
            match i.cmp(&j) {
                std::cmp::Ordering::Less => out.extend([l, h]),
                std::cmp::Ordering::Greater => out.extend([h, l]),
                std::cmp::Ordering::Equal => out.push(l),
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thinning_keeps_extremes_in_order() {
        let pts: Vec<(f64, f64)> = (0..100_000)
            .map(|i| (i as f64, if i == 54_321 { 99.0 } else { (i % 7) as f64 }))
            .collect();
        let t = thin(&pts);
        assert!(t.len() <= MAX_POINTS + 2, "{}", t.len());
        assert!(t.contains(&(54_321.0, 99.0)));
        assert!(t.windows(2).all(|w| w[0].0 < w[1].0));
        assert_eq!(thin(&pts[..10]), pts[..10].to_vec());
    }

    /// A made-up trace of two connections: a sawtooth with recoveries every
    /// 100 ms and one RTO in connection 2.
    fn synthetic() -> Vec<ConnReport> {
        let mut hosts = berth::sim::TwoHosts::new(1, Default::default()).expect("hosts");
        let client = hosts.sim.node_mut(hosts.a).tcp_socket();
        (0..2u64)
            .map(|c| {
                let trace: Vec<TraceSample> = (0..200u64)
                    .map(|k| {
                        let cycle = k % 10;
                        let rto = u64::from(c == 1 && k >= 150);
                        TraceSample {
                            t: Duration::from_millis(10 * k),
                            bytes_acked: k * 10_000 * (c + 1),
                            goodput_bps: 8e6 * (c + 1) as f64,
                            cwnd: if c == 1 && k == 150 {
                                1448
                            } else {
                                20_000 + 4_000 * cycle as usize
                            },
                            ssthresh: (k >= 10).then_some(30_000),
                            srtt_us: 20_000 + 500 * cycle + 3_000 * c,
                            total_retrans: k / 10 + rto,
                            rto_events: rto,
                            recoveries: k / 10,
                            pacing_rate: 0,
                            rcv_buf: 262_144,
                            snd_wnd: 262_144,
                        }
                    })
                    .collect();
                ConnReport {
                    client,
                    local_port: 40_000 + c as u16,
                    bytes_sent: 0,
                    bytes_received: 0,
                    sha_sent: [0; 32],
                    sha_received: [0; 32],
                    retransmits: 0,
                    duration: Duration::ZERO,
                    complete: true,
                    error: None,
                    trace,
                }
            })
            .collect()
    }

    /// (BERTH_SYNTHETIC_SVG=FILE keeps the chart, to look at.)
    #[test]
    fn svg_marks_every_event() {
        let conns = synthetic();
        let svg = svg(&conns, "title <&>", "subtitle").expect("svg");
        if let Ok(p) = std::env::var("BERTH_SYNTHETIC_SVG") {
            std::fs::write(p, &svg).expect("write");
        }
        assert!(svg.starts_with("<svg "));
        // 19 + 19 recoveries and one RTO, plus one of each in the legend.
        assert_eq!(svg.matches("<polygon").count(), 19 + 19 + 1);
        assert!(svg.contains("loss recovery entered (38)"));
        assert!(svg.contains("retransmission timeout (1)"));
        assert!(svg.contains("retransmitted segments (39)"));
        assert!(svg.contains("conn 2 (port 40001)"));
        assert!(svg.contains("colours: connections"));
        // Goodput windows one median RTT: 20 ms here, two samples.
        assert!(svg.contains("goodput (Mbit/s, mean over 20 ms)"), "{svg}");
    }

    #[test]
    fn csv_rows_follow_the_header() {
        let mut out = Vec::new();
        csv(&mut out, &synthetic()).expect("csv");
        let text = String::from_utf8(out).expect("utf-8");
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines[0], CSV_HEADER);
        assert_eq!(lines.len(), 1 + 400);
        assert_eq!(
            lines[1],
            "1,0.000000,0,8.000,20000,,20.000,0,0,0,0,262144,262144"
        );
        assert_eq!(
            lines[12],
            "1,0.110000,110000,8.000,24000,30000,20.500,1,0,1,0,262144,262144"
        );
        assert!(lines[201].starts_with("2,0.000000,"));
    }

    #[test]
    fn runs_split_at_gaps() {
        let s = |ms: u64, ss: Option<usize>| TraceSample {
            t: Duration::from_millis(ms),
            bytes_acked: 0,
            goodput_bps: 0.0,
            cwnd: 0,
            ssthresh: ss,
            srtt_us: 0,
            total_retrans: 0,
            rto_events: 0,
            recoveries: 0,
            pacing_rate: 0,
            rcv_buf: 0,
            snd_wnd: 0,
        };
        let tr = [
            s(0, None),
            s(1, Some(1024)),
            s(2, Some(2048)),
            s(3, None),
            s(4, Some(1024)),
        ];
        let r = runs(&tr, |x| x.ssthresh.map(|v| v as f64));
        assert_eq!(
            r,
            vec![
                vec![(0.001, 1024.0), (0.002, 2048.0)],
                vec![(0.004, 1024.0)]
            ]
        );
    }
}
