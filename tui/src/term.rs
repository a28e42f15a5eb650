//! The terminal loop: raw mode and the alternate screen for as long as the console runs, put
//! back on every way out (return, error, panic), snapshots pulled every `refresh`, keys read
//! in between, and answers to slow requests picked up as they arrive.

use std::io;
use std::sync::Arc;
use std::time::{Duration, Instant};

use ratatui::backend::CrosstermBackend;
use ratatui::crossterm::event::{self, Event, KeyEvent};
use ratatui::crossterm::terminal::{disable_raw_mode, enable_raw_mode, EnterAlternateScreen, LeaveAlternateScreen};
use ratatui::crossterm::{cursor, execute};
use ratatui::Terminal;

use crate::app::App;
use crate::{view, Link, Reply};

type PanicHook = Box<dyn Fn(&std::panic::PanicHookInfo<'_>) + Sync + Send + 'static>;

/// Holds the terminal in raw mode on the alternate screen; dropping it restores both. A panic
/// hook restores them too, before the panic message is printed, so the message lands on the
/// normal screen where it can be read.
struct TerminalGuard {
    previous_hook: Arc<PanicHook>,
}

fn restore_terminal() {
    // Best effort: on the way out there is nobody left to report a failure to.
    let _ = disable_raw_mode();
    let _ = execute!(io::stdout(), LeaveAlternateScreen, cursor::Show);
}

impl TerminalGuard {
    fn enter() -> io::Result<TerminalGuard> {
        let previous_hook: Arc<PanicHook> = Arc::new(std::panic::take_hook());
        let hook = Arc::clone(&previous_hook);
        std::panic::set_hook(Box::new(move |info| {
            restore_terminal();
            hook(info);
        }));
        let guard = TerminalGuard { previous_hook };
        enable_raw_mode()?;
        execute!(io::stdout(), EnterAlternateScreen, cursor::Hide)?;
        Ok(guard)
    }
}

impl Drop for TerminalGuard {
    fn drop(&mut self) {
        restore_terminal();
        // Put the hook that was there before back, so a later panic elsewhere does not write
        // terminal escapes to a screen the console no longer owns.
        let previous = Arc::clone(&self.previous_hook);
        std::panic::set_hook(Box::new(move |info| previous(info)));
    }
}

/// How often the loop looks for an answer while a request is out.
const ANSWER_POLL: Duration = Duration::from_millis(100);

/// One console session's logic without the terminal: when to pull a snapshot, what a key
/// sends, which answers have come. Kept apart from [`run`] so tests drive it with a fake
/// [`Link`].
#[derive(Debug)]
pub(crate) struct Session {
    pub(crate) app: App,
    refresh: Duration,
    next_snapshot: Instant,
    /// Requests out, under the name the app gave them, with their answers to come.
    out: Vec<(String, Reply)>,
}

impl Session {
    pub(crate) fn new(app: App, refresh: Duration) -> Session {
        Session { app, refresh, next_snapshot: Instant::now(), out: Vec::new() }
    }

    /// Shows the answers that have arrived, and pulls a snapshot when one is due and the
    /// console is not paused. A failed snapshot is shown and retried at the next interval;
    /// it never ends the session.
    pub(crate) fn tick(&mut self, link: &mut dyn Link, now: Instant) {
        self.collect(now);
        if !self.app.wants_snapshots() || now < self.next_snapshot {
            return;
        }
        match link.snapshot() {
            Ok(s) => self.app.update(s),
            Err(e) => self.app.on_link_error(e),
        }
        self.next_snapshot = now + self.refresh;
    }

    /// Hands a key to the app; a request it returns is sent at once. A quick request's answer
    /// is shown straight away, a slow one's when it comes ([`Session::tick`]); the screen
    /// keeps drawing meanwhile.
    pub(crate) fn key(&mut self, link: &mut dyn Link, key: KeyEvent, now: Instant) {
        if let Some(request) = self.app.on_key(key) {
            let reply = link.send(&request);
            self.out.push((self.app.on_sent(), reply));
            self.collect(now);
        }
    }

    /// Shows every answer that has arrived. Each makes the next snapshot due at once, so the
    /// view shows what the request changed.
    fn collect(&mut self, now: Instant) {
        let mut i = 0;
        while i < self.out.len() {
            match self.out[i].1.poll() {
                Some(answer) => {
                    let (what, _) = self.out.remove(i);
                    self.app.on_reply(&what, answer);
                    self.next_snapshot = self.next_snapshot.min(now);
                }
                None => i += 1,
            }
        }
    }

    /// How long to wait for a key before the next snapshot is due, or before looking again
    /// for the answer to a request that is out.
    pub(crate) fn wait(&self, now: Instant) -> Duration {
        let wait = if self.app.wants_snapshots() { self.next_snapshot.saturating_duration_since(now) } else { self.refresh };
        if self.out.is_empty() {
            wait
        } else {
            wait.min(ANSWER_POLL)
        }
    }
}

/// The name requests carry in `by`, for the decision log: `console` and the login that ran
/// it, when the environment says.
fn operator() -> String {
    match std::env::var("SUDO_USER").or_else(|_| std::env::var("USER")).or_else(|_| std::env::var("LOGNAME")) {
        Ok(user) if !user.is_empty() => format!("console:{user}"),
        _ => "console".to_string(),
    }
}

/// Runs the console on this process's terminal until the operator quits, taking a snapshot
/// from `link` every `refresh` (unless paused) and sending what the keys ask for. A link that
/// fails is reported in the status line and retried; only terminal I/O errors end the loop.
pub fn run(link: &mut dyn Link, refresh: Duration) -> io::Result<()> {
    let _guard = TerminalGuard::enter()?;
    let mut terminal = Terminal::new(CrosstermBackend::new(io::stdout()))?;
    terminal.clear()?;
    let mut session = Session::new(App::new(operator()), refresh);
    loop {
        session.tick(link, Instant::now());
        terminal.draw(|frame| view::draw(frame, &session.app))?;
        if event::poll(session.wait(Instant::now()))? {
            // Everything already queued is handled before the next frame, so a burst of keys
            // (a paste, a test's send-keys) does not redraw once per key.
            loop {
                if let Event::Key(key) = event::read()? {
                    session.key(link, key, Instant::now());
                }
                if session.app.should_quit() || !event::poll(Duration::ZERO)? {
                    break;
                }
            }
        }
        if session.app.should_quit() {
            return Ok(());
        }
    }
}
