//! Drawing an [`App`] into a ratatui frame. Every pane is a function of the app alone, so the
//! render tests draw each one into a `TestBackend` of any size.
//!
//! Layout at 80×24 (more rows go to the lists, more columns to every pane):
//! a top row of traffic sparklines, capture health and scoring (6 rows); alerts beside
//! flows; enforcement beside top talkers (6 rows); one status line. Below 60×18 a compact
//! summary replaces the panes. Colour is kept for what needs attention: red for active blocks,
//! severity-1 or blocked alerts, errors; yellow for what is degraded; bold for the focused pane.

use portcullis_api::{AlertKind, AlertRow, FlowRow, MlVerdict, Snapshot};
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Color, Modifier, Style, Stylize};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Clear, Paragraph, Sparkline, Wrap};
use ratatui::Frame;

use crate::app::{kind_name, App, EnforcementRow, Inspected, Overlay, Pane, StatusKind};
use crate::fmt;

/// Below this the panes do not fit and a compact summary is drawn instead.
const MIN_WIDTH: u16 = 60;
const MIN_HEIGHT: u16 = 18;

fn alert_style() -> Style {
    Style::new().fg(Color::Red)
}

fn warn_style() -> Style {
    Style::new().fg(Color::Yellow)
}

/// Draws the whole console.
pub fn draw(frame: &mut Frame<'_>, app: &App) {
    let area = frame.area();
    if area.width == 0 || area.height == 0 {
        return;
    }
    let [body, status] = Layout::vertical([Constraint::Min(0), Constraint::Length(1)]).areas(area);
    if area.width < MIN_WIDTH || area.height < MIN_HEIGHT {
        draw_compact(frame, body, app);
    } else {
        let top_h = match area.height {
            h if h >= 40 => 10,
            h if h >= 30 => 8,
            _ => 6,
        };
        let bottom_h = if area.height >= 30 { area.height / 4 } else { 6 };
        let [top, middle, bottom] =
            Layout::vertical([Constraint::Length(top_h), Constraint::Min(0), Constraint::Length(bottom_h)]).areas(body);
        let [traffic, capture, scoring] =
            Layout::horizontal([Constraint::Percentage(40), Constraint::Percentage(30), Constraint::Percentage(30)]).areas(top);
        let [alerts, flows] = Layout::horizontal([Constraint::Percentage(45), Constraint::Percentage(55)]).areas(middle);
        let [enforcement, talkers] =
            Layout::horizontal([Constraint::Percentage(60), Constraint::Percentage(40)]).areas(bottom);
        draw_traffic(frame, traffic, app);
        draw_capture(frame, capture, app);
        draw_scoring(frame, scoring, app);
        draw_alerts(frame, alerts, app);
        draw_flows(frame, flows, app);
        draw_enforcement(frame, enforcement, app);
        draw_talkers(frame, talkers, app);
    }
    draw_status(frame, status, app);
    match app.overlay() {
        Overlay::Help => draw_help(frame, body),
        Overlay::Inspect(item, scroll) => draw_inspect(frame, body, item, *scroll),
        // The question is asked in the status line, where it is read with the reply.
        Overlay::Confirm(_) | Overlay::None => {}
    }
}

// ---- frames and lists -------------------------------------------------------------------------

/// A pane's border: bold when focused, the title at the top, `footer` at the bottom left and
/// `more` (what does not fit) at the bottom right.
fn pane_block<'a>(title: String, focused: bool, footer: Option<String>, more: Option<String>) -> Block<'a> {
    let style = if focused { Style::new().add_modifier(Modifier::BOLD) } else { Style::new() };
    let mut b = Block::bordered().title(Line::from(format!(" {title} ")).style(style)).border_style(style);
    if let Some(f) = footer {
        b = b.title_bottom(Line::from(format!(" {f} ")).left_aligned());
    }
    if let Some(m) = more {
        b = b.title_bottom(Line::from(format!(" {m} ")).right_aligned());
    }
    b
}

/// The title of a list pane: its focus key, name and what qualifies its rows.
fn list_title(pane: Pane, name: &str, notes: &[String]) -> String {
    let mut t = format!("[{}] {name}", pane.key());
    for n in notes.iter().filter(|n| !n.is_empty()) {
        t += " · ";
        t += n;
    }
    t
}

/// The rows of a list that fit `height`, scrolled so that the selection is visible, and what
/// the bottom border says about the rest (`3 above · 12 more`).
fn window(len: usize, selected: Option<usize>, height: usize) -> (std::ops::Range<usize>, Option<String>) {
    if height == 0 {
        return (0..0, (len > 0).then(|| format!("{len} more")));
    }
    let offset = match selected {
        Some(s) if s >= height => s + 1 - height,
        _ => 0,
    };
    let end = (offset + height).min(len);
    let mut notes = Vec::new();
    if offset > 0 {
        notes.push(format!("{offset} above"));
    }
    if end < len {
        notes.push(format!("{} more", len - end));
    }
    (offset..end, (!notes.is_empty()).then(|| notes.join(" · ")))
}

/// A list pane's content: what [`draw_list`] frames, scrolls and highlights.
struct List {
    title: String,
    focused: bool,
    /// Column names, or a warning that matters more than any row.
    header: Option<Line<'static>>,
    rows: Vec<Line<'static>>,
    selected: usize,
    /// What the pane says, in words, when it has no rows.
    empty: String,
    /// Counts for the bottom border.
    footer: Option<String>,
}

/// Draws a list pane: the header line, the rows in view (the selected one reversed when the
/// pane has focus), or the empty text when there are none.
fn draw_list(frame: &mut Frame<'_>, area: Rect, list: List) {
    let inner_h = area.height.saturating_sub(2) as usize;
    let list_h = inner_h.saturating_sub(usize::from(list.header.is_some() && !list.rows.is_empty()));
    let (range, more) = window(list.rows.len(), Some(list.selected), list_h);
    let block = pane_block(list.title, list.focused, list.footer, more);
    let mut lines = Vec::new();
    if list.rows.is_empty() {
        lines.push(Line::from(list.empty).italic());
    } else {
        lines.extend(list.header);
        for (i, row) in list.rows.into_iter().enumerate().skip(range.start).take(range.len()) {
            lines.push(if list.focused && i == list.selected { row.patch_style(Modifier::REVERSED) } else { row });
        }
    }
    frame.render_widget(Paragraph::new(lines).block(block), area);
}

/// Draws an information pane: lines in order of importance, the ones that do not fit counted.
fn draw_info(frame: &mut Frame<'_>, area: Rect, title: String, lines: Vec<Line<'static>>) {
    let inner_h = area.height.saturating_sub(2) as usize;
    let (range, more) = window(lines.len(), None, inner_h);
    let lines: Vec<Line<'static>> = lines.into_iter().take(range.end).collect();
    frame.render_widget(Paragraph::new(lines).block(pane_block(title, false, None, more)), area);
}

fn inner_width(area: Rect) -> usize {
    area.width.saturating_sub(2) as usize
}

/// What a pane says when the filter hides every row.
fn empty_text(app: &App, none: &str, what: &str) -> String {
    if app.filter().is_empty() {
        none.to_string()
    } else {
        format!("no {what} match '{}'", app.filter())
    }
}

/// `/text` while a filter is applied: short, so that it survives in narrow titles.
fn filter_note(app: &App) -> String {
    if app.filter().is_empty() {
        String::new()
    } else {
        format!("/{}", app.filter())
    }
}

// ---- the panes -------------------------------------------------------------------------------

/// Packets, bits and drops per second as sparklines, and drops by reason.
pub(crate) fn draw_traffic(frame: &mut Frame<'_>, area: Rect, app: &App) {
    // Paused or stale first: the title is cut at the pane's width, and these must show.
    let mut title = "traffic".to_string();
    if app.paused() {
        title += " · PAUSED";
    } else if app.link_error().is_some() {
        title += " · STALE";
    }
    if let Some(s) = app.snapshot() {
        title += &format!(" · {} · up {}", if s.source.is_empty() { "?" } else { &s.source }, fmt::duration(s.uptime_secs));
    }
    let block = pane_block(title, false, None, None);
    let inner = block.inner(area);
    frame.render_widget(block, area);
    let Some(s) = app.snapshot() else {
        frame.render_widget(Paragraph::new("no snapshot yet").italic(), inner);
        return;
    };
    let t = &s.traffic;
    let rows: [(&str, &[u64], String); 3] = [
        ("pkt/s", &t.packets_per_sec, fmt::si(t.packets_per_sec.last().copied().unwrap_or(0))),
        ("bit/s", &t.bits_per_sec, fmt::si(t.bits_per_sec.last().copied().unwrap_or(0))),
        ("drop/s", &t.drops_per_sec, fmt::si(t.drops_per_sec.last().copied().unwrap_or(0))),
    ];
    let mut y = inner.y;
    for (i, (label, samples, now)) in rows.iter().enumerate() {
        if y >= inner.bottom() {
            return;
        }
        let line = Rect { y, height: 1, ..inner };
        let [l, spark, v] = Layout::horizontal([Constraint::Length(7), Constraint::Min(0), Constraint::Length(7)]).areas(line);
        let red = i == 2 && samples.last().copied().unwrap_or(0) > 0;
        frame.render_widget(Paragraph::new(*label), l);
        if samples.is_empty() {
            frame.render_widget(Paragraph::new("no samples yet").italic(), spark);
        } else {
            // The newest samples that fit, so the line ends at "now".
            let tail = &samples[samples.len().saturating_sub(spark.width as usize)..];
            let style = if red { alert_style() } else { Style::new() };
            frame.render_widget(Sparkline::default().data(tail).style(style), spark);
        }
        let value = Paragraph::new(format!(" {now}")).right_aligned();
        frame.render_widget(if red { value.style(alert_style()) } else { value }, v);
        y += 1;
    }
    let mut rest: Vec<Line<'static>> = Vec::new();
    if t.drops_by_reason.is_empty() {
        rest.push(Line::from("no drops"));
    } else {
        let reasons: Vec<String> = t.drops_by_reason.iter().map(|(r, n)| format!("{r} {}", fmt::si(*n))).collect();
        rest.push(Line::from(fmt::truncate(&format!("drops {}", reasons.join(" · ")), inner.width as usize)));
    }
    rest.push(Line::from(format!("total {} pkts · {}", fmt::si(t.packets_total), fmt::bytes(t.bytes_total))));
    let rest_area = Rect { y, height: inner.bottom().saturating_sub(y), ..inner };
    frame.render_widget(Paragraph::new(rest), rest_area);
}

/// Capture mode, each queue's rate, ring drops and backlog, and events lost.
pub(crate) fn draw_capture(frame: &mut Frame<'_>, area: Rect, app: &App) {
    let w = inner_width(area);
    let mut title = "capture".to_string();
    let mut lines: Vec<Line<'static>> = Vec::new();
    match app.snapshot().map(|s| &s.capture) {
        Some(c) if !c.mode.is_empty() || !c.ports.is_empty() => {
            if !c.mode.is_empty() {
                title += &format!(" · {}", c.mode);
            }
            let head = match (c.inline, &c.fail_mode) {
                (true, Some(f)) => format!("inline · fail-{f}"),
                (true, None) => "inline".to_string(),
                (false, _) => "passive (copies only)".to_string(),
            };
            lines.push(Line::from(fmt::truncate(&head, w)));
            if c.events_lost > 0 {
                lines.push(Line::from(fmt::truncate(&format!("events lost {}", fmt::si(c.events_lost)), w)).style(alert_style()));
            }
            for p in &c.ports {
                let mut right = format!(" {}/s d:{}", fmt::si(p.packets_per_sec), fmt::si(p.ring_drops));
                // The backlog only when the name keeps room to be read.
                if p.backlog > 0 && w >= 30 {
                    right += &format!(" q:{}", fmt::si(p.backlog));
                }
                let name_w = w.saturating_sub(right.chars().count());
                let text = fmt::truncate(&format!("{}{right}", fmt::fit(&p.name, name_w)), w);
                let line = Line::from(text);
                lines.push(if p.ring_drops > 0 { line.style(warn_style()) } else { line });
            }
        }
        _ => lines.push(Line::from("no capture yet").italic()),
    }
    draw_info(frame, area, title, lines);
}

/// The scoring backend and model, batch sizes and latency, the shadow model, drift and the
/// rules loaded.
pub(crate) fn draw_scoring(frame: &mut Frame<'_>, area: Rect, app: &App) {
    let w = inner_width(area);
    let line = |text: String| Line::from(fmt::truncate(&text, w));
    let mut lines: Vec<Line<'static>> = Vec::new();
    let Some(s) = app.snapshot() else {
        draw_info(frame, area, "scoring".into(), vec![Line::from("no snapshot yet").italic()]);
        return;
    };
    match &s.scoring {
        None => lines.push(line("scoring: off".into())),
        Some(sc) => {
            lines.push(line(format!("{} · {}", sc.backend, sc.model)));
            if let Some(note) = &sc.backend_note {
                lines.push(line(note.clone()).style(warn_style()));
            }
            lines.push(line(format!("p50 {} · p99 {}", fmt::millis(sc.latency_p50_ms), fmt::millis(sc.latency_p99_ms))));
            let batch = if sc.mean_batch >= 10.0 { format!("{:.0}", sc.mean_batch) } else { format!("{:.1}", sc.mean_batch) };
            lines.push(line(format!("batch {batch} · {} flows", fmt::si(sc.flows_scored))));
            if let Some(sh) = &sc.shadow {
                let agree = if sh.flows == 0 { 0.0 } else { 100.0 * sh.agree as f64 / sh.flows as f64 };
                lines.push(line(format!("shadow {} agree {agree:.1}%", sh.model)));
            }
        }
    }
    match &s.drift {
        None => lines.push(line("drift: off".into())),
        Some(d) => match (&d.unavailable, d.features.first()) {
            (Some(why), _) => lines.push(line(format!("drift unavailable: {why}"))),
            (None, Some((name, psi))) => {
                let l = line(format!("drift PSI {psi:.2} {name} (>{:.2} alerts)", d.threshold));
                lines.push(if *psi > d.threshold { l.style(alert_style()) } else { l });
            }
            (None, None) => lines.push(line(format!("drift: {} flows, no features yet", d.flows))),
        },
    }
    match &s.rules {
        None => lines.push(line("rules: none loaded".into())),
        Some(r) => {
            let l = line(format!("rules {} loaded · {} failed", fmt::si(r.loaded), r.failed));
            lines.push(if r.failed > 0 { l.style(warn_style()) } else { l });
            if let Some(why) = &r.last_reload_refused {
                lines.push(line(format!("reload refused: {why}")).style(alert_style()));
            }
        }
    }
    if let Some(prev) = s.scoring.as_ref().and_then(|sc| sc.previous_model.as_ref()) {
        lines.push(line(format!("previous {prev} (R rolls back)")));
    }
    draw_info(frame, area, "scoring".into(), lines);
}

fn kind_letter(k: AlertKind) -> char {
    match k {
        AlertKind::Rule => 'R',
        AlertKind::Ml => 'M',
        AlertKind::Anomaly => 'A',
        AlertKind::Drift => 'D',
    }
}

fn alert_line(a: &AlertRow, w: usize) -> Line<'static> {
    // Severity 1 is Suricata's highest; a blocked alert means a packet was dropped inline.
    let loud = a.severity == 1 || a.action == "blocked";
    let head = format!("{} {}{} ", fmt::clock(&a.timestamp), kind_letter(a.kind), a.severity);
    let src = a.src.map(|s| s.to_string()).unwrap_or_default();
    let text = if w >= 56 && !src.is_empty() {
        let src_w = src.chars().count().min(39);
        let sig_w = w.saturating_sub(head.chars().count() + src_w + 1);
        format!("{head}{} {}", fmt::fit(&a.signature, sig_w), fmt::truncate(&src, src_w))
    } else {
        format!("{head}{}", a.signature)
    };
    let line = Line::from(fmt::truncate(&text, w));
    if loud {
        line.style(alert_style())
    } else {
        line
    }
}

/// The alert stream, newest first.
pub(crate) fn draw_alerts(frame: &mut Frame<'_>, area: Rect, app: &App) {
    let w = inner_width(area);
    let rows = app.alerts();
    let total = app.snapshot().map(|s| s.alerts_total).unwrap_or(0);
    let title = list_title(Pane::Alerts, "alerts", &[filter_note(app), format!("{total} total")]);
    let lines = rows.iter().map(|a| alert_line(a, w)).collect();
    let empty = empty_text(app, "no alerts yet", "alerts");
    let focused = app.focus() == Pane::Alerts;
    draw_list(frame, area, List { title, focused, header: None, rows: lines, selected: app.selected(Pane::Alerts), empty, footer: None });
}

/// The columns of the flows pane that fit `w`, besides the two endpoints.
struct FlowColumns {
    src_port: bool,
    packets: bool,
    age: bool,
    app: bool,
    ml: bool,
    state: bool,
}

impl FlowColumns {
    fn for_width(w: usize) -> FlowColumns {
        FlowColumns { src_port: w >= 64, packets: w >= 50, age: w >= 58, app: w >= 76, ml: w >= 92, state: w >= 108 }
    }

    /// The widths taken by everything but the endpoints (with their separating spaces).
    fn fixed(&self) -> usize {
        // proto (4), the endpoints' two spaces, bytes (7) and its space.
        4 + 2 + 8
            + if self.packets { 7 } else { 0 }
            + if self.age { 7 } else { 0 }
            + if self.app { 7 } else { 0 }
            + if self.ml { 15 } else { 0 }
            + if self.state { 12 } else { 0 }
    }

    fn line(&self, cells: [&str; 9], src_w: usize, dst_w: usize) -> String {
        let [proto, src, dst, bytes, packets, age, app, ml, state] = cells;
        let mut s = format!("{} {} {} {:>7}", fmt::fit(proto, 4), fmt::fit(src, src_w), fmt::fit(dst, dst_w), bytes);
        if self.packets {
            s += &format!(" {packets:>6}");
        }
        if self.age {
            s += &format!(" {age:>6}");
        }
        if self.app {
            s += &format!(" {}", fmt::fit(app, 6));
        }
        if self.ml {
            s += &format!(" {}", fmt::fit(ml, 14));
        }
        if self.state {
            s += &format!(" {}", fmt::fit(state, 11));
        }
        s
    }
}

/// Active flows in the chosen order, with as many columns as the width allows.
pub(crate) fn draw_flows(frame: &mut Frame<'_>, area: Rect, app: &App) {
    let w = inner_width(area);
    let rows = app.flows();
    let cols = FlowColumns::for_width(w);
    let src_text = |f: &FlowRow| if cols.src_port { fmt::endpoint(f.src, f.src_port) } else { f.src.to_string() };
    let dst_text = |f: &FlowRow| format!("→{}", fmt::endpoint(f.dst, f.dst_port));
    // The endpoints share what the other columns leave, each getting what its longest value
    // needs when both fit, and half each when they do not.
    let room = w.saturating_sub(cols.fixed());
    let src_max = rows.iter().map(|f| src_text(f).chars().count()).max().unwrap_or(3).max(3);
    let dst_max = rows.iter().map(|f| dst_text(f).chars().count()).max().unwrap_or(4).max(4);
    let (src_w, dst_w) = if src_max + dst_max <= room {
        (src_max, room - src_max)
    } else {
        let src_w = src_max.min(room / 2).max(room.saturating_sub(dst_max));
        (src_w, room.saturating_sub(src_w))
    };
    let header = cols.line(["pro", "src", "→dst", "bytes", "pkts", "age", "app", "ml", "state"], src_w, dst_w);
    let lines: Vec<Line<'static>> = rows
        .iter()
        .map(|f| {
            let ml = match (&f.ml_class, f.ml_score) {
                (Some(c), Some(p)) => format!("{c} {p:.2}"),
                (Some(c), None) => c.clone(),
                _ => String::new(),
            };
            let text = cols.line(
                [
                    &f.proto,
                    &src_text(f),
                    &dst_text(f),
                    &fmt::bytes(f.bytes),
                    &fmt::si(f.packets),
                    &fmt::duration(f.age_secs.max(0.0) as u64),
                    f.app_proto.as_deref().unwrap_or(""),
                    &ml,
                    f.state.as_deref().unwrap_or(""),
                ],
                src_w,
                dst_w,
            );
            Line::from(fmt::truncate(&text, w))
        })
        .collect();
    let shown = app.snapshot().map(|s| s.flows_active).unwrap_or(0);
    let count = if app.filter().is_empty() { format!("{} of {shown}", rows.len()) } else { format!("{} shown", rows.len()) };
    let title = list_title(Pane::Flows, "flows", &[filter_note(app), count, format!("sort {} (s)", app.sort().name())]);
    let empty = empty_text(app, "no active flows", "flows");
    let header = Line::from(fmt::truncate(&header, w)).add_modifier(Modifier::DIM);
    let (focused, selected) = (app.focus() == Pane::Flows, app.selected(Pane::Flows));
    draw_list(frame, area, List { title, focused, header: Some(header), rows: lines, selected, empty, footer: None });
}

/// Sources by bytes in the last interval.
pub(crate) fn draw_talkers(frame: &mut Frame<'_>, area: Rect, app: &App) {
    let w = inner_width(area);
    let rows = app.talkers();
    let lines = rows
        .iter()
        .map(|t| {
            let mut right = format!(" {:>8}/s", fmt::bytes(t.bytes_per_sec));
            if w >= 36 {
                right += &format!(" {:>5}p/s", fmt::si(t.packets_per_sec));
            }
            if w >= 44 {
                right += &format!(" {:>4}fl", fmt::si(t.flows));
            }
            let addr_w = w.saturating_sub(right.chars().count());
            Line::from(fmt::truncate(&format!("{}{right}", fmt::fit(&t.addr.to_string(), addr_w)), w))
        })
        .collect();
    let title = list_title(Pane::Talkers, "top talkers", &[filter_note(app)]);
    let empty = empty_text(app, "no traffic yet", "talkers");
    let (focused, selected) = (app.focus() == Pane::Talkers, app.selected(Pane::Talkers));
    draw_list(frame, area, List { title, focused, header: None, rows: lines, selected, empty, footer: None });
}

fn enforcement_line(row: &EnforcementRow<'_>, w: usize) -> Line<'static> {
    match row {
        EnforcementRow::Active(a) => {
            let left = if a.expires_in_secs == 0 { "no expiry".to_string() } else { format!("{} left", fmt::duration(a.expires_in_secs)) };
            let mut text = format!("{} {} {left} · {} hits", a.action.to_uppercase(), a.addr, fmt::si(a.hits));
            if a.dry_run {
                text += " · dry-run";
            }
            let line = Line::from(fmt::truncate(&text, w));
            // A dry-run entry blocks nothing, so it is not painted as a block.
            if a.dry_run {
                line
            } else {
                line.style(alert_style())
            }
        }
        EnforcementRow::Pending(p) => {
            let dur = p.duration_secs.map(fmt::duration).unwrap_or_else(|| "no expiry".into());
            let text =
                format!("pending #{} {} {} for {dur} · {} · {} ago", p.id, p.action, p.target, p.trigger, fmt::duration(p.age_secs));
            Line::from(fmt::truncate(&text, w)).style(warn_style())
        }
    }
}

/// Active blocks and rate limits with their time left, then the approval queue.
pub(crate) fn draw_enforcement(frame: &mut Frame<'_>, area: Rect, app: &App) {
    let w = inner_width(area);
    let focused = app.focus() == Pane::Enforcement;
    let Some(s) = app.snapshot() else {
        let title = list_title(Pane::Enforcement, "enforcement", &[]);
        let empty = "no snapshot yet".to_string();
        draw_list(frame, area, List { title, focused, header: None, rows: Vec::new(), selected: 0, empty, footer: None });
        return;
    };
    let e = &s.enforcement;
    let rows = app.enforcement();
    let lines: Vec<Line<'static>> = rows.iter().map(|r| enforcement_line(r, w)).collect();
    let mode = if e.mode.is_empty() { "off".to_string() } else { e.mode.clone() };
    let title = list_title(Pane::Enforcement, "enforcement", &[format!("mode {mode}")]);
    let footer = (!rows.is_empty()).then(|| format!("{} active · {} pending", e.active.len(), e.pending.len()));
    // Why nothing is enforced matters more than any row, so it takes the header line.
    let header = e.nft_missing.as_ref().map(|why| Line::from(fmt::truncate(&format!("nftables not enforcing: {why}"), w)).style(warn_style()));
    let empty = match (&e.nft_missing, mode.as_str()) {
        (Some(why), _) => format!("nftables not enforcing: {why}"),
        (None, "off") => "enforcement off: no policy".to_string(),
        (None, _) => "no active blocks · approval queue empty".to_string(),
    };
    let selected = app.selected(Pane::Enforcement);
    draw_list(frame, area, List { title, focused, header, rows: lines, selected, empty, footer });
}

// ---- status line and overlays ----------------------------------------------------------------

const HINT: &str = "? help · q quit · Tab/1-4 focus · Enter inspect · / filter · s sort · p pause";

pub(crate) fn draw_status(frame: &mut Frame<'_>, area: Rect, app: &App) {
    let w = area.width as usize;
    let line = if let Some(text) = app.typing() {
        Line::from(fmt::truncate(&format!("filter: {text}▏  Enter applies · Esc clears"), w))
    } else if let Overlay::Confirm(c) = app.overlay() {
        Line::from(fmt::truncate(&format!("{}? y/n", c.what), w)).add_modifier(Modifier::REVERSED | Modifier::BOLD)
    } else {
        let mut spans = Vec::new();
        let mut used = 0;
        if app.paused() {
            spans.push(Span::styled("PAUSED", Style::new().add_modifier(Modifier::REVERSED | Modifier::BOLD)));
            spans.push(Span::raw(" "));
            used += 7;
        }
        // Requests still out that the message does not already name (a reload still running
        // after a quicker request was answered), so the operator knows they are coming.
        let shown = app.status().map_or("", |st| st.text.as_str());
        let out: Vec<&str> = app.waiting().iter().map(String::as_str).filter(|w| !shown.contains(w)).collect();
        if !out.is_empty() {
            let text = fmt::truncate(&format!("waiting for the daemon: {}", out.join(", ")), w.saturating_sub(used));
            used += text.chars().count() + 3;
            spans.push(Span::styled(text, Style::new().add_modifier(Modifier::BOLD)));
            spans.push(Span::raw(" · "));
        }
        let room = w.saturating_sub(used);
        match (app.link_error(), app.status()) {
            (Some(e), _) => spans.push(Span::styled(fmt::truncate(&format!("daemon unreachable, retrying: {e}"), room), alert_style())),
            (None, Some(st)) => {
                let style = if st.kind == StatusKind::Error { alert_style() } else { Style::new() };
                spans.push(Span::styled(fmt::truncate(&st.text, room), style));
            }
            (None, None) => spans.push(Span::raw(fmt::truncate(HINT, room)).add_modifier(Modifier::DIM)),
        }
        Line::from(spans)
    };
    frame.render_widget(Paragraph::new(line), area);
}

/// A rectangle of at most `w`×`h` centred in `area`, never outside it.
fn centered(area: Rect, w: u16, h: u16) -> Rect {
    let w = w.min(area.width);
    let h = h.min(area.height);
    Rect { x: area.x + (area.width - w) / 2, y: area.y + (area.height - h) / 2, width: w, height: h }
}

/// The keys, in the order an operator needs them.
pub(crate) const HELP: &[(&str, &str)] = &[
    ("Tab, Shift-Tab, 1-4", "focus alerts, flows, talkers, enforcement"),
    ("↑ ↓ j k PgUp PgDn g G", "move the selection"),
    ("Enter", "inspect the selected row (Esc closes)"),
    ("/ text Enter", "filter alerts, flows, talkers (Esc clears)"),
    ("s", "sort flows: bytes, packets, age, src"),
    ("p", "pause / resume taking snapshots"),
    ("u, then y", "unblock the selected active entry (4)"),
    ("a / d, then y", "approve / deny the selected pending entry"),
    ("b, then y", "block the selected row's source"),
    ("r, then y", "reload the rule files"),
    ("R, then y", "roll the model back to the previous one"),
    ("P, then y", "promote the shadow model"),
    ("R M A D, 1 2 3", "alert kind: rule, ml, anomaly, drift; severity"),
    ("?", "this help"),
    ("q, Ctrl-C", "quit"),
];

fn draw_help(frame: &mut Frame<'_>, area: Rect) {
    let key_w = HELP.iter().map(|(k, _)| k.chars().count()).max().unwrap_or(0);
    let lines: Vec<Line<'static>> = HELP
        .iter()
        .map(|(k, what)| Line::from(vec![Span::raw(fmt::fit(k, key_w)).bold(), Span::raw(format!("  {what}"))]))
        .collect();
    let popup = centered(area, 72, HELP.len() as u16 + 2);
    frame.render_widget(Clear, popup);
    let block = Block::bordered().title(" keys (? or Esc closes) ").bold();
    frame.render_widget(Paragraph::new(lines).block(block), popup);
}

fn ml_lines(ml: &MlVerdict, out: &mut Vec<Line<'static>>) {
    out.push(Line::from(format!("model        {}", ml.model)));
    out.push(Line::from(format!("class        {}", ml.class)));
    out.push(Line::from(format!("probability  {:.3}", ml.probability)));
    out.push(Line::from(match ml.anomaly {
        Some(a) => format!("anomaly      {a:.3}"),
        None => "anomaly      not scored".to_string(),
    }));
    if ml.features.is_empty() {
        out.push(Line::from("no feature attributions"));
    } else {
        out.push(Line::from("top features (value, weight):").bold());
        for (name, value, weight) in &ml.features {
            out.push(Line::from(format!("  {name:<28} {value:>12.3} {weight:>+8.3}")));
        }
    }
}

/// The lines of the detail popup for one inspected row.
pub(crate) fn inspect_lines(item: &Inspected) -> (String, Vec<Line<'static>>) {
    let field = |k: &str, v: String| Line::from(format!("{k:<12} {v}"));
    let opt_ep = |a: Option<std::net::IpAddr>, p: Option<u16>| a.map(|a| fmt::endpoint(a, p)).unwrap_or_else(|| "-".into());
    let mut out = Vec::new();
    let title = match item {
        Inspected::Alert(a) => {
            out.push(Line::from(a.signature.clone()).bold());
            out.push(field("time", a.timestamp.clone()));
            out.push(field("kind", kind_name(a.kind).to_string()));
            out.push(field("sid", format!("{}:{}", a.gid, a.sid)));
            out.push(field("severity", a.severity.to_string()));
            out.push(field("category", a.category.clone().unwrap_or_else(|| "-".into())));
            out.push(field("from", opt_ep(a.src, a.src_port)));
            out.push(field("to", opt_ep(a.dst, a.dst_port)));
            out.push(field("proto", a.proto.clone().unwrap_or_else(|| "-".into())));
            out.push(field("action", a.action.clone()));
            if let Some(rule) = &a.rule {
                out.push(Line::from("rule:").bold());
                out.push(Line::from(rule.clone()));
            }
            if let Some(ml) = &a.ml {
                ml_lines(ml, &mut out);
            }
            if a.rule.is_none() && a.ml.is_none() {
                out.push(Line::from("no rule text or model verdict attached"));
            }
            "alert"
        }
        Inspected::Flow(f) => {
            out.push(field("flow id", f.flow_id.to_string()));
            out.push(field("proto", f.proto.clone()));
            out.push(field("from", fmt::endpoint(f.src, f.src_port)));
            out.push(field("to", fmt::endpoint(f.dst, f.dst_port)));
            out.push(field("app", f.app_proto.clone().unwrap_or_else(|| "-".into())));
            out.push(field("packets", f.packets.to_string()));
            out.push(field("bytes", f.bytes.to_string()));
            out.push(field("age", format!("{:.1}s", f.age_secs)));
            out.push(field("tcp state", f.state.clone().unwrap_or_else(|| "-".into())));
            out.push(field("ml class", f.ml_class.clone().unwrap_or_else(|| "not scored".into())));
            out.push(field("ml score", f.ml_score.map(|s| format!("{s:.3}")).unwrap_or_else(|| "-".into())));
            "flow"
        }
        Inspected::Talker(t) => {
            out.push(field("address", t.addr.to_string()));
            out.push(field("bytes/s", t.bytes_per_sec.to_string()));
            out.push(field("packets/s", t.packets_per_sec.to_string()));
            out.push(field("flows", t.flows.to_string()));
            out.push(Line::from("b blocks this address (after y)"));
            "talker"
        }
        Inspected::Active(a) => {
            out.push(field("address", a.addr.to_string()));
            out.push(field("action", a.action.clone()));
            out.push(field("decision", a.decision.to_string()));
            out.push(field("expires in", if a.expires_in_secs == 0 { "never".into() } else { fmt::duration(a.expires_in_secs) }));
            out.push(field("xdp hits", a.hits.to_string()));
            out.push(field("dry run", a.dry_run.to_string()));
            out.push(Line::from("u unblocks this address (after y)"));
            "active entry"
        }
        Inspected::Pending(p) => {
            out.push(field("request", format!("#{}", p.id)));
            out.push(field("action", p.action.clone()));
            out.push(field("target", p.target.to_string()));
            out.push(field("duration", p.duration_secs.map(fmt::duration).unwrap_or_else(|| "no expiry".into())));
            out.push(field("trigger", p.trigger.clone()));
            out.push(field("waiting", fmt::duration(p.age_secs)));
            out.push(Line::from("a approves, d denies (after y)"));
            "pending approval"
        }
    };
    (title.to_string(), out)
}

fn draw_inspect(frame: &mut Frame<'_>, area: Rect, item: &Inspected, scroll: u16) {
    let (title, lines) = inspect_lines(item);
    // Scrolled no further than the last line, so the popup never goes blank.
    let scroll = scroll.min(lines.len().saturating_sub(1) as u16);
    let popup = centered(area, area.width.saturating_sub(4).max(area.width * 9 / 10), area.height.saturating_sub(2));
    frame.render_widget(Clear, popup);
    let block = Block::bordered().title(format!(" {title} (↑↓ scroll · Esc closes) ")).bold();
    let body = Paragraph::new(lines).block(block).wrap(Wrap { trim: false }).scroll((scroll, 0));
    frame.render_widget(body, popup);
}

/// The console in a terminal too small for the panes: the numbers that matter and a request
/// for more room.
fn draw_compact(frame: &mut Frame<'_>, area: Rect, app: &App) {
    let w = area.width as usize;
    let mut lines: Vec<Line<'static>> = Vec::new();
    match app.snapshot() {
        None => lines.push(Line::from("portcullis: no snapshot yet")),
        Some(s) => {
            lines.push(Line::from(format!("portcullis {}{}", s.source, if app.paused() { " PAUSED" } else { "" })).bold());
            lines.push(Line::from(format!("{} pkt/s · {} alerts", fmt::si(last(s, |t| &t.packets_per_sec)), fmt::si(s.alerts_total))));
            let blocks = Line::from(format!("{} blocks · {} pending", s.enforcement.active.len(), s.enforcement.pending.len()));
            lines.push(if s.enforcement.active.is_empty() { blocks } else { blocks.style(alert_style()) });
        }
    }
    lines.push(Line::from(format!("enlarge to {MIN_WIDTH}×{MIN_HEIGHT} for the panes")).italic());
    let lines = lines.into_iter().map(|l| truncate_line(l, w)).collect::<Vec<_>>();
    frame.render_widget(Paragraph::new(lines), area);
}

fn last(s: &Snapshot, series: impl Fn(&portcullis_api::Traffic) -> &Vec<u64>) -> u64 {
    series(&s.traffic).last().copied().unwrap_or(0)
}

/// A one-span line cut to `w` characters, its style kept.
fn truncate_line(l: Line<'static>, w: usize) -> Line<'static> {
    let text: String = l.spans.iter().map(|s| s.content.as_ref()).collect();
    Line::from(fmt::truncate(&text, w)).style(l.style.patch(l.spans.first().map(|s| s.style).unwrap_or_default()))
}
