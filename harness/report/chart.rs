//! SVG charts shared by the run report and the comparison page: the timeline
//! (outcomes, latency, versions and reload steps per window) and latency by
//! percentile (HdrHistogram style), with their axes, colours and legends; and a
//! strip on the timeline's axis marking when websockets ended.
//!
//! Charts are inline SVG strings, 1200 units wide with the same margins, so charts
//! stacked on one page share their x axis pixel for pixel. Every piece of text that
//! comes from outside goes through [`escape`]; hovering a bar or a point shows its
//! numbers (SVG `<title>` tooltips).

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write;

use super::html::escape;
use super::RunReport;
use crate::stats::CurvePoint;
use crate::stats::{RunStats, VersionSeen, WindowRow};
use crate::steps::StepEvent;
use crate::websocket::{End, WsReport};

/// One horizontal grid line across the plot at `y`, labelled `v` on the left axis.
fn grid_line(s: &mut String, y: f64, pw: f64, v: f64) {
    let _ = writeln!(
        s,
        "<line class=\"grid\" x1=\"{ML}\" x2=\"{:.1}\" y1=\"{y:.1}\" y2=\"{y:.1}\"/><text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"end\">{}</text>",
        ML + pw,
        ML - 6.0,
        y + 4.0,
        num(v)
    );
}

/// Colour of the ok bars.
pub const OK_COLOUR: &str = "#59a14f";

/// Colour of an outcome key (`ok`, `connect_refused`, `http_502`, ...): fixed per
/// key, so the same failure looks the same in every run and chart.
pub fn outcome_colour(key: &str) -> &'static str {
    match key {
        "ok" => OK_COLOUR,
        "connect_refused" => "#e15759",
        "connect_missing" => "#f28e2b",
        "connect_again" => "#c9a100",
        "connect_timeout" => "#9c755f",
        "connect_other" => "#7b4f2c",
        "tls_handshake" => "#2f6b8f",
        "tls_cert_rejected" => "#1b3a5c",
        "reset_fresh" => "#b6257a",
        "reset_reused" => "#ff9da7",
        "truncated" => "#d37295",
        "protocol_error" => "#555555",
        "oversize" => "#4e79a7",
        "timeout" => "#7f3c8d",
        "hung" => "#333333",
        "bad_body" => "#a0a0a0",
        k if k.starts_with("http_4") => "#edc948",
        "http_502" => "#8b0000",
        "http_503" => "#c0392b",
        "http_504" => "#6b2a2a",
        k if k.starts_with("http_5") => "#a52a2a",
        _ => "#17becf",
    }
}

/// Colour of the `i`-th version to serve.
pub fn version_colour(i: usize) -> &'static str {
    VERSION_COLOURS[i % VERSION_COLOURS.len()]
}

/// Colours of the versions, in deploy order (then repeating).
const VERSION_COLOURS: [&str; 6] = [
    "#4e79a7", "#b07aa1", "#76b7b2", "#9c755f", "#edc948", "#bab0ac",
];

/// Colour of a phase's line in the percentile chart.
pub fn phase_colour(name: &str) -> &'static str {
    match name {
        "before" => "#4e79a7",
        "during" => "#e15759",
        "after" => "#59a14f",
        _ => "#333333",
    }
}

const P50_COLOUR: &str = "#1b2a49";
const P99_COLOUR: &str = "#d62728";
const STEP_COLOUR: &str = "#5a5a5a";
const ORIGIN_COLOUR: &str = "#1f5fa8";

/// A "nice" step (1, 2 or 5 times a power of ten) for about `n` ticks up to `max`.
pub fn nice_step(max: f64, n: f64) -> f64 {
    if !(max > 0.0 && max.is_finite()) {
        return 1.0;
    }
    let raw = max / n;
    let mag = 10f64.powf(raw.log10().floor());
    let f = raw / mag;
    let nice = if f <= 1.0 {
        1.0
    } else if f <= 2.0 {
        2.0
    } else if f <= 5.0 {
        5.0
    } else {
        10.0
    };
    nice * mag
}

/// A number for an axis label: no trailing zeros, at most 3 decimals.
pub fn num(v: f64) -> String {
    let s = format!("{:.3}", v);
    let s = s.trim_end_matches('0').trim_end_matches('.');
    if s == "-0" {
        "0".into()
    } else {
        s.to_string()
    }
}

/// Failure keys seen anywhere on the timeline, in a stable order.
fn failure_keys(t: &Timeline) -> Vec<String> {
    let keys: BTreeSet<&String> = t.rows.iter().flat_map(|w| w.failed.keys()).collect();
    keys.into_iter().cloned().collect()
}

/// Version name to colour, in the order the versions first served.
fn version_colours(t: &Timeline) -> BTreeMap<String, &'static str> {
    let mut m = BTreeMap::new();
    for (i, v) in t.versions.iter().enumerate() {
        m.insert(v.name.clone(), VERSION_COLOURS[i % VERSION_COLOURS.len()]);
    }
    for w in t.rows {
        for name in w.versions.keys() {
            let n = m.len();
            m.entry(name.clone())
                .or_insert(VERSION_COLOURS[n % VERSION_COLOURS.len()]);
        }
    }
    m
}

/// Width of every chart (SVG user units; the page scales it to its width).
pub const TW: f64 = 1200.0;
/// Left margin: the left axis's labels.
pub const ML: f64 = 64.0;
/// Right margin: the right axis's labels.
pub const MR: f64 = 64.0;

/// What a timeline chart draws: one run's windows, the versions that served, and
/// its reload steps, all on the load clock.
#[derive(Debug, Clone, Copy)]
pub struct Timeline<'a> {
    /// Width of a window, ms.
    pub window_ms: f64,
    /// One row per window.
    pub rows: &'a [WindowRow],
    /// Versions, in the order they first served (their colours).
    pub versions: &'a [VersionSeen],
    /// Reload steps.
    pub steps: &'a [StepEvent],
}

impl<'a> Timeline<'a> {
    /// The timeline of run `r`, whose statistics are `st`.
    pub fn of(r: &'a RunReport, st: &'a RunStats) -> Timeline<'a> {
        Timeline {
            window_ms: st.window_ms,
            rows: &st.timeline,
            versions: &st.versions,
            steps: &r.steps,
        }
    }

    /// Where the load clock's time runs out: the last window's end or the last step's.
    pub fn end_ms(&self) -> f64 {
        let window = self.window_ms.max(1e-3);
        self.steps
            .iter()
            .map(|s| s.end_ms)
            .fold(self.rows.len() as f64 * window, f64::max)
            .max(window)
    }

    /// The most requests (all outcomes) in one window, per window or per second.
    pub fn max_count(&self, per_second: bool) -> f64 {
        let per = if per_second {
            1000.0 / self.window_ms.max(1e-3)
        } else {
            1.0
        };
        self.rows
            .iter()
            .map(|w| w.ok + w.failed.values().sum::<u64>())
            .max()
            .unwrap_or(0) as f64
            * per
    }

    /// The highest p99 latency of a window with ok responses, ms.
    pub fn max_p99(&self) -> f64 {
        self.rows
            .iter()
            .filter(|w| w.ok > 0)
            .map(|w| w.p99_ms)
            .fold(0.0, f64::max)
    }
}

/// How a timeline chart is framed: its time axis and the tops of its y axes. Charts
/// stacked with one frame share their scales.
#[derive(Debug, Clone)]
pub struct Frame {
    /// The load-clock time drawn as 0 on the time axis.
    pub origin_ms: f64,
    /// Start of the time axis (ms relative to `origin_ms`; may be negative).
    pub from_ms: f64,
    /// End of the time axis (ms relative to `origin_ms`).
    pub to_ms: f64,
    /// Left axis in requests per second (else per window).
    pub per_second: bool,
    /// The most requests in a window the left axis must show (in its unit).
    pub count_max: f64,
    /// The highest latency the right axis must show, ms.
    pub latency_max: f64,
    /// Height of the plot area.
    pub plot_height: f64,
    /// Caption of the time axis.
    pub time_caption: String,
    /// A labelled vertical line at time 0 (the alignment point), if any.
    pub origin_label: Option<String>,
}

impl Frame {
    /// The run report's frame: time since load start, requests per window, both
    /// axes fitted to the one run.
    pub fn fit(t: &Timeline) -> Frame {
        Frame {
            origin_ms: 0.0,
            from_ms: 0.0,
            to_ms: t.end_ms(),
            per_second: false,
            count_max: t.max_count(false),
            latency_max: t.max_p99(),
            plot_height: 280.0,
            time_caption: "time since load start (s)".into(),
            origin_label: None,
        }
    }
}

/// The top of an axis with about `n` nice ticks up to at least `max`, and the tick step.
fn axis_top(max: f64, min_step: f64, n: f64) -> (f64, f64) {
    let step = nice_step(max, n).max(min_step);
    ((max / step).ceil().max(1.0) * step, step)
}

/// Rows and sides for the step labels, so that labels do not overlap: each label
/// goes into the first row where it fits, right of its marker (left of it near
/// the right edge). Returns (row, label left of the marker) per step.
fn place_step_labels(steps: &[StepEvent], sx: impl Fn(f64) -> f64) -> Vec<(usize, bool)> {
    const MAX_ROWS: usize = 6;
    let mut rows: Vec<Vec<(f64, f64)>> = Vec::new();
    let mut out = Vec::new();
    for (i, step) in steps.iter().enumerate() {
        let x = sx(step.end_ms);
        // ~7 px a character at 12 px semibold.
        let w = 7.0 * (format!("{} ", i + 1).len() + step.name.chars().count()) as f64;
        let left = x + 3.0 + w > TW - 4.0;
        let span = if left {
            (x - 3.0 - w, x)
        } else {
            (x, x + 3.0 + w)
        };
        let free = |row: &Vec<(f64, f64)>| {
            row.iter()
                .all(|&(a, b)| span.1 + 8.0 <= a || b + 8.0 <= span.0)
        };
        let row = match rows.iter().position(free) {
            Some(n) => n,
            None if rows.len() < MAX_ROWS => {
                rows.push(Vec::new());
                rows.len() - 1
            }
            None => i % MAX_ROWS,
        };
        rows[row].push(span);
        out.push((row, left));
    }
    out
}

/// A timeline chart of `t` in `frame`: stacked bars of ok and each failure key per
/// window, p50/p99 latency lines on a second axis, a band under the bars coloured
/// by the versions that served, and the reload steps as labelled vertical markers.
pub fn timeline_svg(t: &Timeline, frame: &Frame) -> String {
    let layout = TimelineLayout::new(t, frame);
    let height = layout.height;
    let mut s = String::new();
    let _ = writeln!(
        s,
        "<svg class=\"chart timeline\" xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 {TW} {height}\" role=\"img\" aria-label=\"timeline of outcomes, latency, versions and reload steps\">"
    );
    layout.axes(&mut s);
    layout.step_spans(&mut s);
    layout.windows(&mut s);
    layout.version_band_frame(&mut s);
    layout.latency_lines(&mut s);
    layout.step_markers(&mut s);
    layout.origin_marker(&mut s);
    layout.plot_frame(&mut s);
    layout.hover_targets(&mut s);
    s.push_str("</svg>\n");
    s
}

/// Where a timeline chart puts things: its time axis, the rows of step labels above
/// the plot, the plot, the version band and the time axis's labels under it, and the
/// scales of its two y axes.
struct TimelineLayout<'a> {
    t: &'a Timeline<'a>,
    frame: &'a Frame,
    /// Width of a window, ms (at least 1 µs).
    window: f64,
    /// The time the axis spans, ms.
    span: f64,
    /// Width of the plot area.
    pw: f64,
    /// Per step: the row of its label and whether the label is left of its marker.
    labels: Vec<(usize, bool)>,
    /// Top of the plot area, under the step labels.
    top: f64,
    /// Height of the plot area.
    ph: f64,
    /// Top of the version band, under the plot.
    band_y: f64,
    /// Height of the version band.
    band_h: f64,
    /// Baseline of the time axis's tick labels.
    tick_y: f64,
    /// Height of the whole chart.
    height: f64,
    /// The left axis's unit per request in a window (1, or windows per second).
    per: f64,
    /// Top and tick step of the left axis (requests).
    ctop: f64,
    cstep: f64,
    /// Top and tick step of the right axis (latency, ms).
    ltop: f64,
    lstep: f64,
    /// Width of a window's bar, and the gap left after it.
    bw: f64,
    gap: f64,
}

impl<'a> TimelineLayout<'a> {
    fn new(t: &'a Timeline<'a>, frame: &'a Frame) -> TimelineLayout<'a> {
        let window = t.window_ms.max(1e-3);
        let span = (frame.to_ms - frame.from_ms).max(window);
        let pw = TW - ML - MR;
        let labels = place_step_labels(t.steps, |ms| {
            Self::time_x(frame, span, pw, ms - frame.origin_ms)
        });
        let label_rows = labels.iter().map(|l| l.0 + 1).max().unwrap_or(1);
        let top = 14.0 + label_rows as f64 * 15.0;
        let ph = frame.plot_height;
        let band_y = top + ph + 6.0;
        let band_h = 10.0;
        let tick_y = band_y + band_h + 15.0;
        let height = tick_y + 24.0;

        let per = if frame.per_second {
            1000.0 / window
        } else {
            1.0
        };
        let (ctop, cstep) = axis_top(frame.count_max.max(1.0), 1.0, 5.0);
        let (ltop, lstep) = axis_top(frame.latency_max.max(0.001), 0.0, 5.0);
        let bw = (pw * window / span).max(0.5);
        let gap = if bw > 4.0 { 1.0 } else { 0.0 };
        TimelineLayout {
            t,
            frame,
            window,
            span,
            pw,
            labels,
            top,
            ph,
            band_y,
            band_h,
            tick_y,
            height,
            per,
            ctop,
            cstep,
            ltop,
            lstep,
            bw,
            gap,
        }
    }

    /// The x of `ms` on the time axis of `frame` (relative to its origin).
    fn time_x(frame: &Frame, span: f64, pw: f64, ms: f64) -> f64 {
        ML + (ms - frame.from_ms) / span * pw
    }

    /// `ax`: the x of a time on the axis (relative to the origin).
    fn ax(&self, ms: f64) -> f64 {
        Self::time_x(self.frame, self.span, self.pw, ms)
    }

    /// `sx`: the x of a load-clock time.
    fn sx(&self, ms: f64) -> f64 {
        self.ax(ms - self.frame.origin_ms)
    }

    /// `sy`: the y of `n` requests in a window on the left axis.
    fn sy(&self, n: f64) -> f64 {
        let (top, ph) = (self.top, self.ph);
        top + ph - n * self.per / self.ctop * ph
    }

    /// `sl`: the y of a latency on the right axis.
    fn sl(&self, ms: f64) -> f64 {
        let (top, ph) = (self.top, self.ph);
        top + ph - ms / self.ltop * ph
    }

    /// The grid with the left axis (requests per window or per second), the right
    /// axis (latency), the time axis's ticks in seconds, and the three captions.
    fn axes(&self, s: &mut String) {
        let (frame, window, span, pw) = (self.frame, self.window, self.span, self.pw);
        let (top, ph, tick_y, ctop, cstep) =
            (self.top, self.ph, self.tick_y, self.ctop, self.cstep);
        // Grid and left axis (requests per window).
        let mut v = 0.0;
        while v <= ctop + 1e-9 {
            let y = top + ph - v / ctop * ph;
            grid_line(s, y, pw, v);
            v += cstep;
        }
        // Right axis (latency).
        let mut v = 0.0;
        while v <= self.ltop + 1e-9 {
            let _ = writeln!(
                s,
                "<text x=\"{:.1}\" y=\"{:.1}\" fill=\"{P99_COLOUR}\" style=\"fill:{P99_COLOUR}\">{}</text>",
                ML + pw + 6.0,
                self.sl(v) + 4.0,
                num(v)
            );
            v += self.lstep;
        }
        // X axis ticks, in seconds.
        let xstep = nice_step(span, 12.0);
        let mut tick = (frame.from_ms / xstep).ceil() * xstep;
        while tick <= frame.to_ms + 1e-9 {
            let x = self.ax(tick);
            let _ = writeln!(
                s,
                "<line class=\"axis\" x1=\"{x:.1}\" x2=\"{x:.1}\" y1=\"{:.1}\" y2=\"{:.1}\"/><text x=\"{x:.1}\" y=\"{tick_y:.1}\" text-anchor=\"middle\">{}</text>",
                top + ph,
                top + ph + 4.0,
                num(tick / 1000.0)
            );
            tick += xstep;
        }
        let _ = writeln!(
            s,
            "<text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"middle\">{}</text>",
            ML + pw / 2.0,
            tick_y + 18.0,
            escape(&frame.time_caption)
        );
        let _ = writeln!(
            s,
            "<text transform=\"translate(16 {:.1}) rotate(-90)\" text-anchor=\"middle\">{}</text>",
            top + ph / 2.0,
            if frame.per_second {
                format!("requests/s ({} ms windows)", num(window))
            } else {
                format!("requests per {} ms window", num(window))
            }
        );
        let _ = writeln!(
            s,
            "<text transform=\"translate({:.1} {:.1}) rotate(90)\" text-anchor=\"middle\" style=\"fill:{P99_COLOUR}\">latency of ok responses (ms)</text>",
            TW - 14.0,
            top + ph / 2.0
        );
    }

    /// Reload steps: a light band over each step's extent.
    fn step_spans(&self, s: &mut String) {
        let (top, ph) = (self.top, self.ph);
        for step in self.t.steps {
            let (x0, x1) = (self.sx(step.start_ms), self.sx(step.end_ms));
            let _ = writeln!(
                s,
                "<rect class=\"step-span\" x=\"{x0:.1}\" y=\"{top:.1}\" width=\"{:.1}\" height=\"{ph:.1}\" fill=\"#8c8c8c\" fill-opacity=\"0.10\"/>",
                (x1 - x0).max(0.0)
            );
        }
    }

    /// Per window: its stacked bars, its share of the version band, and its failure mark.
    fn windows(&self, s: &mut String) {
        let keys = failure_keys(self.t);
        let colours = version_colours(self.t);
        for w in self.t.rows {
            self.bars(s, w, &keys);
            self.version_shares(s, w, &colours);
            self.failure_mark(s, w);
        }
    }

    /// Stacked bars of window `w`: ok, then each failure key of `keys`.
    fn bars(&self, s: &mut String, w: &WindowRow, keys: &[String]) {
        let (bw, gap) = (self.bw, self.gap);
        let x = self.sx(w.start_ms);
        let mut acc = 0.0;
        let mut seg = |s: &mut String, n: u64, class: &str, key: &str| {
            if n == 0 {
                return;
            }
            let (y0, y1) = (self.sy(acc), self.sy(acc + n as f64));
            acc += n as f64;
            let _ = writeln!(
                s,
                "<rect class=\"bar {class}\" data-key=\"{}\" x=\"{x:.2}\" y=\"{y1:.2}\" width=\"{:.2}\" height=\"{:.2}\" fill=\"{}\"/>",
                escape(key),
                bw - gap,
                y0 - y1,
                outcome_colour(key)
            );
        };
        seg(s, w.ok, "ok", "ok");
        for k in keys {
            seg(s, w.failed.get(k).copied().unwrap_or(0), "fail", k);
        }
    }

    /// Version band: each version's share of window `w`'s ok responses.
    fn version_shares(&self, s: &mut String, w: &WindowRow, colours: &BTreeMap<String, &str>) {
        let (bw, gap, band_y, band_h) = (self.bw, self.gap, self.band_y, self.band_h);
        let x = self.sx(w.start_ms);
        let total: u64 = w.versions.values().sum();
        if total > 0 {
            let mut vx = x;
            for (name, n) in &w.versions {
                let vw = (bw - gap) * *n as f64 / total as f64;
                let _ = writeln!(
                    s,
                    "<rect class=\"version-band\" data-version=\"{}\" x=\"{vx:.2}\" y=\"{band_y:.1}\" width=\"{vw:.2}\" height=\"{band_h}\" fill=\"{}\"/>",
                    escape(name),
                    colours.get(name).copied().unwrap_or("#999")
                );
                vx += vw;
            }
        }
    }

    /// A failure mark at the top of window `w`, so a single failed request stays visible.
    fn failure_mark(&self, s: &mut String, w: &WindowRow) {
        let (bw, gap, top) = (self.bw, self.gap, self.top);
        let x = self.sx(w.start_ms);
        if !w.failed.is_empty() {
            let worst = w
                .failed
                .iter()
                .max_by_key(|(_, n)| **n)
                .map_or("connect_other", |(k, _)| k.as_str());
            let _ = writeln!(
                s,
                "<rect class=\"fail-mark\" x=\"{x:.2}\" y=\"{:.1}\" width=\"{:.2}\" height=\"5\" fill=\"{}\"/>",
                top - 7.0,
                (bw - gap).max(2.0),
                outcome_colour(worst)
            );
        }
    }

    /// The version band's outline and its label.
    fn version_band_frame(&self, s: &mut String) {
        let (pw, band_y, band_h) = (self.pw, self.band_y, self.band_h);
        let _ = writeln!(
            s,
            "<rect x=\"{ML}\" y=\"{band_y:.1}\" width=\"{pw:.1}\" height=\"{band_h}\" fill=\"none\" stroke=\"#ccc\"/>"
        );
        let _ = writeln!(
            s,
            "<text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"end\" font-size=\"10\">version</text>",
            ML - 6.0,
            band_y + 9.0
        );
    }

    /// Latency lines: broken where a window had no ok response.
    fn latency_lines(&self, s: &mut String) {
        let window = self.window;
        for (class, colour, dash, get) in [
            (
                "p99",
                P99_COLOUR,
                " stroke-dasharray=\"5 3\"",
                (|w| w.p99_ms) as fn(&crate::stats::WindowRow) -> f64,
            ),
            ("p50", P50_COLOUR, "", |w| w.p50_ms),
        ] {
            let mut d = String::new();
            let mut pen_down = false;
            for w in self.t.rows {
                if w.ok == 0 {
                    pen_down = false;
                    continue;
                }
                let (x, y) = (self.sx(w.start_ms + window / 2.0), self.sl(get(w)));
                let _ = write!(d, "{}{x:.1},{y:.1} ", if pen_down { "L" } else { "M" });
                pen_down = true;
            }
            if !d.is_empty() {
                let _ = writeln!(
                    s,
                    "<path class=\"line {class}\" d=\"{}\" fill=\"none\" stroke=\"{colour}\" stroke-width=\"1.8\"{dash} stroke-linejoin=\"round\"/>",
                    d.trim_end()
                );
            }
        }
    }

    /// Step markers and their labels.
    fn step_markers(&self, s: &mut String) {
        let (top, ph) = (self.top, self.ph);
        for (i, (step, &(row, left))) in self.t.steps.iter().zip(&self.labels).enumerate() {
            let x = self.sx(step.end_ms);
            let ly = 12.0 + row as f64 * 15.0;
            // A step that changes who serves carries its exposure: crossed by how many
            // requests, in the label (×N) and the tooltip; one crossed by none is red.
            let (class, stroke, crossed_attr, crossed_label, exposure) = match &step.exposure {
                Some(e) if step.changes_serving => (
                    "step-marker changes-serving",
                    if e.crossed == 0 { P99_COLOUR } else { STEP_COLOUR },
                    format!(" data-crossed=\"{}\"", e.crossed),
                    format!(" ×{}", e.crossed),
                    format!(
                        "; exposure: in flight {} at start, {} at end; sent within ±{} ms {} / {}; connections across {}; crossed {}",
                        e.in_flight_at_start,
                        e.in_flight_at_end,
                        e.window_ms,
                        e.sent_near_start,
                        e.sent_near_end,
                        e.connections_across,
                        e.crossed
                    ),
                ),
                _ => ("step-marker", STEP_COLOUR, String::new(), String::new(), String::new()),
            };
            let _ = writeln!(
                s,
                "<g class=\"{class}\" data-step=\"{}\"{crossed_attr}><title>{}: {:.1}–{:.1} ms{}{}{exposure}</title><line x1=\"{x:.1}\" x2=\"{x:.1}\" y1=\"{:.1}\" y2=\"{:.1}\" stroke=\"{stroke}\" stroke-width=\"1.3\" stroke-dasharray=\"4 3\"/><text x=\"{:.1}\" y=\"{ly:.1}\" text-anchor=\"{}\" font-weight=\"600\">{} {}{crossed_label}</text></g>",
                escape(&step.name),
                escape(&step.name),
                step.start_ms,
                step.end_ms,
                if step.detail.is_empty() { "" } else { "; " },
                escape(&step.detail),
                ly + 3.0,
                top + ph,
                if left { x - 3.0 } else { x + 3.0 },
                if left { "end" } else { "start" },
                i + 1,
                escape(&step.name)
            );
        }
    }

    /// The alignment point, when the frame has one.
    fn origin_marker(&self, s: &mut String) {
        let (top, ph) = (self.top, self.ph);
        if let Some(label) = &self.frame.origin_label {
            let x = self.ax(0.0);
            let _ = writeln!(
                s,
                "<g class=\"origin-marker\"><line x1=\"{x:.1}\" x2=\"{x:.1}\" y1=\"{top:.1}\" y2=\"{:.1}\" stroke=\"{ORIGIN_COLOUR}\" stroke-width=\"1.6\"/><text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"end\" font-size=\"11\" font-weight=\"600\" stroke=\"#fff\" stroke-width=\"3\" paint-order=\"stroke\" style=\"fill:{ORIGIN_COLOUR}\">{}</text></g>",
                top + ph,
                x - 4.0,
                top + 12.0,
                escape(label)
            );
        }
    }

    /// The plot's frame.
    fn plot_frame(&self, s: &mut String) {
        let (pw, top, ph) = (self.pw, self.top, self.ph);
        let _ = writeln!(
            s,
            "<rect x=\"{ML}\" y=\"{top:.1}\" width=\"{pw:.1}\" height=\"{ph:.1}\" fill=\"none\" stroke=\"#888\"/>"
        );
    }

    /// Hover targets with each window's numbers.
    fn hover_targets(&self, s: &mut String) {
        let (frame, window, bw) = (self.frame, self.window, self.bw);
        let (top, band_y, band_h) = (self.top, self.band_y, self.band_h);
        for w in self.t.rows {
            let mut tip = format!(
                "{:.1}–{:.1} s: ok {}",
                (w.start_ms - frame.origin_ms) / 1000.0,
                (w.start_ms + window - frame.origin_ms) / 1000.0,
                w.ok
            );
            for (k, n) in &w.failed {
                let _ = write!(tip, ", {k} {n}");
            }
            if w.ok > 0 {
                let _ = write!(
                    tip,
                    "; p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
                    w.p50_ms, w.p99_ms, w.max_ms
                );
            }
            if !w.versions.is_empty() {
                let v: Vec<String> = w.versions.iter().map(|(k, n)| format!("{k} {n}")).collect();
                let _ = write!(tip, "; versions {}", v.join(", "));
            }
            let _ = writeln!(
                s,
                "<rect class=\"hover\" x=\"{:.2}\" y=\"{top:.1}\" width=\"{bw:.2}\" height=\"{:.1}\"><title>{}</title></rect>",
                self.sx(w.start_ms),
                band_y + band_h - top,
                escape(&tip)
            );
        }
    }
}

/// A strip under a timeline chart, on its time axis: a tick where each websocket
/// connection ended before the end of the run, red when it was dropped without a
/// close frame, grey when the server closed it with one, brown when it failed to open.
pub fn websocket_strip_svg(t: &Timeline, frame: &Frame, ws: &WsReport) -> String {
    let window = t.window_ms.max(1e-3);
    let span = (frame.to_ms - frame.from_ms).max(window);
    let pw = TW - ML - MR;
    let sx = |ms: f64| ML + (ms - frame.origin_ms - frame.from_ms) / span * pw;
    let h = 34.0;
    let mut s = String::new();
    let _ = writeln!(
        s,
        "<svg class=\"chart websockets\" xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 {TW} {h}\" role=\"img\" aria-label=\"when websocket connections ended\">"
    );
    let _ = writeln!(
        s,
        "<rect x=\"{ML}\" y=\"4\" width=\"{pw:.1}\" height=\"22\" fill=\"none\" stroke=\"#ccc\"/><text x=\"{:.1}\" y=\"19\" text-anchor=\"end\" font-size=\"10\">websockets</text>",
        ML - 6.0
    );
    for l in &ws.lives {
        let (class, colour) = match l.end {
            End::Dropped => ("ws-dropped", "#c62828"),
            End::ClosedByServer => ("ws-closed", "#607d8b"),
            End::FailedToOpen => ("ws-failed", "#6d4c41"),
            End::HeldToEnd => continue,
        };
        let x = sx(l.at_ms).clamp(ML, ML + pw);
        let _ = writeln!(
            s,
            "<line class=\"{class}\" x1=\"{x:.1}\" x2=\"{x:.1}\" y1=\"6\" y2=\"24\" stroke=\"{colour}\" stroke-width=\"2\"><title>websocket #{} {} at {:.1} ms: {}</title></line>",
            l.conn,
            class.trim_start_matches("ws-").replace('_', " "),
            l.at_ms,
            escape(&l.detail)
        );
    }
    s.push_str("</svg>\n");
    s
}

/// The legend under a timeline chart of `t`.
pub fn timeline_legend(t: &Timeline) -> String {
    let mut items = vec![format!(
        "<span><span class=\"sw\" style=\"background:{OK_COLOUR}\"></span>ok</span>"
    )];
    for k in failure_keys(t) {
        items.push(format!(
            "<span><span class=\"sw\" style=\"background:{}\"></span>{}</span>",
            outcome_colour(&k),
            escape(&k)
        ));
    }
    items.push(format!(
        "<span><span class=\"line-sw\" style=\"border-color:{P50_COLOUR}\"></span>p50 latency</span>"
    ));
    items.push(format!(
        "<span><span class=\"line-sw\" style=\"border-color:{P99_COLOUR};border-top-style:dashed\"></span>p99 latency</span>"
    ));
    for (name, c) in version_colours(t) {
        items.push(format!(
            "<span><span class=\"sw\" style=\"background:{c}\"></span>served by {}</span>",
            escape(&name)
        ));
    }
    items.push(format!(
        "<span><span class=\"line-sw\" style=\"border-color:{STEP_COLOUR};border-top-style:dashed\"></span>reload step ends (shaded: while it ran)</span>"
    ));
    if t.rows.iter().any(|w| !w.failed.is_empty()) {
        items.push(
            "<span><span class=\"sw\" style=\"background:#e15759;height:4px;vertical-align:2px\"></span>mark above a window with failures (most frequent failure)</span>".to_string(),
        );
    }
    format!("<div class=\"legend\">{}</div>\n", items.join(""))
}

/// The percentiles labelled on the percentile chart's x axis.
const PERCENTILE_TICKS: [(f64, &str); 7] = [
    (0.0, "0%"),
    (50.0, "50%"),
    (90.0, "90%"),
    (99.0, "99%"),
    (99.9, "99.9%"),
    (99.99, "99.99%"),
    (99.999, "99.999%"),
];

/// Position of a percentile on a log scale of `1/(1-p)`: 0 for 0%, 5 for 99.999%.
fn percentile_x(p: f64) -> f64 {
    let rest = (1.0 - p / 100.0).max(1e-9);
    (-rest.log10()).clamp(0.0, 5.0)
}

/// One line on a percentile chart.
#[derive(Debug, Clone, Copy)]
pub struct Curve<'a> {
    /// Class of its SVG group (`phase-curve`, `scenario-curve`).
    pub class: &'static str,
    /// The data attribute naming it (`data-phase`, `data-scenario`).
    pub attr: &'static str,
    /// Its name: the attribute's value, and the tooltips' label.
    pub name: &'a str,
    /// Line colour.
    pub colour: &'a str,
    /// The curve (empty: drawn as nothing).
    pub points: &'a [CurvePoint],
}

/// The latencies a percentile chart must show: (lowest above zero, highest), ms.
/// Charts given the same range share their latency axis.
pub fn latency_range(curves: &[Curve]) -> (f64, f64) {
    let all = || curves.iter().flat_map(|c| c.points.iter().map(|p| p.ms));
    let max = all().fold(0.0, f64::max).max(0.001);
    let min = all().filter(|v| *v > 0.0).fold(f64::INFINITY, f64::min);
    (min, max)
}

/// The latency-by-percentile chart: `curves` over percentiles from 0% to 99.999%
/// (log scale of `1/(1-p)`), latency axis covering `range` (from [`latency_range`]).
pub fn percentile_svg(curves: &[Curve], range: (f64, f64), aria: &str) -> String {
    let (h, top, ph) = (360.0, 16.0, 290.0);
    let pw = TW - ML - MR;
    let curves: Vec<&Curve> = curves.iter().filter(|c| !c.points.is_empty()).collect();
    let (min_ms, max_ms) = range;
    // A log latency scale when the tail is far above the body, so both stay readable.
    let log_y = min_ms.is_finite() && max_ms / min_ms > 50.0;
    let (y_lo, y_hi) = if log_y {
        (
            10f64.powf(min_ms.log10().floor()),
            10f64.powf(max_ms.log10().ceil()),
        )
    } else {
        let step = nice_step(max_ms, 6.0);
        (0.0, (max_ms / step).ceil() * step)
    };
    let sy = |ms: f64| {
        let f = if log_y {
            (ms.max(y_lo).log10() - y_lo.log10()) / (y_hi.log10() - y_lo.log10())
        } else {
            ms / y_hi
        };
        top + ph - f * ph
    };
    let sx = |p: f64| ML + percentile_x(p) / 5.0 * pw;

    let mut s = String::new();
    let _ = writeln!(
        s,
        "<svg class=\"chart percentiles\" xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 {TW} {h}\" role=\"img\" aria-label=\"{}\">",
        escape(aria)
    );
    // Y grid.
    let mut ticks = Vec::new();
    if log_y {
        let mut decade = y_lo;
        while decade <= y_hi * 1.0001 {
            for m in [1.0, 2.0, 5.0] {
                let v = decade * m;
                if v <= y_hi * 1.0001 {
                    ticks.push(v);
                }
            }
            decade *= 10.0;
        }
    } else {
        let step = nice_step(max_ms, 6.0);
        let mut v = 0.0;
        while v <= y_hi + 1e-9 {
            ticks.push(v);
            v += step;
        }
    }
    for v in ticks {
        let y = sy(v);
        grid_line(&mut s, y, pw, v);
    }
    // X grid at the labelled percentiles.
    for (p, label) in PERCENTILE_TICKS {
        let x = sx(p);
        let _ = writeln!(
            s,
            "<line class=\"grid\" x1=\"{x:.1}\" x2=\"{x:.1}\" y1=\"{top:.1}\" y2=\"{:.1}\"/><text x=\"{x:.1}\" y=\"{:.1}\" text-anchor=\"middle\">{label}</text>",
            top + ph,
            top + ph + 17.0
        );
    }
    let _ = writeln!(
        s,
        "<text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"middle\">percentile (log scale of 1/(1−p))</text>",
        ML + pw / 2.0,
        top + ph + 38.0
    );
    let _ = writeln!(
        s,
        "<text transform=\"translate(16 {:.1}) rotate(-90)\" text-anchor=\"middle\">latency of ok responses (ms{})</text>",
        top + ph / 2.0,
        if log_y { ", log scale" } else { "" }
    );
    let _ = writeln!(
        s,
        "<rect x=\"{ML}\" y=\"{top:.1}\" width=\"{pw:.1}\" height=\"{ph:.1}\" fill=\"none\" stroke=\"#888\"/>"
    );
    if curves.is_empty() {
        let _ = writeln!(
            s,
            "<text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"middle\">no ok response was recorded</text>",
            ML + pw / 2.0,
            top + ph / 2.0
        );
    }
    for p in curves {
        let colour = p.colour;
        let pts: Vec<String> = p
            .points
            .iter()
            .map(|c| format!("{:.1},{:.1}", sx(c.percentile), sy(c.ms)))
            .collect();
        let _ = writeln!(
            s,
            "<g class=\"{}\" {}=\"{}\"><polyline points=\"{}\" fill=\"none\" stroke=\"{}\" stroke-width=\"2\" stroke-linejoin=\"round\"/>",
            p.class,
            p.attr,
            escape(p.name),
            pts.join(" "),
            escape(colour)
        );
        for c in p.points.iter().filter(|c| {
            PERCENTILE_TICKS
                .iter()
                .any(|(t, _)| (*t - c.percentile).abs() < 1e-6)
        }) {
            let _ = writeln!(
                s,
                "<circle cx=\"{:.1}\" cy=\"{:.1}\" r=\"3\" fill=\"{}\"><title>{}: p{} = {:.3} ms</title></circle>",
                sx(c.percentile),
                sy(c.ms),
                escape(colour),
                escape(p.name),
                num(c.percentile),
                c.ms
            );
        }
        s.push_str("</g>\n");
    }
    s.push_str("</svg>\n");
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn report_html_axis_helpers() {
        assert_eq!(nice_step(100.0, 5.0), 20.0);
        assert_eq!(nice_step(7.0, 5.0), 2.0);
        assert_eq!(nice_step(0.0, 5.0), 1.0);
        assert_eq!(num(2.50), "2.5");
        assert_eq!(num(3.0), "3");
        assert_eq!(percentile_x(0.0), 0.0);
        assert!((percentile_x(99.0) - 2.0).abs() < 1e-9);
        assert!((percentile_x(99.999) - 5.0).abs() < 1e-6);
    }
}
