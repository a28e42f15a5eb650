//! Rules. This crate owns the Suricata rule language front end: reading rule files (comments,
//! line continuations, several files), resolving address and port variables, parsing the
//! header and the options with Suricata's escaping, `classification.config` and
//! `reference.config`, and checking each rule against the keywords Portcullis supports.
//! Input: rule files and the variables of the config. Output: the typed [`Rule`]s (the
//! [`ast`] module) plus one [`Skipped`] per rule it could not load, naming the file, line,
//! sid and the keyword. It does not match anything: `portcullis-detect` compiles the rules
//! into an engine.
//!
//! The public API:
//! - [`RuleSet::load`]`(files: &[PathBuf], vars: &Vars, classification: Option<&Path>,
//!   reference: Option<&Path>) -> Result<LoadReport, RulesError>`: the whole load.
//!   [`LoadReport`] has `rules: Vec<Rule>`, `skipped: Vec<Skipped>` (`origin`, `sid`,
//!   `keyword`, `kind`, `reason`), `errors: Vec<String>` (unreadable rule files, bad config
//!   lines) and `files`. Only an unreadable classification/reference file or a variable that
//!   does not resolve is a [`RulesError`]; a bad rule never stops the load.
//! - [`RuleSet::load_str`]`(text, name, &ParseContext) -> LoadReport`: the same for a string
//!   (tests, fixtures); [`build_context`] or [`ParseContext::new`]`(&Vars)` make the context.
//! - [`parse_rule`]`(text: &str, origin: Origin, ctx: &ParseContext) -> Result<Rule,
//!   RuleError>`: one rule. [`RuleError`] carries the column (byte offset in the rule), the
//!   keyword and the sid. A rule with an app-layer sticky buffer parses (into
//!   [`Buffer::Sticky`]); [`app_layer_use`] names a buffer or protocol no app-layer parser
//!   serves ([`keywords::APP_BUFFERS`], [`keywords::APP_PROTOS`]), and the loader skips it.
//! - [`keywords::lookup`]: the one registry of keywords and their support.
//! - [`Vars`]: `address_groups`/`port_groups`; `Vars::default()` is Suricata 7's
//!   `suricata.yaml`.
//!
//! A rule loads when every keyword is supported by the engine. App-layer keywords (sticky
//! buffers, legacy `http_*` modifiers, pcre buffer flags such as `/U`, `urilen`,
//! `tls.version`, `ssl_version`, `dns.opcode`, `app-layer-protocol`, the HTTP, TLS, DNS and
//! SSH protocols in the header) load; one for a protocol Portcullis does not parse (SMB,
//! SMTP, FTP, ...) or an app-layer keyword it does not evaluate is skipped as
//! [`SkipKind::AppLayer`], naming it.

pub mod ast;
pub mod keywords;
mod load;
pub mod meta;
mod parse;
pub mod vars;

pub use ast::*;
pub use load::{build_context, LoadReport, RuleSet, RulesError, SkipKind, Skipped};
pub use meta::{Classifications, References};
pub use parse::{app_layer_use, parse_rule, ParseContext, RuleError, RuleErrorKind};
pub use vars::{ResolvedVars, Vars};
