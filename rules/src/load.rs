//! Rule files → [`LoadReport`]: lines, comments, continuations, duplicate sids, and the
//! decision to load or skip each rule.

use std::collections::HashMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::ast::{Origin, Rule};
use crate::meta::{Classifications, References};
use crate::parse::{app_layer_use, parse_rule, ParseContext, RuleErrorKind};
use crate::vars::{ResolvedVars, Vars};

/// A failure that stops the whole load: the rules could not mean what they say.
#[derive(Debug, thiserror::Error)]
pub enum RulesError {
    #[error("{path}: cannot read: {source}")]
    Read { path: PathBuf, source: std::io::Error },
    #[error("invalid variables: {}", .0.join("; "))]
    Vars(Vec<String>),
}

/// The rules that loaded, and what did not.
#[derive(Clone, Debug, Default)]
pub struct LoadReport {
    /// In file order (a duplicate sid with a higher rev takes the place of the first).
    pub rules: Vec<Rule>,
    pub skipped: Vec<Skipped>,
    /// Files that could not be read, bad lines of the classification and reference files.
    pub errors: Vec<String>,
    /// Rule files read.
    pub files: usize,
}

/// Why a rule was skipped, by family.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum SkipKind {
    /// Needs app-layer inspection (a sticky buffer, an app-layer keyword or protocol).
    AppLayer,
    /// A known Suricata keyword Portcullis does not implement.
    Unsupported,
    /// A keyword neither Portcullis nor (as far as it knows) Suricata has.
    Unknown,
    /// The rule text does not parse.
    Syntax,
    /// It parses but is invalid (Suricata would refuse it too).
    Invalid,
    /// Another rule with the same gid and sid was kept.
    DuplicateSid,
}

/// One rule that was not loaded.
#[derive(Clone, Debug)]
pub struct Skipped {
    pub origin: Origin,
    pub sid: Option<u32>,
    /// The keyword responsible, when one is (`http.uri`, `proto:http`, `within`, ...).
    pub keyword: Option<String>,
    pub kind: SkipKind,
    pub reason: String,
}

impl fmt::Display for Skipped {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}: ", self.origin.file.display(), self.origin.line)?;
        if let Some(s) = self.sid {
            write!(f, "sid {s}: ")?;
        }
        f.write_str(&self.reason)
    }
}

impl LoadReport {
    /// Skipped rules counted by keyword (`(syntax)` when none is named), most frequent first,
    /// ties by name.
    pub fn skipped_by_keyword(&self) -> Vec<(String, usize)> {
        let mut m: HashMap<&str, usize> = HashMap::new();
        for s in &self.skipped {
            let k = match (&s.keyword, s.kind) {
                (_, SkipKind::DuplicateSid) => "(duplicate sid)",
                (Some(k), _) => k.as_str(),
                (None, _) => "(syntax)",
            };
            *m.entry(k).or_default() += 1;
        }
        let mut v: Vec<(String, usize)> = m.into_iter().map(|(k, n)| (k.to_string(), n)).collect();
        v.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
        v
    }
}

/// The loaded rules, for the detection engine to compile.
#[derive(Clone, Debug, Default)]
pub struct RuleSet {
    pub rules: Vec<Rule>,
}

impl From<LoadReport> for RuleSet {
    fn from(r: LoadReport) -> Self {
        RuleSet { rules: r.rules }
    }
}

impl RuleSet {
    /// Loads rule files the way Suricata does, with `vars` for `$NAME` and the optional
    /// classification and reference configs. A file that cannot be read, or a bad line of
    /// the two configs, is an entry in `errors`; a rule that does not load is an entry in
    /// `skipped`; neither stops the load. Errors: a classification or reference file that
    /// cannot be read, or variables whose definitions do not resolve.
    pub fn load(files: &[PathBuf], vars: &Vars, classification: Option<&Path>, reference: Option<&Path>) -> Result<LoadReport, RulesError> {
        let mut errors = Vec::new();
        let (ctx, mut errs) = build_context(vars, classification, reference)?;
        errors.append(&mut errs);
        let mut report = Self::load_files(files, &ctx);
        errors.append(&mut report.errors);
        report.errors = errors;
        Ok(report)
    }

    /// Loads rule files against a prepared context.
    pub fn load_files(files: &[PathBuf], ctx: &ParseContext) -> LoadReport {
        let mut loader = Loader::default();
        for path in files {
            match std::fs::read(path) {
                Ok(bytes) => {
                    loader.report.files += 1;
                    let text = String::from_utf8_lossy(&bytes);
                    loader.load_text(&text, Arc::from(path.as_path()), ctx);
                }
                Err(e) => loader.report.errors.push(format!("{}: cannot read: {e}", path.display())),
            }
        }
        loader.report
    }

    /// Loads rules from a string, as if it were the file `name`: for tests and for the
    /// detection engine's fixtures.
    pub fn load_str(text: &str, name: &str, ctx: &ParseContext) -> LoadReport {
        let mut loader = Loader::default();
        loader.report.files = 1;
        loader.load_text(text, Arc::from(Path::new(name)), ctx);
        loader.report
    }
}

/// Resolves the variables and reads the two configs into a [`ParseContext`]; bad config
/// lines come back as messages.
pub fn build_context(vars: &Vars, classification: Option<&Path>, reference: Option<&Path>) -> Result<(ParseContext, Vec<String>), RulesError> {
    let resolved = ResolvedVars::new(vars);
    let errs = resolved.errors();
    if !errs.is_empty() {
        return Err(RulesError::Vars(errs));
    }
    let mut messages = Vec::new();
    let read = |p: &Path| std::fs::read(p).map(|b| String::from_utf8_lossy(&b).into_owned()).map_err(|source| RulesError::Read { path: p.into(), source });
    let classifications = match classification {
        Some(p) => {
            let (c, bad) = Classifications::parse(&read(p)?);
            messages.extend(bad.into_iter().map(|m| format!("{}: {m}", p.display())));
            Some(c)
        }
        None => None,
    };
    let references = match reference {
        Some(p) => {
            let (r, bad) = References::parse(&read(p)?);
            messages.extend(bad.into_iter().map(|m| format!("{}: {m}", p.display())));
            r
        }
        None => References::default(),
    };
    Ok((ParseContext { vars: resolved, classifications, references }, messages))
}

#[derive(Default)]
struct Loader {
    report: LoadReport,
    /// (gid, sid) → index in `report.rules`.
    seen: HashMap<(u32, u32), usize>,
}

impl Loader {
    fn load_text(&mut self, text: &str, file: Arc<Path>, ctx: &ParseContext) {
        let mut lines = text.lines().enumerate();
        let mut joined = String::new();
        while let Some((i, line)) = lines.next() {
            let first = i + 1;
            // A backslash at the end of a line continues the rule on the next line; the
            // joined rule is checked for a comment afterwards, as Suricata does.
            let mut line = line.strip_suffix('\r').unwrap_or(line);
            joined.clear();
            while let Some(head) = line.strip_suffix('\\') {
                joined.push_str(head);
                match lines.next() {
                    Some((_, next)) => line = next.strip_suffix('\r').unwrap_or(next),
                    None => {
                        line = "";
                        break;
                    }
                }
            }
            joined.push_str(line);
            let rule = joined.trim();
            if rule.is_empty() || rule.starts_with('#') {
                continue;
            }
            let origin = Origin { file: file.clone(), line: u32::try_from(first).unwrap_or(u32::MAX) };
            self.one(rule, origin, ctx);
        }
    }

    fn one(&mut self, text: &str, origin: Origin, ctx: &ParseContext) {
        let rule = match parse_rule(text, origin.clone(), ctx) {
            Ok(r) => r,
            Err(e) => {
                let kind = match e.kind {
                    RuleErrorKind::Syntax(_) => SkipKind::Syntax,
                    RuleErrorKind::Invalid(_) => SkipKind::Invalid,
                    RuleErrorKind::Unsupported { app_layer: true } => SkipKind::AppLayer,
                    RuleErrorKind::Unsupported { app_layer: false } => SkipKind::Unsupported,
                    RuleErrorKind::Unknown => SkipKind::Unknown,
                };
                self.report.skipped.push(Skipped { origin, sid: e.sid, keyword: e.keyword.clone(), kind, reason: e.to_string() });
                return;
            }
        };
        if let Some(k) = app_layer_use(&rule) {
            let reason = match k.strip_prefix("proto:") {
                Some(p) => format!("app-layer protocol {p} in the header is not detected"),
                None => format!("unsupported app-layer keyword {k} (no parser fills it)"),
            };
            self.report.skipped.push(Skipped { origin, sid: Some(rule.sid), keyword: Some(k), kind: SkipKind::AppLayer, reason });
            return;
        }
        let key = (rule.gid, rule.sid);
        match self.seen.get(&key) {
            None => {
                self.seen.insert(key, self.report.rules.len());
                self.report.rules.push(rule);
            }
            Some(&idx) => {
                // As Suricata: the higher revision wins, on a tie the first one stays.
                let old = &self.report.rules[idx];
                let (keep, drop) = if rule.rev > old.rev {
                    let old = std::mem::replace(&mut self.report.rules[idx], rule);
                    (self.report.rules[idx].origin.clone(), old)
                } else {
                    (old.origin.clone(), rule)
                };
                self.report.skipped.push(Skipped {
                    sid: Some(drop.sid),
                    keyword: Some("sid".into()),
                    kind: SkipKind::DuplicateSid,
                    reason: format!("duplicate sid {} (rev {}); the rule at {}:{} is kept", drop.sid, drop.rev, keep.file.display(), keep.line),
                    origin: drop.origin,
                });
            }
        }
    }
}
