//! Render tests (every pane drawn into ratatui's TestBackend, compared as text, in its empty,
//! normal and overflowing states), key tests, and the session loop against a fake link.

use std::time::{Duration, Instant};

use portcullis_api::{Drift, Request, Snapshot};
use ratatui::backend::TestBackend;
use ratatui::buffer::Buffer;
use ratatui::crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use ratatui::layout::Rect;
use ratatui::style::Color;
use ratatui::Frame;
use ratatui::Terminal;

use crate::app::{App, Overlay, Pane, StatusKind};
use crate::term::Session;
use crate::testdata::*;
use crate::{view, Link, Reply};

// ---- helpers --------------------------------------------------------------------------------

fn lines(buf: &Buffer) -> Vec<String> {
    let area = buf.area;
    (0..area.height)
        .map(|y| (0..area.width).map(|x| buf.cell((x, y)).map(|c| c.symbol()).unwrap_or(" ")).collect::<String>())
        .collect()
}

fn draw_buffer(app: &App, w: u16, h: u16) -> Buffer {
    let mut t = Terminal::new(TestBackend::new(w, h)).unwrap();
    t.draw(|f| view::draw(f, app)).unwrap();
    t.backend().buffer().clone()
}

fn render(app: &App, w: u16, h: u16) -> Vec<String> {
    lines(&draw_buffer(app, w, h))
}

type PaneFn = fn(&mut Frame<'_>, Rect, &App);

fn pane_buffer(pane: PaneFn, app: &App, w: u16, h: u16) -> Buffer {
    let mut t = Terminal::new(TestBackend::new(w, h)).unwrap();
    t.draw(|f| pane(f, f.area(), app)).unwrap();
    t.backend().buffer().clone()
}

fn render_pane(pane: PaneFn, app: &App, w: u16, h: u16) -> Vec<String> {
    lines(&pane_buffer(pane, app, w, h))
}

fn app(s: Option<Snapshot>) -> App {
    let mut a = App::new("test");
    if let Some(s) = s {
        a.update(s);
    }
    a
}

fn key(c: char) -> KeyEvent {
    KeyEvent::new(KeyCode::Char(c), KeyModifiers::NONE)
}

fn code(c: KeyCode) -> KeyEvent {
    KeyEvent::new(c, KeyModifiers::NONE)
}

/// Feeds keys given as text (`"4uy"`), returning the requests they produced.
fn keys(app: &mut App, text: &str) -> Vec<Request> {
    text.chars().filter_map(|c| app.on_key(key(c))).collect()
}

fn assert_lines(got: &[String], want: &[&str]) {
    assert_eq!(got, want, "\ngot:\n{}\nwant:\n{}", got.join("\n"), want.join("\n"));
}

fn contains(got: &[String], needle: &str) -> bool {
    got.iter().any(|l| l.contains(needle))
}

fn line_with<'a>(got: &'a [String], needle: &str) -> &'a str {
    got.iter().find(|l| l.contains(needle)).unwrap_or_else(|| panic!("no line with {needle:?} in\n{}", got.join("\n")))
}

/// The foreground colour of the first cell of the row that shows `needle`.
fn fg_of(buf: &Buffer, needle: &str) -> Color {
    let got = lines(buf);
    let y = got.iter().position(|l| l.contains(needle)).unwrap_or_else(|| panic!("no {needle:?}"));
    let x = got[y].chars().position(|c| c == needle.chars().next().unwrap()).unwrap();
    buf.cell((x as u16, y as u16)).unwrap().fg
}

// ---- traffic --------------------------------------------------------------------------------

#[test]
fn traffic_pane_before_any_snapshot_and_when_empty() {
    assert_lines(
        &render_pane(view::draw_traffic, &app(None), 30, 4),
        &["┌ traffic ───────────────────┐", "│no snapshot yet             │", "│                            │", "└────────────────────────────┘"],
    );
    assert_lines(
        &render_pane(view::draw_traffic, &app(Some(empty())), 34, 7),
        &[
            "┌ traffic · run · up 0s ─────────┐",
            "│pkt/s  no samples yet          0│",
            "│bit/s  no samples yet          0│",
            "│drop/s no samples yet          0│",
            "│no drops                        │",
            "│total 0 pkts · 0B               │",
            "└────────────────────────────────┘",
        ],
    );
}

#[test]
fn traffic_pane_draws_the_newest_samples_and_drops_by_reason() {
    let got = render_pane(view::draw_traffic, &app(Some(realistic())), 60, 7);
    assert!(got[0].starts_with("┌ traffic · run · up 1h02m "), "{}", got[0]);
    // The ramp's largest sample is the newest, so each line ends in a full bar and "now".
    assert!(got[1].starts_with("│pkt/s  ") && got[1].ends_with("█  34.6k│"), "{}", got[1]);
    assert!(got[2].starts_with("│bit/s  ") && got[2].ends_with("█   283M│"), "{}", got[2]);
    assert!(got[3].starts_with("│drop/s ") && got[3].ends_with("        0│"), "{}", got[3]);
    assert_eq!(got[4], "│drops ring 310 · rule 42 · blocklist 17                   │");
    assert_eq!(got[5], "│total 44.0M pkts · 36.0GB                                 │");

    // Old traffic then silence: the line must end in blanks, not show the old peak.
    let mut s = realistic();
    s.traffic.packets_per_sec = [vec![100; 100], vec![0; 5]].concat();
    let got = render_pane(view::draw_traffic, &app(Some(s)), 40, 7);
    // 24 bars: 19 of the old peak, then five empty ones for the silent seconds.
    assert_eq!(got[1], format!("│pkt/s  {}{}      0│", "█".repeat(19), " ".repeat(5)));
}

#[test]
fn traffic_pane_overflowing() {
    let a = app(Some(overflowing()));
    let got = render_pane(view::draw_traffic, &a, 34, 6);
    assert!(got[1].ends_with("█    999│"), "{}", got[1]);
    assert!(got[2].ends_with("██ 18447P│"), "{}", got[2]);
    assert_eq!(got[4], "│drops decoder.event.ipv4.reason…│");
    // Drops now: the drop line is red.
    let mut s = realistic();
    s.traffic.drops_per_sec.push(9);
    let buf = pane_buffer(view::draw_traffic, &app(Some(s)), 34, 6);
    let y = 3;
    assert_eq!(buf.cell((32u16, y)).unwrap().symbol(), "9");
    assert_eq!(buf.cell((32u16, y)).unwrap().fg, Color::Red);
    assert_eq!(buf.cell((32u16, 1)).unwrap().fg, Color::Reset);
}

// ---- capture ----------------------------------------------------------------------------------

#[test]
fn capture_pane_empty_normal_and_passive() {
    assert_lines(
        &render_pane(view::draw_capture, &app(Some(empty())), 24, 4),
        &["┌ capture ─────────────┐", "│no capture yet        │", "│                      │", "└──────────────────────┘"],
    );
    assert_lines(
        &render_pane(view::draw_capture, &app(Some(realistic())), 32, 6),
        &[
            "┌ capture · af-xdp ────────────┐",
            "│inline · fail-open            │",
            "│eth1 q0             6.1k/s d:0│",
            "│eth1 q1      5.9k/s d:310 q:12│",
            "│                              │",
            "└──────────────────────────────┘",
        ],
    );
    let mut s = realistic();
    s.capture.mode = "file".into();
    s.capture.inline = false;
    s.capture.ports.truncate(1);
    let got = render_pane(view::draw_capture, &app(Some(s)), 32, 5);
    assert_eq!(got[0], "┌ capture · file ──────────────┐");
    assert_eq!(got[1], "│passive (copies only)         │");
}

#[test]
fn capture_pane_overflowing() {
    let buf = pane_buffer(view::draw_capture, &app(Some(overflowing())), 24, 6);
    assert_lines(
        &lines(&buf),
        &[
            "┌ capture · af-xdp ────┐",
            "│inline · fail-open    │",
            "│events lost 12        │",
            "│enp5s0f1np1 q… 0/s d:0│",
            "│enp5s0f… 1.0M/s d:1.0k│",
            "└───────────── 14 more ┘",
        ],
    );
    assert_eq!(fg_of(&buf, "events lost"), Color::Red);
}

// ---- scoring ----------------------------------------------------------------------------------

#[test]
fn scoring_pane_off_and_on() {
    assert_lines(
        &render_pane(view::draw_scoring, &app(Some(empty())), 26, 6),
        &[
            "┌ scoring ───────────────┐",
            "│scoring: off            │",
            "│drift: off              │",
            "│rules: none loaded      │",
            "│                        │",
            "└────────────────────────┘",
        ],
    );
    assert_lines(
        &render_pane(view::draw_scoring, &app(Some(realistic())), 44, 8),
        &[
            "┌ scoring ─────────────────────────────────┐",
            "│cpu · cicids2017 v3                       │",
            "│p50 410µs · p99 1.2ms                     │",
            "│batch 31 · 48.2k flows                    │",
            "│drift PSI 0.12 Flow IAT Mean (>0.25 alert…│",
            "│rules 31.2k loaded · 0 failed             │",
            "│previous cicids2017 v2 (R rolls back)     │",
            "└──────────────────────────────────────────┘",
        ],
    );
    let mut s = realistic();
    s.drift = Some(Drift { unavailable: Some("the model ships no training histograms".into()), ..Drift::default() });
    let got = render_pane(view::draw_scoring, &app(Some(s)), 44, 8);
    assert_eq!(got[4], "│drift unavailable: the model ships no tra…│");
    let mut s = realistic();
    s.drift.as_mut().unwrap().features[0].1 = 0.4;
    let buf = pane_buffer(view::draw_scoring, &app(Some(s)), 60, 8);
    assert_eq!(fg_of(&buf, "drift PSI 0.40"), Color::Red);
}

#[test]
fn scoring_pane_overflowing() {
    let got = render_pane(view::draw_scoring, &app(Some(overflowing())), 24, 6);
    assert_lines(
        &got,
        &[
            "┌ scoring ─────────────┐",
            "│cpu · cicids2017 v3   │",
            "│cuda requested but no…│",
            "│p50 410µs · p99 1.2ms │",
            "│batch 31 · 48.2k flows│",
            "└────────────── 5 more ┘",
        ],
    );
    let got = render_pane(view::draw_scoring, &app(Some(overflowing())), 60, 11);
    assert!(contains(&got, "shadow cicids2017 v4-candidate agree 98.1%"));
    assert!(contains(&got, "rules 31.2k loaded · 3 failed"));
    assert!(contains(&got, "reload refused: et.rules:12: unknown keyword 'foo'"));
}

// ---- alerts -----------------------------------------------------------------------------------

#[test]
fn alerts_pane_empty_and_filtered_empty() {
    assert_lines(
        &render_pane(view::draw_alerts, &app(Some(empty())), 30, 4),
        &["┌ [1] alerts · 0 total ──────┐", "│no alerts yet               │", "│                            │", "└────────────────────────────┘"],
    );
    let mut a = app(Some(realistic()));
    keys(&mut a, "/zzz");
    a.on_key(code(KeyCode::Enter));
    let got = render_pane(view::draw_alerts, &a, 50, 4);
    assert_eq!(got[0], "┌ [1] alerts · /zzz · 3 total ───────────────────┐");
    assert_eq!(got[1], "│no alerts match 'zzz'                           │");
}

#[test]
fn alerts_pane_newest_first_with_severity_and_selection() {
    let a = app(Some(realistic()));
    let buf = pane_buffer(view::draw_alerts, &a, 60, 6);
    assert_lines(
        &lines(&buf),
        &[
            "┌ [1] alerts · 3 total ────────────────────────────────────┐",
            "│12:00:03 R1 GPL ATTACK_RESPONSE id check returne… 10.0.0.1│",
            "│12:00:02 M2 ML PortScan 0.97                   203.0.113.9│",
            "│12:00:01 R2 ET SCAN Potential SSH Scan         203.0.113.9│",
            "│                                                          │",
            "└──────────────────────────────────────────────────────────┘",
        ],
    );
    // Severity 1 is red, the rest are not; the focused pane's selection is reversed.
    assert_eq!(fg_of(&buf, "12:00:03"), Color::Red);
    assert_eq!(fg_of(&buf, "12:00:02"), Color::Reset);
    let reversed = |b: &Buffer, y: u16| b.cell((3, y)).unwrap().modifier.contains(ratatui::style::Modifier::REVERSED);
    assert!(reversed(&buf, 1) && !reversed(&buf, 2));
    let mut a = a;
    a.on_key(key('j'));
    let buf = pane_buffer(view::draw_alerts, &a, 60, 6);
    assert!(!reversed(&buf, 1) && reversed(&buf, 2));
    // Unfocused, no row is highlighted.
    a.on_key(key('2'));
    let buf = pane_buffer(view::draw_alerts, &a, 60, 6);
    assert!(!reversed(&buf, 1) && !reversed(&buf, 2));
}

#[test]
fn alerts_pane_overflowing_scrolls_and_counts() {
    let mut a = app(Some(overflowing()));
    let got = render_pane(view::draw_alerts, &a, 40, 6);
    assert_lines(
        &got,
        &[
            "┌ [1] alerts · 1000000 total ──────────┐",
            "│12:03:19 R3 ET EXPLOIT Something with…│",
            "│12:03:18 R3 ET EXPLOIT Something with…│",
            "│12:03:17 R3 ET EXPLOIT Something with…│",
            "│12:03:16 R3 ET EXPLOIT Something with…│",
            "└──────────────────────────── 196 more ┘",
        ],
    );
    a.on_key(code(KeyCode::End));
    let got = render_pane(view::draw_alerts, &a, 40, 6);
    assert_eq!(got[4], "│12:00:00 R3 ET EXPLOIT Something with…│");
    assert_eq!(got[5], "└─────────────────────────── 196 above ┘");
    a.on_key(code(KeyCode::PageUp));
    let got = render_pane(view::draw_alerts, &a, 40, 6);
    assert_eq!(got[5], "└───────────────── 186 above · 10 more ┘");
}

// ---- flows ------------------------------------------------------------------------------------

#[test]
fn flows_pane_empty_normal_and_sorted() {
    assert_lines(
        &render_pane(view::draw_flows, &app(Some(empty())), 44, 4),
        &[
            "┌ [2] flows · 0 of 0 · sort bytes (s) ─────┐",
            "│no active flows                           │",
            "│                                          │",
            "└──────────────────────────────────────────┘",
        ],
    );
    let mut a = app(Some(realistic()));
    a.on_key(key('2'));
    let got = render_pane(view::draw_flows, &a, 62, 7);
    assert_lines(
        &got,
        &[
            "┌ [2] flows · 4 of 1204 · sort bytes (s) ────────────────────┐",
            "│pro  src          →dst                   bytes   pkts    age│",
            "│TCP  192.168.1.20 →93.184.216.34:443    12.4MB   9.1k  5m40s│",
            "│TCP  192.168.1.21 →151.101.1.69:443      2.3MB   2.0k  1m01s│",
            "│TCP  203.0.113.9  →10.0.0.1:22           2.4kB     40     3s│",
            "│UDP  192.168.1.22 →1.1.1.1:53             180B      2     0s│",
            "└────────────────────────────────────────────────────────────┘",
        ],
    );
    // s cycles bytes → packets → age → src; each order shows in the rows and the title.
    let firsts = |a: &App| render_pane(view::draw_flows, a, 62, 7)[2].chars().skip(6).take(12).collect::<String>();
    a.on_key(key('s'));
    assert!(render_pane(view::draw_flows, &a, 62, 7)[0].contains("sort packets"));
    assert_eq!(firsts(&a), "192.168.1.20");
    a.on_key(key('s'));
    assert!(render_pane(view::draw_flows, &a, 62, 7)[0].contains("sort age"));
    assert_eq!(firsts(&a), "192.168.1.20");
    let got = render_pane(view::draw_flows, &a, 62, 7);
    assert!(got[5].contains("192.168.1.22"), "the youngest flow is last: {}", got[5]);
    a.on_key(key('s'));
    let got = render_pane(view::draw_flows, &a, 62, 7);
    assert!(got[0].contains("sort src"));
    assert!(got[2].contains("192.168.1.20") && got[5].contains("203.0.113.9"), "{got:?}");
}

#[test]
fn flows_pane_wide_shows_more_columns_and_overflow_counts() {
    let a = app(Some(realistic()));
    let got = render_pane(view::draw_flows, &a, 112, 7);
    assert!(got[1].contains("app") && got[1].contains("ml") && got[1].contains("state"), "{}", got[1]);
    assert!(line_with(&got, "203.0.113.9:40000").contains("PortScan 0.97"));
    assert!(line_with(&got, "192.168.1.20:51000").contains("established"));

    let got = render_pane(view::draw_flows, &app(Some(overflowing())), 44, 6);
    assert_eq!(got[0], "┌ [2] flows · 300 of 2000000 · sort bytes (┐");
    assert_eq!(got[2], "│TCP  2001:db8:aaaa… →[2001:db8:11…   1.0MB│");
    assert_eq!(got[5], "└──────────────────────────────── 297 more ┘");
}

// ---- talkers ----------------------------------------------------------------------------------

#[test]
fn talkers_pane_empty_normal_overflowing() {
    assert_lines(
        &render_pane(view::draw_talkers, &app(Some(empty())), 30, 3),
        &["┌ [3] top talkers ───────────┐", "│no traffic yet              │", "└────────────────────────────┘"],
    );
    assert_lines(
        &render_pane(view::draw_talkers, &app(Some(realistic())), 48, 5),
        &[
            "┌ [3] top talkers ─────────────────────────────┐",
            "│192.168.1.20           1.2MB/s   900p/s   12fl│",
            "│203.0.113.9           40.0kB/s   650p/s  310fl│",
            "│192.168.1.22           3.0kB/s    20p/s    4fl│",
            "└──────────────────────────────────────────────┘",
        ],
    );
    assert_lines(
        &render_pane(view::draw_talkers, &app(Some(overflowing())), 32, 4),
        &["┌ [3] top talkers ─────────────┐", "│2001:db8:aaaa:bbbb…  18447PB/s│", "│2001:db8:aaaa:bbbb…  18447PB/s│", "└───────────────────── 48 more ┘"],
    );
}

// ---- enforcement ------------------------------------------------------------------------------

#[test]
fn enforcement_pane_says_why_nothing_is_enforced() {
    let e = |s: Snapshot, w| render_pane(view::draw_enforcement, &app(Some(s)), w, 4);
    assert_eq!(render_pane(view::draw_enforcement, &app(None), 40, 4)[1], "│no snapshot yet                       │");
    assert_eq!(e(empty(), 40)[1], "│enforcement off: no policy            │");
    let mut s = empty();
    s.enforcement.mode = "enforce".into();
    assert_eq!(e(s.clone(), 50)[1], "│no active blocks · approval queue empty         │");
    s.enforcement.nft_missing = Some("no CAP_NET_ADMIN".into());
    assert_eq!(e(s.clone(), 50)[1], "│nftables not enforcing: no CAP_NET_ADMIN        │");
    // With rows, the reason stays on top as a header.
    s.enforcement.active.push(active("192.0.2.7", "block", 60, 0));
    let got = e(s, 50);
    assert_eq!(got[1], "│nftables not enforcing: no CAP_NET_ADMIN        │");
    assert_eq!(got[2], "│BLOCK 192.0.2.7 1m00s left · 0 hits             │");
}

#[test]
fn enforcement_pane_normal_and_overflowing() {
    let mut a = app(Some(realistic()));
    a.on_key(key('4'));
    let buf = pane_buffer(view::draw_enforcement, &a, 72, 6);
    assert_lines(
        &lines(&buf),
        &[
            "┌ [4] enforcement · mode enforce ──────────────────────────────────────┐",
            "│BLOCK 203.0.113.9 9m12s left · 1.2k hits                              │",
            "│RATE-LIMIT 198.51.100.77 1h00m left · 0 hits                          │",
            "│pending #4 block 198.51.100.4 for 10m00s · sid 2100498 · 1m35s ago    │",
            "│                                                                      │",
            "└ 2 active · 1 pending ────────────────────────────────────────────────┘",
        ],
    );
    assert_eq!(fg_of(&buf, "BLOCK 203"), Color::Red);
    assert_eq!(fg_of(&buf, "pending #4"), Color::Yellow);
    // A dry-run entry blocks nothing and is not painted as a block.
    let mut s = realistic();
    s.enforcement.active[0].dry_run = true;
    let buf = pane_buffer(view::draw_enforcement, &app(Some(s)), 72, 6);
    assert!(lines(&buf)[1].contains("· dry-run"));
    assert_eq!(fg_of(&buf, "BLOCK 203"), Color::Reset);

    let got = render_pane(view::draw_enforcement, &app(Some(overflowing())), 48, 5);
    assert_lines(
        &got,
        &[
            "┌ [4] enforcement · mode enforce ──────────────┐",
            "│BLOCK 198.51.100.0 30d00h left · 18447P hits  │",
            "│BLOCK 198.51.100.1 30d00h left · 18447P hits  │",
            "│BLOCK 198.51.100.2 30d00h left · 18447P hits  │",
            "└ 40 active · 20 pending ───────────── 57 more ┘",
        ],
    );
    let mut a = app(Some(overflowing()));
    a.on_key(key('4'));
    a.on_key(code(KeyCode::End));
    let got = render_pane(view::draw_enforcement, &a, 48, 5);
    assert_eq!(got[3], "│pending #119 block 192.0.2.19 for 10m00s · ET…│");
}

// ---- status line and overlays -----------------------------------------------------------------

#[test]
fn status_line_shows_hints_pause_prompts_and_errors() {
    let st = |a: &App| render_pane(view::draw_status, a, 60, 1)[0].clone();
    let mut a = app(Some(realistic()));
    assert_eq!(st(&a), "? help · q quit · Tab/1-4 focus · Enter inspect · / filter …");
    a.on_key(key('p'));
    assert_eq!(st(&a), "PAUSED paused: the view is frozen, p resumes                ");
    a.on_key(key('p'));
    keys(&mut a, "4u");
    assert_eq!(st(&a), "unblock 203.0.113.9? y/n                                    ");
    a.on_key(key('n'));
    assert_eq!(st(&a), "unblock 203.0.113.9: cancelled                              ");
    keys(&mut a, "/ssh");
    assert_eq!(st(&a), "filter: ssh▏  Enter applies · Esc clears                    ");
    a.on_key(code(KeyCode::Esc));
    a.on_link_error("connect /run/portcullis.sock: connection refused");
    assert_eq!(st(&a), "daemon unreachable, retrying: connect /run/portcullis.sock:…");
    let buf = pane_buffer(view::draw_status, &a, 60, 1);
    assert_eq!(buf.cell((0, 0)).unwrap().fg, Color::Red);
    a.update(realistic());
    keys(&mut a, "4uy");
    let what = a.on_sent();
    a.on_reply(&what, Ok(serde_json::json!({"ok": false, "error": "192.0.2.7 is not blocked"})));
    assert_eq!(st(&a), "unblock 203.0.113.9 refused: 192.0.2.7 is not blocked       ");
}

#[test]
fn help_overlay_lists_the_keys() {
    let mut a = app(Some(realistic()));
    a.on_key(key('?'));
    let got = render(&a, 80, 24);
    assert!(contains(&got, " keys (? or Esc closes) "));
    for (k, what) in view::HELP {
        assert!(contains(&got, k) && contains(&got, what), "help misses {k}: {what}");
    }
    assert!(line_with(&got, "u, then y").contains("unblock the selected active entry (4)"));
    a.on_key(key('?'));
    assert!(!contains(&render(&a, 80, 24), " keys (? or Esc closes) "));
}

#[test]
fn inspect_shows_the_rule_text_or_the_model_verdict() {
    let mut a = app(Some(realistic()));
    // Newest first: the severity-1 rule alert, then the model's, then the SSH scan.
    a.on_key(code(KeyCode::Enter));
    let got = render(&a, 80, 24);
    assert!(contains(&got, " alert (↑↓ scroll · Esc closes) "));
    assert!(contains(&got, "GPL ATTACK_RESPONSE id check returned root"));
    assert!(contains(&got, "sid          1:2100498"));
    assert!(contains(&got, "rule:"));
    assert!(contains(&got, "alert tcp any any -> $HOME_NET 22 (msg:\"GPL ATTACK_RESPONSE"), "{}", got.join("\n"));
    a.on_key(code(KeyCode::Esc));
    a.on_key(key('j'));
    a.on_key(code(KeyCode::Enter));
    let got = render(&a, 80, 24);
    assert!(contains(&got, "class        PortScan"));
    assert!(contains(&got, "probability  0.970"));
    assert!(contains(&got, "anomaly      0.820"));
    assert!(line_with(&got, "Flow IAT Mean").contains("1532.500   +0.410"));
    assert!(line_with(&got, "Dst Port").contains("8080.000   -0.050"));
    // A flow's fields.
    a.on_key(code(KeyCode::Esc));
    keys(&mut a, "2jj");
    a.on_key(code(KeyCode::Enter));
    let got = render(&a, 80, 24);
    assert!(contains(&got, " flow (↑↓ scroll · Esc closes) "));
    assert!(contains(&got, "from         203.0.113.9:40000"));
    assert!(contains(&got, "ml class     PortScan"));
    // The popup keeps its copy when a new snapshot drops the flow.
    a.update(empty());
    assert!(contains(&render(&a, 80, 24), "from         203.0.113.9:40000"));
}

// ---- whole screen -----------------------------------------------------------------------------

#[test]
fn full_screen_at_80x24() {
    let mut a = app(Some(realistic()));
    a.on_key(key('4'));
    let got = render(&a, 80, 24);
    assert_lines(
        &got,
        &[
            "┌ traffic · run · up 1h02m ────┐┌ capture · af-xdp ────┐┌ scoring ─────────────┐",
            "│pkt/s  ▅▆▆▆▇▇▅▅▅▆▆▆▇▇▇█  34.6k││inline · fail-open    ││cpu · cicids2017 v3   │",
            "│bit/s  ▅▆▆▆▇▇▅▅▅▆▆▆▇▇▇█   283M││eth1 q0     6.1k/s d:0││p50 410µs · p99 1.2ms │",
            "│drop/s      █      █         0││eth1 q1   5.9k/s d:310││batch 31 · 48.2k flows│",
            "│drops ring 310 · rule 42 · bl…││                      ││drift PSI 0.12 Flow I…│",
            "└──────────────────────────────┘└──────────────────────┘└────────────── 2 more ┘",
            "┌ [1] alerts · 3 total ────────────┐┌ [2] flows · 4 of 1204 · sort bytes (s) ──┐",
            "│12:00:03 R1 GPL ATTACK_RESPONSE i…││pro  src          →dst               bytes│",
            "│12:00:02 M2 ML PortScan 0.97      ││TCP  192.168.1.20 →93.184.216.34:…  12.4MB│",
            "│12:00:01 R2 ET SCAN Potential SSH…││TCP  192.168.1.21 →151.101.1.69:4…   2.3MB│",
            "│                                  ││TCP  203.0.113.9  →10.0.0.1:22       2.4kB│",
            "│                                  ││UDP  192.168.1.22 →1.1.1.1:53         180B│",
            "│                                  ││                                          │",
            "│                                  ││                                          │",
            "│                                  ││                                          │",
            "│                                  ││                                          │",
            "└──────────────────────────────────┘└──────────────────────────────────────────┘",
            "┌ [4] enforcement · mode enforce ──────────────┐┌ [3] top talkers ─────────────┐",
            "│BLOCK 203.0.113.9 9m12s left · 1.2k hits      ││192.168.1.20           1.2MB/s│",
            "│RATE-LIMIT 198.51.100.77 1h00m left · 0 hits  ││203.0.113.9           40.0kB/s│",
            "│pending #4 block 198.51.100.4 for 10m00s · si…││192.168.1.22           3.0kB/s│",
            "│                                              ││                              │",
            "└ 2 active · 1 pending ────────────────────────┘└──────────────────────────────┘",
            "? help · q quit · Tab/1-4 focus · Enter inspect · / filter · s sort · p pause   ",
        ],
    );
}

#[test]
fn larger_terminals_give_the_lists_more_rows_and_columns() {
    let a = app(Some(overflowing()));
    let got = render(&a, 160, 48);
    assert_eq!(got.len(), 48);
    let flow_rows = got.iter().filter(|l| l.contains("TCP  [2001:db8")).count();
    assert!(flow_rows >= 20, "{flow_rows} flow rows at 160×48");
    assert!(line_with(&got, "TCP  [2001:db8").contains(" http "), "wide panes show ports and the app protocol");
    // Ten rows for the top panes: the scoring pane's lines but the last.
    assert!(contains(&got, "reload refused: et.rules:12: unknown keyword …"));
    assert!(got[9].ends_with(" 1 more ┘"), "{}", got[9]);
    let got = render(&a, 200, 50);
    assert!(line_with(&got, "TCP  [2001:db8").contains("established"), "wider still, the TCP state");
}

#[test]
fn tiny_terminals_draw_a_summary_and_never_panic() {
    let a = app(Some(realistic()));
    assert_lines(
        &render(&a, 20, 5),
        &["portcullis run      ", "34.6k pkt/s · 3 ale…", "2 blocks · 1 pending", "enlarge to 60×18 fo…", "? help · q quit · T…"],
    );
    assert_eq!(render(&app(None), 20, 3)[0], "portcullis: no snap…");
    // Sizes from nothing to well past 80×24, with each overlay and with the largest snapshot.
    for s in [realistic(), overflowing(), empty()] {
        let a = app(Some(s));
        for overlay in ["", "?", "\n", "4u"] {
            let mut a = a.clone();
            for c in overlay.chars() {
                a.on_key(if c == '\n' { code(KeyCode::Enter) } else { key(c) });
            }
            for w in [0, 1, 2, 20, 59, 60, 80, 121] {
                for h in [0, 1, 5, 17, 18, 24, 41] {
                    render(&a, w, h);
                }
            }
        }
    }
}

// ---- keys -------------------------------------------------------------------------------------

#[test]
fn unblock_asks_then_sends_the_selected_address() {
    let mut a = app(Some(realistic()));
    // Away from the enforcement pane, u explains instead of acting.
    assert!(keys(&mut a, "u").is_empty());
    assert_eq!(a.status().unwrap().kind, StatusKind::Error);
    assert!(matches!(a.overlay(), Overlay::None));
    // The documented sequence: 4, u, y unblocks the first active entry.
    assert_eq!(keys(&mut a, "4u"), vec![]);
    assert!(matches!(a.overlay(), Overlay::Confirm(c) if c.what == "unblock 203.0.113.9"));
    assert_eq!(keys(&mut a, "y"), vec![Request::Unblock { addr: "203.0.113.9".into(), by: Some("test".into()) }]);
    let what = a.on_sent();
    a.on_reply(&what, Ok(serde_json::json!({"ok": true, "addr": "203.0.113.9", "was_blocked": true})));
    assert_eq!(a.status().unwrap().text, "unblock 203.0.113.9: ok (addr=203.0.113.9 was_blocked=true)");
    // The second entry, and n cancels.
    assert_eq!(keys(&mut a, "jun"), vec![]);
    assert_eq!(keys(&mut a, "uy"), vec![Request::Unblock { addr: "198.51.100.77".into(), by: Some("test".into()) }]);
    // Keys other than y/n leave the question open.
    assert_eq!(keys(&mut a, "ux"), vec![]);
    assert!(matches!(a.overlay(), Overlay::Confirm(_)));
    a.on_key(code(KeyCode::Esc));
    assert!(matches!(a.overlay(), Overlay::None));
    // On a pending entry, u points at a/d.
    assert_eq!(keys(&mut a, "ju"), vec![]);
    assert!(a.status().unwrap().text.contains("a approves"));
}

#[test]
fn the_confirmed_address_is_the_one_asked_about_even_if_the_list_moves() {
    let mut a = app(Some(realistic()));
    keys(&mut a, "4u");
    let mut s = realistic();
    s.enforcement.active.reverse();
    a.update(s);
    assert_eq!(keys(&mut a, "y"), vec![Request::Unblock { addr: "203.0.113.9".into(), by: Some("test".into()) }]);
}

#[test]
fn selection_follows_its_row_across_snapshots() {
    let mut a = app(Some(realistic()));
    keys(&mut a, "4j");
    let mut s = realistic();
    s.enforcement.active.insert(0, active("192.0.2.200", "block", 10, 0));
    a.update(s);
    assert_eq!(a.selected(Pane::Enforcement), 2);
    assert_eq!(keys(&mut a, "uy"), vec![Request::Unblock { addr: "198.51.100.77".into(), by: Some("test".into()) }]);
    // When the row is gone, the selection stays in range.
    let mut s = realistic();
    s.enforcement.active.clear();
    s.enforcement.pending.clear();
    a.update(s);
    assert_eq!(a.selected(Pane::Enforcement), 0);
    assert!(keys(&mut a, "u").is_empty());
    assert_eq!(a.status().unwrap().text, "unblock: no active blocks");
}

#[test]
fn approve_and_deny_send_the_pending_id() {
    let mut s = realistic();
    s.enforcement.pending.push(pending(9, "192.0.2.99", "ml-class PortScan 0.97"));
    let mut a = app(Some(s));
    keys(&mut a, "4jj");
    assert_eq!(keys(&mut a, "a"), vec![]);
    assert!(matches!(a.overlay(), Overlay::Confirm(c) if c.what == "approve #4 block 198.51.100.4"));
    assert_eq!(keys(&mut a, "y"), vec![Request::Approve { id: 4, by: Some("test".into()) }]);
    assert_eq!(keys(&mut a, "jdy"), vec![Request::Deny { id: 9, by: Some("test".into()) }]);
    assert_eq!(keys(&mut a, "dn"), vec![]);
    // On an active entry, a and d say what to do instead.
    assert_eq!(keys(&mut a, "ga"), vec![]);
    assert_eq!(a.status().unwrap().text, "approve: that entry is already active; u unblocks it");
    // Outside the enforcement pane, nothing is approved.
    assert_eq!(keys(&mut a, "1ay"), vec![]);
}

#[test]
fn reload_rollback_promote_and_block_ask_first() {
    let mut a = app(Some(realistic()));
    assert_eq!(keys(&mut a, "ry"), vec![Request::ReloadRules]);
    assert_eq!(keys(&mut a, "Ry"), vec![Request::RollbackModel]);
    // No shadow model in this snapshot: P says so and asks nothing.
    assert_eq!(keys(&mut a, "Py"), vec![]);
    assert_eq!(a.status().unwrap().text, "no shadow model to promote");
    a.update(overflowing());
    assert_eq!(keys(&mut a, "Py"), vec![Request::PromoteShadow]);
    // b blocks the selected talker's address, for the daemon's default duration.
    a.update(realistic());
    assert_eq!(
        keys(&mut a, "3jby"),
        vec![Request::Block { addr: "203.0.113.9".into(), for_secs: None, action: None, by: Some("test".into()) }]
    );
    let mut s = realistic();
    s.scoring = None;
    a.update(s);
    assert_eq!(keys(&mut a, "Ry"), vec![]);
    assert_eq!(a.status().unwrap().text, "scoring is off: no model to roll back");
}

#[test]
fn filter_applies_on_enter_and_clears_on_esc() {
    let mut a = app(Some(realistic()));
    // While typing, letters are text: q does not quit, p does not pause.
    keys(&mut a, "/SSH qp");
    assert!(!a.should_quit() && !a.paused());
    assert_eq!(a.typing(), Some("SSH qp"));
    assert_eq!(a.alerts().len(), 3, "not applied before Enter");
    a.on_key(code(KeyCode::Backspace));
    a.on_key(code(KeyCode::Backspace));
    a.on_key(code(KeyCode::Backspace));
    a.on_key(code(KeyCode::Enter));
    assert_eq!(a.filter(), "ssh");
    assert_eq!(a.alerts().len(), 1);
    assert_eq!(a.alerts()[0].sid, 2_001_219);
    assert!(a.flows().is_empty() && a.talkers().is_empty());
    // Enforcement is never hidden by the filter.
    assert_eq!(a.enforcement().len(), 3);
    // By address: the scanner's alerts, flow and talker entry.
    keys(&mut a, "/");
    for _ in 0..3 {
        a.on_key(code(KeyCode::Backspace));
    }
    keys(&mut a, "203.0.113.9");
    a.on_key(code(KeyCode::Enter));
    assert_eq!(a.alerts().len(), 2);
    assert_eq!(a.flows().len(), 1);
    assert_eq!(a.talkers().len(), 1);
    let got = render(&a, 80, 24);
    assert!(got[6].starts_with("┌ [1] alerts · /203.0.113.9 · 3 tot┐"), "{}", got[6]);
    assert!(got[6].contains("┌ [2] flows · /203.0.113.9 · 1 shown "), "{}", got[6]);
    a.on_key(code(KeyCode::Esc));
    assert_eq!(a.filter(), "");
    assert_eq!(a.alerts().len(), 3);
    // Esc while typing drops the text and the filter.
    keys(&mut a, "/udp");
    a.on_key(code(KeyCode::Enter));
    assert_eq!(a.flows().len(), 1);
    keys(&mut a, "/x");
    a.on_key(code(KeyCode::Esc));
    assert_eq!((a.filter(), a.typing()), ("", None));
}

#[test]
fn pause_freezes_the_view() {
    let mut a = app(Some(realistic()));
    keys(&mut a, "p");
    assert!(a.paused() && !a.wants_snapshots());
    a.update(empty());
    assert_eq!(a.snapshot().unwrap().flows.len(), 4, "a paused console keeps its snapshot");
    assert!(render(&a, 80, 24)[0].contains("PAUSED"));
    assert!(render(&a, 80, 24)[23].starts_with("PAUSED "));
    keys(&mut a, "p");
    a.update(empty());
    assert!(a.snapshot().unwrap().flows.is_empty());
}

#[test]
fn focus_help_and_quit_keys() {
    let mut a = app(Some(realistic()));
    assert_eq!(a.focus(), Pane::Alerts);
    a.on_key(code(KeyCode::Tab));
    assert_eq!(a.focus(), Pane::Flows);
    a.on_key(code(KeyCode::BackTab));
    a.on_key(code(KeyCode::BackTab));
    assert_eq!(a.focus(), Pane::Enforcement);
    keys(&mut a, "3");
    assert_eq!(a.focus(), Pane::Talkers);
    keys(&mut a, "?");
    assert_eq!(a.overlay(), &Overlay::Help);
    // q closes the help first; the next q quits.
    keys(&mut a, "q");
    assert_eq!(a.overlay(), &Overlay::None);
    assert!(!a.should_quit());
    keys(&mut a, "q");
    assert!(a.should_quit());
    let mut a = app(None);
    keys(&mut a, "/abc");
    a.on_key(KeyEvent::new(KeyCode::Char('c'), KeyModifiers::CONTROL));
    assert!(a.should_quit(), "Ctrl-C quits even while typing");
}

// ---- the session loop -------------------------------------------------------------------------

/// A daemon in a box: answers snapshots from a queue (an error when told to be gone) and
/// records what it was sent. Requests are answered `{"ok":true}` at once, or, with `slow`,
/// whenever the test sends the answer on the channel kept in `answers`.
#[derive(Debug, Default)]
struct FakeLink {
    snapshots: Vec<Result<Snapshot, String>>,
    taken: usize,
    sent: Vec<Request>,
    slow: bool,
    answers: Vec<std::sync::mpsc::Sender<Result<serde_json::Value, String>>>,
}

impl Link for FakeLink {
    fn snapshot(&mut self) -> Result<Snapshot, String> {
        self.taken += 1;
        if self.snapshots.is_empty() {
            return Err("connection refused".into());
        }
        self.snapshots.remove(0)
    }

    fn send(&mut self, request: &Request) -> Reply {
        self.sent.push(request.clone());
        if !self.slow {
            return Reply::ready(Ok(serde_json::json!({"ok": true})));
        }
        let (tx, rx) = std::sync::mpsc::channel();
        self.answers.push(tx);
        Reply::spawn(move || rx.recv().unwrap_or_else(|_| Err("the test dropped the answer".into())))
    }
}

#[test]
fn session_unblocks_with_4_u_y_and_refreshes_at_once() {
    let mut after = realistic();
    after.enforcement.active.remove(0);
    let mut link = FakeLink { snapshots: vec![Ok(realistic()), Ok(after)], ..FakeLink::default() };
    let refresh = Duration::from_secs(1);
    let mut s = Session::new(App::new("test"), refresh);
    let t0 = Instant::now();
    s.tick(&mut link, t0);
    assert_eq!(link.taken, 1);
    // Not due yet: no second snapshot.
    s.tick(&mut link, t0 + Duration::from_millis(10));
    assert_eq!(link.taken, 1);
    for c in "4uy".chars() {
        s.key(&mut link, key(c), t0 + Duration::from_millis(20));
    }
    assert_eq!(link.sent, vec![Request::Unblock { addr: "203.0.113.9".into(), by: Some("test".into()) }]);
    assert_eq!(s.app.status().unwrap().text, "unblock 203.0.113.9: ok");
    // The reply makes the next snapshot due now, so the entry disappears without waiting.
    s.tick(&mut link, t0 + Duration::from_millis(20));
    assert_eq!(link.taken, 2);
    assert!(!contains(&render(&s.app, 80, 24), "BLOCK 203.0.113.9"));
}

#[test]
fn session_survives_the_daemon_going_away() {
    let mut link = FakeLink { snapshots: vec![Ok(realistic())], ..FakeLink::default() };
    let refresh = Duration::from_millis(500);
    let mut s = Session::new(App::new("test"), refresh);
    let t0 = Instant::now();
    s.tick(&mut link, t0);
    s.tick(&mut link, t0 + refresh);
    assert_eq!(s.app.link_error(), Some("connection refused"));
    let got = render(&s.app, 80, 24);
    assert!(got[0].starts_with("┌ traffic · STALE · run"), "{}", got[0]);
    assert!(got[23].starts_with("daemon unreachable, retrying: connection refused"));
    assert!(contains(&got, "BLOCK 203.0.113.9"), "the last snapshot stays on screen");
    // Retried every interval, never given up.
    s.tick(&mut link, t0 + refresh * 2);
    assert_eq!(link.taken, 3);
    link.snapshots.push(Ok(realistic()));
    s.tick(&mut link, t0 + refresh * 3);
    assert_eq!(s.app.link_error(), None);
    // Paused: no snapshots are taken, and the wait is a whole interval.
    s.key(&mut link, key('p'), t0 + refresh * 3);
    s.tick(&mut link, t0 + refresh * 10);
    assert_eq!(link.taken, 4);
    assert_eq!(s.wait(t0), refresh);
}

#[test]
fn session_keeps_drawing_while_a_slow_request_runs() {
    let mut link = FakeLink { snapshots: vec![Ok(realistic()); 5], slow: true, ..FakeLink::default() };
    let refresh = Duration::from_secs(1);
    let mut s = Session::new(App::new("test"), refresh);
    let t0 = Instant::now();
    s.tick(&mut link, t0);
    for c in "ry".chars() {
        s.key(&mut link, key(c), t0);
    }
    assert_eq!(link.sent, vec![Request::ReloadRules]);
    assert_eq!(s.app.waiting(), ["reload the rule files"]);
    assert_eq!(s.app.status().unwrap().text, "reload the rule files: sent, waiting for the daemon");
    // While the answer is out, the loop looks for it often, and snapshots keep coming.
    assert_eq!(s.wait(t0), Duration::from_millis(100));
    s.tick(&mut link, t0 + refresh);
    s.tick(&mut link, t0 + refresh * 2);
    assert_eq!(link.taken, 3);
    // A quicker request answered meanwhile takes the status line; the reload is still named.
    link.slow = false;
    for c in "4uy".chars() {
        s.key(&mut link, key(c), t0 + refresh * 2);
    }
    assert_eq!(s.app.status().unwrap().text, "unblock 203.0.113.9: ok");
    let got = render(&s.app, 100, 24);
    assert!(got[23].starts_with("waiting for the daemon: reload the rule files · unblock 203.0.113.9: ok"), "{}", got[23]);
    s.tick(&mut link, t0 + refresh * 2);
    assert_eq!(link.taken, 4, "the unblock's answer made a snapshot due at once");
    // The reload's answer arrives: shown, and the next snapshot is due at once.
    link.answers[0].send(Ok(serde_json::json!({"ok": true, "loaded": 12, "failed": 1}))).unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while !s.app.waiting().is_empty() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(5));
        s.tick(&mut link, t0 + refresh * 2);
    }
    assert!(s.app.waiting().is_empty());
    let st = &s.app.status().unwrap().text;
    assert!(st.starts_with("reload the rule files: ok (") && st.contains("loaded=12"), "{st}");
    assert_eq!(link.taken, 5, "so did the reload's");
    assert_eq!(s.wait(t0 + refresh * 2), refresh, "nothing out: the loop waits for the next snapshot");
}
