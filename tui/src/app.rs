//! The console's state: the latest snapshot and what the operator is doing with it (focus,
//! selections, sort, filter, pause, overlays, a question waiting for y/n). No I/O: keys come
//! in through [`App::on_key`], snapshots through [`App::update`], the daemon's replies through
//! [`App::on_reply`]; what to send comes out as a [`Request`].

use std::net::IpAddr;

use portcullis_api::{ActiveRow, AlertKind, AlertRow, FlowRow, PendingRow, Request, Snapshot, Talker};
use ratatui::crossterm::event::{KeyCode, KeyEvent, KeyEventKind, KeyModifiers};

use crate::fmt;

/// The panes that hold a list the operator can move through, in the order Tab visits them;
/// the number keys 1–4 jump to them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pane {
    Alerts,
    Flows,
    Talkers,
    Enforcement,
}

impl Pane {
    pub const ALL: [Pane; 4] = [Pane::Alerts, Pane::Flows, Pane::Talkers, Pane::Enforcement];

    /// The key that focuses the pane, shown in its title.
    pub fn key(self) -> char {
        match self {
            Pane::Alerts => '1',
            Pane::Flows => '2',
            Pane::Talkers => '3',
            Pane::Enforcement => '4',
        }
    }

    fn index(self) -> usize {
        Pane::ALL.iter().position(|p| *p == self).unwrap_or(0)
    }
}

/// The order of the flows pane, cycled with `s`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FlowSort {
    /// Largest first (the daemon's own order).
    Bytes,
    Packets,
    /// Oldest first.
    Age,
    /// By source address, then port.
    Src,
}

impl FlowSort {
    pub fn name(self) -> &'static str {
        match self {
            FlowSort::Bytes => "bytes",
            FlowSort::Packets => "packets",
            FlowSort::Age => "age",
            FlowSort::Src => "src",
        }
    }

    fn next(self) -> FlowSort {
        match self {
            FlowSort::Bytes => FlowSort::Packets,
            FlowSort::Packets => FlowSort::Age,
            FlowSort::Age => FlowSort::Src,
            FlowSort::Src => FlowSort::Bytes,
        }
    }
}

/// One row of the enforcement pane: active entries first, then the approval queue.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum EnforcementRow<'a> {
    Active(&'a ActiveRow),
    Pending(&'a PendingRow),
}

/// What the detail popup shows: a copy taken when Enter was pressed, so a new snapshot does
/// not change it under the reader.
#[derive(Debug, Clone, PartialEq)]
pub enum Inspected {
    Alert(AlertRow),
    Flow(FlowRow),
    Talker(Talker),
    Active(ActiveRow),
    Pending(PendingRow),
}

/// A request waiting for the operator's y/n.
#[derive(Debug, Clone, PartialEq)]
pub struct Confirm {
    /// `unblock 192.0.2.7`: the question without its `?`, and the name of the request in the
    /// status line once the daemon answers.
    pub what: String,
    pub request: Request,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Overlay {
    None,
    Help,
    /// The detail popup and how far it is scrolled.
    Inspect(Box<Inspected>, u16),
    Confirm(Confirm),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StatusKind {
    Info,
    Error,
}

/// The status line's message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Status {
    pub text: String,
    pub kind: StatusKind,
}

/// A pane's selection: an index into its rows as shown, and the identity of the row there, so
/// that the selection follows the row when new snapshots reorder the list.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct Selection {
    index: usize,
    key: Option<String>,
}

/// Rows a page key moves; the pane heights are the view's business, and ten rows is less
/// than a page at 80×24's largest list and more than one at its smallest.
const PAGE: usize = 10;

#[derive(Debug, Clone)]
pub struct App {
    snapshot: Option<Snapshot>,
    focus: Pane,
    selection: [Selection; 4],
    sort: FlowSort,
    /// The applied filter, lower-cased; empty for none.
    filter: String,
    /// The filter being typed after `/`, while it is.
    typing: Option<String>,
    paused: bool,
    overlay: Overlay,
    status: Option<Status>,
    /// Why the last snapshot could not be taken, while that lasts.
    link_error: Option<String>,
    /// The request [`App::on_key`] just returned, named as in its confirmation, until
    /// [`App::on_sent`] moves it to `waiting`.
    in_flight: Option<String>,
    /// Requests sent and not answered yet, oldest first.
    waiting: Vec<String>,
    /// `by` on the requests this console sends, for the decision log.
    operator: String,
    quit: bool,
}

impl App {
    /// A console with no snapshot yet; `operator` goes in the `by` of every request it makes.
    pub fn new(operator: impl Into<String>) -> App {
        App {
            snapshot: None,
            focus: Pane::Alerts,
            selection: Default::default(),
            sort: FlowSort::Bytes,
            filter: String::new(),
            typing: None,
            paused: false,
            overlay: Overlay::None,
            status: None,
            link_error: None,
            in_flight: None,
            waiting: Vec::new(),
            operator: operator.into(),
            quit: false,
        }
    }

    /// Takes a new snapshot, unless paused (a paused console keeps showing what it froze on).
    pub fn update(&mut self, snapshot: Snapshot) {
        if self.paused {
            return;
        }
        self.snapshot = Some(snapshot);
        self.link_error = None;
        self.reselect_all();
    }

    /// The snapshot could not be taken (the daemon gone, a garbled reply); the console keeps
    /// the last one, marked stale, and says why until a snapshot arrives again.
    pub fn on_link_error(&mut self, error: impl Into<String>) {
        self.link_error = Some(error.into());
    }

    /// The request [`App::on_key`] returned has gone to the daemon: it waits for its answer
    /// under the name returned, which [`App::on_reply`] takes back.
    pub fn on_sent(&mut self) -> String {
        let what = self.in_flight.take().unwrap_or_else(|| "request".into());
        self.waiting.push(what.clone());
        what
    }

    /// Requests sent and not answered yet, oldest first.
    pub fn waiting(&self) -> &[String] {
        &self.waiting
    }

    /// The daemon's answer to the request sent as `what` ([`App::on_sent`]):
    /// `{"ok":true,...}`, `{"ok":false,"error":"..."}`, or the link's own failure.
    pub fn on_reply(&mut self, what: &str, reply: Result<serde_json::Value, String>) {
        if let Some(i) = self.waiting.iter().position(|w| w == what) {
            self.waiting.remove(i);
        }
        self.status = Some(match reply {
            Ok(v) if v.get("ok").and_then(|o| o.as_bool()) == Some(true) => {
                let details = reply_details(&v);
                let text = if details.is_empty() { format!("{what}: ok") } else { format!("{what}: ok ({details})") };
                Status { text, kind: StatusKind::Info }
            }
            Ok(v) => {
                let error = v.get("error").and_then(|e| e.as_str()).map(str::to_string).unwrap_or_else(|| v.to_string());
                Status { text: format!("{what} refused: {error}"), kind: StatusKind::Error }
            }
            Err(e) => Status { text: format!("{what} failed: {e}"), kind: StatusKind::Error },
        });
    }

    /// Handles one key; returns the request to send when the key (after its confirmation)
    /// asks the daemon for something.
    pub fn on_key(&mut self, key: KeyEvent) -> Option<Request> {
        if key.kind == KeyEventKind::Release {
            return None;
        }
        if key.modifiers.contains(KeyModifiers::CONTROL) && matches!(key.code, KeyCode::Char('c')) {
            self.quit = true;
            return None;
        }
        if self.typing.is_some() {
            self.on_filter_key(key);
            return None;
        }
        match std::mem::replace(&mut self.overlay, Overlay::None) {
            Overlay::Confirm(c) => return self.on_confirm_key(key, c),
            Overlay::Help => {
                if !matches!(key.code, KeyCode::Esc | KeyCode::Char('?') | KeyCode::Char('q') | KeyCode::Enter) {
                    self.overlay = Overlay::Help;
                }
                return None;
            }
            Overlay::Inspect(item, scroll) => {
                match key.code {
                    KeyCode::Esc | KeyCode::Enter | KeyCode::Char('q') => {}
                    KeyCode::Down | KeyCode::Char('j') => self.overlay = Overlay::Inspect(item, scroll.saturating_add(1)),
                    KeyCode::Up | KeyCode::Char('k') => self.overlay = Overlay::Inspect(item, scroll.saturating_sub(1)),
                    _ => self.overlay = Overlay::Inspect(item, scroll),
                }
                return None;
            }
            Overlay::None => {}
        }
        match key.code {
            KeyCode::Char('q') => self.quit = true,
            KeyCode::Char('?') => self.overlay = Overlay::Help,
            KeyCode::Tab => self.focus = Pane::ALL[(self.focus.index() + 1) % Pane::ALL.len()],
            KeyCode::BackTab => self.focus = Pane::ALL[(self.focus.index() + Pane::ALL.len() - 1) % Pane::ALL.len()],
            KeyCode::Char(c @ '1'..='4') => {
                if let Some(p) = Pane::ALL.iter().find(|p| p.key() == c) {
                    self.focus = *p;
                }
            }
            KeyCode::Down | KeyCode::Char('j') => self.move_selection(1),
            KeyCode::Up | KeyCode::Char('k') => self.move_selection(-1),
            KeyCode::PageDown => self.move_selection(PAGE as isize),
            KeyCode::PageUp => self.move_selection(-(PAGE as isize)),
            KeyCode::Home | KeyCode::Char('g') => self.move_selection(isize::MIN),
            KeyCode::End | KeyCode::Char('G') => self.move_selection(isize::MAX),
            KeyCode::Char('s') => {
                self.sort = self.sort.next();
                self.reselect(Pane::Flows);
                self.info(format!("flows sorted by {}", self.sort.name()));
            }
            KeyCode::Char('/') => self.typing = Some(self.filter.clone()),
            KeyCode::Esc if !self.filter.is_empty() => self.set_filter(String::new()),
            KeyCode::Char('p') => {
                self.paused = !self.paused;
                self.info(if self.paused { "paused: the view is frozen, p resumes" } else { "resumed" }.into());
            }
            KeyCode::Enter => self.inspect(),
            KeyCode::Char('u') => self.ask_unblock(),
            KeyCode::Char('a') => self.ask_decide(true),
            KeyCode::Char('d') => self.ask_decide(false),
            KeyCode::Char('b') => self.ask_block(),
            KeyCode::Char('r') => {
                self.ask("reload the rule files".into(), Request::ReloadRules);
            }
            KeyCode::Char('R') => match self.snapshot.as_ref().and_then(|s| s.scoring.as_ref()) {
                Some(sc) => match &sc.previous_model {
                    Some(prev) => self.ask(format!("roll the model back to {prev}"), Request::RollbackModel),
                    None => self.error("no previous model to roll back to".into()),
                },
                None => self.error("scoring is off: no model to roll back".into()),
            },
            KeyCode::Char('P') => match self.snapshot.as_ref().and_then(|s| s.scoring.as_ref()).and_then(|s| s.shadow.as_ref()) {
                Some(sh) => self.ask(format!("promote the shadow model {}", sh.model), Request::PromoteShadow),
                None => self.error("no shadow model to promote".into()),
            },
            _ => {}
        }
        None
    }

    fn on_filter_key(&mut self, key: KeyEvent) {
        let Some(text) = self.typing.as_mut() else { return };
        match key.code {
            KeyCode::Enter => {
                let text = std::mem::take(text);
                self.typing = None;
                self.set_filter(text);
            }
            KeyCode::Esc => {
                self.typing = None;
                self.set_filter(String::new());
            }
            KeyCode::Backspace => {
                text.pop();
            }
            KeyCode::Char(c) => text.push(c),
            _ => {}
        }
    }

    fn on_confirm_key(&mut self, key: KeyEvent, confirm: Confirm) -> Option<Request> {
        match key.code {
            KeyCode::Char('y') | KeyCode::Char('Y') => {
                self.info(format!("{}: sent, waiting for the daemon", confirm.what));
                self.in_flight = Some(confirm.what);
                Some(confirm.request)
            }
            KeyCode::Char('n') | KeyCode::Char('N') | KeyCode::Esc | KeyCode::Char('q') => {
                self.info(format!("{}: cancelled", confirm.what));
                None
            }
            _ => {
                self.overlay = Overlay::Confirm(confirm);
                None
            }
        }
    }

    fn set_filter(&mut self, text: String) {
        self.filter = text.trim().to_lowercase();
        self.reselect_all();
        if self.filter.is_empty() {
            self.info("filter cleared".into());
        } else {
            self.info(format!("filter '{}' on alerts, flows and talkers; Esc clears", self.filter));
        }
    }

    fn ask(&mut self, what: String, request: Request) {
        self.overlay = Overlay::Confirm(Confirm { what, request });
    }

    fn by(&self) -> Option<String> {
        Some(self.operator.clone())
    }

    fn ask_unblock(&mut self) {
        if self.focus != Pane::Enforcement {
            return self.error("unblock: focus the enforcement pane (4) and select an active entry".into());
        }
        match self.selected_enforcement() {
            Some(EnforcementRow::Active(a)) => {
                let addr = a.addr.to_string();
                let what = format!("unblock {addr}");
                let request = Request::Unblock { addr, by: self.by() };
                self.ask(what, request);
            }
            Some(EnforcementRow::Pending(_)) => self.error("unblock: that entry awaits approval; a approves, d denies".into()),
            None => self.error("unblock: no active blocks".into()),
        }
    }

    fn ask_decide(&mut self, approve: bool) {
        let verb = if approve { "approve" } else { "deny" };
        if self.focus != Pane::Enforcement {
            return self.error(format!("{verb}: focus the enforcement pane (4) and select a pending entry"));
        }
        match self.selected_enforcement() {
            Some(EnforcementRow::Pending(p)) => {
                let what = format!("{verb} #{} {} {}", p.id, p.action, p.target);
                let (id, by) = (p.id, self.by());
                let request = if approve { Request::Approve { id, by } } else { Request::Deny { id, by } };
                self.ask(what, request);
            }
            Some(EnforcementRow::Active(_)) => self.error(format!("{verb}: that entry is already active; u unblocks it")),
            None => self.error(format!("{verb}: the approval queue is empty")),
        }
    }

    /// `b` blocks the source of the selected alert, flow or talker, for the daemon's default
    /// duration and action.
    fn ask_block(&mut self) {
        let addr: Option<IpAddr> = match self.focus {
            Pane::Alerts => self.selected_alert().and_then(|a| a.src),
            Pane::Flows => self.selected_flow().map(|f| f.src),
            Pane::Talkers => self.selected_talker().map(|t| t.addr),
            Pane::Enforcement => match self.selected_enforcement() {
                Some(EnforcementRow::Pending(p)) => Some(p.target),
                _ => None,
            },
        };
        match addr {
            Some(addr) => {
                let request = Request::Block { addr: addr.to_string(), for_secs: None, action: None, by: self.by() };
                self.ask(format!("block {addr}"), request);
            }
            None => self.error("block: select an alert, flow or talker with a source address".into()),
        }
    }

    fn inspect(&mut self) {
        let item = match self.focus {
            Pane::Alerts => self.selected_alert().cloned().map(Inspected::Alert),
            Pane::Flows => self.selected_flow().cloned().map(Inspected::Flow),
            Pane::Talkers => self.selected_talker().cloned().map(Inspected::Talker),
            Pane::Enforcement => self.selected_enforcement().map(|r| match r {
                EnforcementRow::Active(a) => Inspected::Active(a.clone()),
                EnforcementRow::Pending(p) => Inspected::Pending(p.clone()),
            }),
        };
        match item {
            Some(item) => self.overlay = Overlay::Inspect(Box::new(item), 0),
            None => self.info("nothing selected to inspect".into()),
        }
    }

    fn info(&mut self, text: String) {
        self.status = Some(Status { text, kind: StatusKind::Info });
    }

    fn error(&mut self, text: String) {
        self.status = Some(Status { text, kind: StatusKind::Error });
    }

    // ---- selection ----------------------------------------------------------------------

    fn row_keys(&self, pane: Pane) -> Vec<String> {
        match pane {
            Pane::Alerts => self.alerts().iter().map(|a| alert_key(a)).collect(),
            Pane::Flows => self.flows().iter().map(|f| f.flow_id.to_string()).collect(),
            Pane::Talkers => self.talkers().iter().map(|t| t.addr.to_string()).collect(),
            Pane::Enforcement => self
                .enforcement()
                .iter()
                .map(|r| match r {
                    EnforcementRow::Active(a) => format!("a{}", a.addr),
                    EnforcementRow::Pending(p) => format!("p{}", p.id),
                })
                .collect(),
        }
    }

    /// Puts the pane's selection back on the row it was on, or as near its old index as the
    /// new rows allow.
    fn reselect(&mut self, pane: Pane) {
        let keys = self.row_keys(pane);
        let sel = &mut self.selection[pane.index()];
        if let Some(i) = sel.key.as_ref().and_then(|k| keys.iter().position(|x| x == k)) {
            sel.index = i;
        } else {
            sel.index = sel.index.min(keys.len().saturating_sub(1));
            sel.key = keys.get(sel.index).cloned();
        }
    }

    fn reselect_all(&mut self) {
        for p in Pane::ALL {
            self.reselect(p);
        }
    }

    fn move_selection(&mut self, by: isize) {
        let keys = self.row_keys(self.focus);
        let sel = &mut self.selection[self.focus.index()];
        let last = keys.len().saturating_sub(1);
        sel.index = sel.index.saturating_add_signed(by).min(last);
        sel.key = keys.get(sel.index).cloned();
    }

    /// The index of the selected row in the pane's rows as shown.
    pub fn selected(&self, pane: Pane) -> usize {
        self.selection[pane.index()].index
    }

    fn selected_alert(&self) -> Option<&AlertRow> {
        self.alerts().get(self.selected(Pane::Alerts)).copied()
    }

    fn selected_flow(&self) -> Option<&FlowRow> {
        self.flows().get(self.selected(Pane::Flows)).copied()
    }

    fn selected_talker(&self) -> Option<&Talker> {
        self.talkers().get(self.selected(Pane::Talkers)).copied()
    }

    fn selected_enforcement(&self) -> Option<EnforcementRow<'_>> {
        self.enforcement().get(self.selected(Pane::Enforcement)).copied()
    }

    // ---- rows as shown --------------------------------------------------------------------

    /// Alerts newest first, filtered.
    pub fn alerts(&self) -> Vec<&AlertRow> {
        let Some(s) = &self.snapshot else { return Vec::new() };
        s.alerts.iter().rev().filter(|a| self.matches(&alert_text(a))).collect()
    }

    /// Flows in the chosen order, filtered.
    pub fn flows(&self) -> Vec<&FlowRow> {
        let Some(s) = &self.snapshot else { return Vec::new() };
        let mut rows: Vec<&FlowRow> = s.flows.iter().filter(|f| self.matches(&flow_text(f))).collect();
        match self.sort {
            FlowSort::Bytes => rows.sort_by_key(|f| std::cmp::Reverse(f.bytes)),
            FlowSort::Packets => rows.sort_by_key(|f| std::cmp::Reverse(f.packets)),
            FlowSort::Age => rows.sort_by(|a, b| b.age_secs.total_cmp(&a.age_secs)),
            FlowSort::Src => rows.sort_by_key(|f| (f.src, f.src_port)),
        }
        rows
    }

    /// Top talkers in the daemon's order, filtered.
    pub fn talkers(&self) -> Vec<&Talker> {
        let Some(s) = &self.snapshot else { return Vec::new() };
        s.top_talkers.iter().filter(|t| self.matches(&t.addr.to_string())).collect()
    }

    /// Active entries, then pending ones; the filter does not hide enforcement.
    pub fn enforcement(&self) -> Vec<EnforcementRow<'_>> {
        let Some(s) = &self.snapshot else { return Vec::new() };
        let e = &s.enforcement;
        e.active.iter().map(EnforcementRow::Active).chain(e.pending.iter().map(EnforcementRow::Pending)).collect()
    }

    fn matches(&self, text: &str) -> bool {
        self.filter.is_empty() || text.to_lowercase().contains(&self.filter)
    }

    // ---- read access for the view ---------------------------------------------------------

    pub fn snapshot(&self) -> Option<&Snapshot> {
        self.snapshot.as_ref()
    }

    pub fn focus(&self) -> Pane {
        self.focus
    }

    pub fn sort(&self) -> FlowSort {
        self.sort
    }

    /// The applied filter, empty for none.
    pub fn filter(&self) -> &str {
        &self.filter
    }

    /// The filter being typed, while it is.
    pub fn typing(&self) -> Option<&str> {
        self.typing.as_deref()
    }

    pub fn paused(&self) -> bool {
        self.paused
    }

    pub fn overlay(&self) -> &Overlay {
        &self.overlay
    }

    pub fn status(&self) -> Option<&Status> {
        self.status.as_ref()
    }

    pub fn link_error(&self) -> Option<&str> {
        self.link_error.as_deref()
    }

    /// Whether the loop should take snapshots (it should not while paused).
    pub fn wants_snapshots(&self) -> bool {
        !self.paused
    }

    pub fn should_quit(&self) -> bool {
        self.quit
    }
}

fn alert_key(a: &AlertRow) -> String {
    format!("{}|{}|{}|{:?}|{:?}", a.timestamp, a.sid, a.signature, a.src, a.src_port)
}

pub(crate) fn kind_name(k: AlertKind) -> &'static str {
    match k {
        AlertKind::Rule => "rule",
        AlertKind::Ml => "ml",
        AlertKind::Anomaly => "anomaly",
        AlertKind::Drift => "drift",
    }
}

/// What the filter searches in an alert: its kind, signature, sid, category, endpoints,
/// protocol, action and the model's class.
fn alert_text(a: &AlertRow) -> String {
    let mut t = format!("{} {} sid:{} {} {}", kind_name(a.kind), a.signature, a.sid, a.action, a.category.as_deref().unwrap_or(""));
    if let Some(src) = a.src {
        t += &format!(" {}", fmt::endpoint(src, a.src_port));
    }
    if let Some(dst) = a.dst {
        t += &format!(" {}", fmt::endpoint(dst, a.dst_port));
    }
    if let Some(p) = &a.proto {
        t += &format!(" {p}");
    }
    if let Some(ml) = &a.ml {
        t += &format!(" {} {}", ml.class, ml.model);
    }
    t
}

/// What the filter searches in a flow: protocol, both endpoints, app protocol, TCP state and
/// the model's class.
fn flow_text(f: &FlowRow) -> String {
    format!(
        "{} {} {} {} {} {} {}",
        f.proto,
        fmt::endpoint(f.src, f.src_port),
        fmt::endpoint(f.dst, f.dst_port),
        f.app_proto.as_deref().unwrap_or(""),
        f.state.as_deref().unwrap_or(""),
        f.ml_class.as_deref().unwrap_or(""),
        f.flow_id,
    )
}

/// The scalar fields of an `ok` reply other than `ok` itself, as `key=value`.
fn reply_details(v: &serde_json::Value) -> String {
    let Some(m) = v.as_object() else { return String::new() };
    m.iter()
        .filter(|(k, _)| k.as_str() != "ok")
        .filter_map(|(k, v)| match v {
            serde_json::Value::String(s) => Some(format!("{k}={s}")),
            serde_json::Value::Number(n) => Some(format!("{k}={n}")),
            serde_json::Value::Bool(b) => Some(format!("{k}={b}")),
            _ => None,
        })
        .collect::<Vec<_>>()
        .join(" ")
}
