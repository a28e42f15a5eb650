//! Rules. This crate owns the Suricata rule language front end: reading rule files (comments,
//! line continuations, several files), resolving address and port variables, parsing the
//! header and the options with Suricata's escaping, `classification.config` and
//! `reference.config`, and checking each rule against the keywords Portcullis supports.
//! Input: rule files and the variables of the config. Output: a [`RuleSet`] of typed
//! [`Rule`]s (the [`ast`] module) plus one [`Skipped`] per rule it could not load, naming the
//! file, line, sid and the keyword. It does not match anything: `portcullis-detect` compiles
//! a `RuleSet` into an engine.

pub mod ast;

pub use ast::*;
