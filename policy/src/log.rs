//! The decision log: every decision, durably, in SQLite (`STATE_DIR/decisions.db`).
//!
//! One row per decision, updated as it moves on (applied, approved, revoked); the columns
//! queries filter on are real columns, the rest (evidence) is the decision as JSON. The
//! daemon reconciles nftables from it at start (what is still in force), continues the
//! escalation ladder from it (offences within the memory), and keeps pending approvals
//! across restarts. WAL mode: `portcullis decisions` reads while the daemon writes.

use std::net::IpAddr;
use std::path::{Path, PathBuf};

use rusqlite::{params, Connection, OptionalExtension};

use crate::engine::{Decision, Micros, State};
use crate::net::{canonical, Net};
use crate::playbook::Action;

/// The log could not be opened or written.
#[derive(Debug, thiserror::Error)]
pub enum LogError {
    #[error("{path}: {source}")]
    Open { path: PathBuf, source: rusqlite::Error },
    #[error("{path}: cannot create the state directory: {source}")]
    Dir { path: PathBuf, source: std::io::Error },
    #[error("decision log: {0}")]
    Sql(#[from] rusqlite::Error),
    #[error("decision log: a stored decision does not parse: {0}")]
    Json(#[from] serde_json::Error),
}

/// File name of the log inside the state directory.
pub const FILE: &str = "decisions.db";

#[derive(Debug)]
pub struct DecisionLog {
    conn: Connection,
    path: PathBuf,
}

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS decisions (
    id          INTEGER PRIMARY KEY,
    at_us       INTEGER NOT NULL,
    action      TEXT NOT NULL,
    target      TEXT NOT NULL,
    state       TEXT NOT NULL,
    expires_us  INTEGER,
    json        TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS decisions_at ON decisions(at_us);
CREATE INDEX IF NOT EXISTS decisions_target ON decisions(target);
";

impl DecisionLog {
    /// Opens (creating) `dir/decisions.db`; the directory is created mode 0700.
    pub fn open(dir: &Path) -> Result<DecisionLog, LogError> {
        if !dir.exists() {
            use std::os::unix::fs::DirBuilderExt;
            std::fs::DirBuilder::new().recursive(true).mode(0o700).create(dir).map_err(|source| LogError::Dir { path: dir.to_path_buf(), source })?;
        }
        let path = dir.join(FILE);
        let conn = Connection::open(&path).map_err(|source| LogError::Open { path: path.clone(), source })?;
        conn.pragma_update(None, "journal_mode", "WAL").map_err(|source| LogError::Open { path: path.clone(), source })?;
        // NORMAL under WAL: a committed decision survives a crash of the daemon; only a
        // power loss can take the last transactions (the kernel's timeouts bound the harm).
        conn.pragma_update(None, "synchronous", "NORMAL")?;
        conn.busy_timeout(std::time::Duration::from_secs(5))?;
        conn.execute_batch(SCHEMA).map_err(|source| LogError::Open { path: path.clone(), source })?;
        Ok(DecisionLog { conn, path })
    }

    /// Opens an existing log read-only (for `portcullis decisions`); `None` if there is none.
    pub fn open_existing(dir: &Path) -> Result<Option<DecisionLog>, LogError> {
        let path = dir.join(FILE);
        if !path.exists() {
            return Ok(None);
        }
        let conn = Connection::open_with_flags(&path, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY).map_err(|source| LogError::Open { path: path.clone(), source })?;
        conn.busy_timeout(std::time::Duration::from_secs(5))?;
        Ok(Some(DecisionLog { conn, path }))
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Inserts or updates decisions, all in one transaction.
    pub fn record(&mut self, decisions: &[Decision]) -> Result<(), LogError> {
        if decisions.is_empty() {
            return Ok(());
        }
        let tx = self.conn.transaction()?;
        {
            let mut st = tx.prepare_cached(
                "INSERT INTO decisions (id, at_us, action, target, state, expires_us, json) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)
                 ON CONFLICT(id) DO UPDATE SET at_us = ?2, state = ?5, expires_us = ?6, json = ?7",
            )?;
            for d in decisions {
                let expires = matches!(d.state, State::Applied | State::Enforce | State::DryRun).then(|| d.expires()).flatten();
                st.execute(params![d.id as i64, d.at, d.action.name(), canonical(d.target).to_string(), d.state.name(), expires, serde_json::to_string(d)?])?;
            }
        }
        tx.commit()?;
        Ok(())
    }

    /// One above the largest id stored (the engine's first id).
    pub fn next_id(&self) -> Result<u64, LogError> {
        let max: Option<i64> = self.conn.query_row("SELECT MAX(id) FROM decisions", [], |r| r.get(0))?;
        Ok(max.map_or(1, |m| m as u64 + 1))
    }

    pub fn get(&self, id: u64) -> Result<Option<Decision>, LogError> {
        let j: Option<String> = self.conn.query_row("SELECT json FROM decisions WHERE id = ?1", [id as i64], |r| r.get(0)).optional()?;
        Ok(match j {
            Some(j) => Some(serde_json::from_str(&j)?),
            None => None,
        })
    }

    /// Enforced decisions still in force at `now` (to reconcile nftables at start).
    pub fn in_force(&self, now: Micros) -> Result<Vec<Decision>, LogError> {
        self.select("WHERE state = 'applied' AND expires_us > ?1 ORDER BY id", params![now])
    }

    /// Marks revoked every decision in force on `target` (rate-limit, block, quarantine alike),
    /// so a restart does not reinstall what an operator lifted. Returns how many.
    pub fn revoke_target(&mut self, target: IpAddr, by: &str, note: Option<&str>, now: Micros) -> Result<usize, LogError> {
        let mut list = self.select("WHERE state = 'applied' AND expires_us > ?1 AND target = ?2 ORDER BY id", params![now, canonical(target).to_string()])?;
        for d in &mut list {
            d.state = State::Revoked;
            d.by = Some(by.to_string());
            if let Some(n) = note {
                d.note = Some(n.to_string());
            }
        }
        self.record(&list)?;
        Ok(list.len())
    }

    /// Decisions waiting for approval.
    pub fn pending(&self) -> Result<Vec<Decision>, LogError> {
        self.select("WHERE state = 'pending' ORDER BY id", params![])
    }

    /// Blocks and quarantines enforced since `since`, for the ladder (what a dry-run only
    /// logged does not make a repeat offender once the policy enforces).
    pub fn offences(&self, since: Micros) -> Result<Vec<(IpAddr, Micros)>, LogError> {
        let mut st = self.conn.prepare("SELECT target, at_us FROM decisions WHERE at_us >= ?1 AND action IN ('block', 'quarantine') AND state = 'applied'")?;
        let rows = st.query_map([since], |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?)))?;
        let mut out = Vec::new();
        for r in rows {
            let (t, at) = r?;
            if let Ok(ip) = t.parse() {
                out.push((ip, at));
            }
        }
        Ok(out)
    }

    /// Decisions at or after `since`, about addresses in `addr`, oldest first, at most `limit`
    /// (the newest ones).
    pub fn query(&self, since: Option<Micros>, addr: Option<Net>, action: Option<Action>, limit: usize) -> Result<Vec<Decision>, LogError> {
        let mut st = self.conn.prepare("SELECT json FROM decisions WHERE at_us >= ?1 AND (?2 IS NULL OR action = ?2) ORDER BY id DESC")?;
        let rows = st.query_map(params![since.unwrap_or(i64::MIN), action.map(Action::name)], |r| r.get::<_, String>(0))?;
        let mut out = Vec::new();
        for r in rows {
            let d: Decision = serde_json::from_str(&r?)?;
            if addr.is_some_and(|n| !n.contains(d.target)) {
                continue;
            }
            out.push(d);
            if out.len() >= limit {
                break;
            }
        }
        out.reverse();
        Ok(out)
    }

    fn select(&self, clause: &str, p: impl rusqlite::Params) -> Result<Vec<Decision>, LogError> {
        let mut st = self.conn.prepare(&format!("SELECT json FROM decisions {clause}"))?;
        let rows = st.query_map(p, |r| r.get::<_, String>(0))?;
        let mut out = Vec::new();
        for r in rows {
            out.push(serde_json::from_str(&r?)?);
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::Evidence;
    use crate::playbook::Mode;

    fn decision(id: u64, at_s: i64, target: &str, action: Action, state: State, secs: u64) -> Decision {
        Decision {
            id,
            at: at_s * 1_000_000,
            action,
            target: target.parse().unwrap(),
            duration_secs: Some(secs),
            level: Some(0),
            rate_limit: None,
            trigger: "scan".into(),
            evidence: Evidence { rules: vec!["1:2:3 x".into()], ..Evidence::default() },
            mode: Mode::Enforce,
            state,
            by: None,
            note: None,
            applied_at: Some(at_s * 1_000_000),
            enforce_latency_us: Some(800),
            made: None,
        }
    }

    #[test]
    fn stores_updates_and_queries_decisions() {
        let dir = tempfile::tempdir().unwrap();
        let mut log = DecisionLog::open(&dir.path().join("state")).unwrap();
        assert_eq!(log.next_id().unwrap(), 1);
        let mut a = decision(1, 100, "203.0.113.9", Action::Block, State::Applied, 600);
        let b = decision(2, 200, "2001:db8::5", Action::Quarantine, State::Pending, 3600);
        let c = decision(3, 300, "198.51.100.1", Action::Block, State::DryRun, 600);
        log.record(&[a.clone(), b.clone(), c.clone()]).unwrap();
        assert_eq!(log.next_id().unwrap(), 4);
        assert_eq!(log.in_force(150 * 1_000_000).unwrap(), vec![a.clone()]);
        assert!(log.in_force(800 * 1_000_000).unwrap().is_empty(), "expired");
        assert_eq!(log.pending().unwrap(), vec![b.clone()]);
        assert_eq!(log.offences(0).unwrap(), vec![(a.target, a.at)], "dry-run decisions are no offences");
        a.state = State::Revoked;
        a.by = Some("root".into());
        log.record(&[a.clone()]).unwrap();
        assert!(log.in_force(150 * 1_000_000).unwrap().is_empty());
        assert_eq!(log.get(1).unwrap().unwrap().by.as_deref(), Some("root"));
        let q = log.query(Some(150 * 1_000_000), None, None, 10).unwrap();
        assert_eq!(q.iter().map(|d| d.id).collect::<Vec<_>>(), vec![2, 3]);
        let q = log.query(None, Some("2001:db8::/32".parse().unwrap()), None, 10).unwrap();
        assert_eq!(q.iter().map(|d| d.id).collect::<Vec<_>>(), vec![2]);
        let q = log.query(None, None, Some(Action::Block), 1).unwrap();
        assert_eq!(q.iter().map(|d| d.id).collect::<Vec<_>>(), vec![3], "the newest within the limit");
        // Lifting an address revokes everything in force on it, whichever decision put it.
        let r1 = decision(10, 400, "203.0.113.50", Action::RateLimit, State::Applied, 600);
        let r2 = decision(11, 410, "203.0.113.50", Action::Block, State::Applied, 600);
        let other = decision(12, 410, "203.0.113.51", Action::Block, State::Applied, 600);
        log.record(&[r1, r2, other.clone()]).unwrap();
        assert_eq!(log.revoke_target("203.0.113.50".parse().unwrap(), "alice", None, 420 * 1_000_000).unwrap(), 2);
        assert_eq!(log.in_force(420 * 1_000_000).unwrap(), vec![other]);
        assert_eq!(log.get(11).unwrap().unwrap().by.as_deref(), Some("alice"));
        drop(log);
        // Survives reopening; a reader sees the same.
        let r = DecisionLog::open_existing(&dir.path().join("state")).unwrap().unwrap();
        assert_eq!(r.get(3).unwrap().unwrap(), c);
        assert!(DecisionLog::open_existing(dir.path()).unwrap().is_none());
    }
}
