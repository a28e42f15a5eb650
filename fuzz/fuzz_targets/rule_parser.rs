//! Rule text from an untrusted file: the loader (lines, continuations, comments) and the
//! parser must return a rule or an error for any bytes, never panic or loop. Seeds: ET Open
//! rules, written by `fuzz/seed-rules.sh`.
#![no_main]

use std::path::Path;
use std::sync::{Arc, OnceLock};

use libfuzzer_sys::fuzz_target;
use portcullis_rules::{parse_rule, Classifications, Origin, ParseContext, RuleSet, Vars};

fn ctx() -> &'static ParseContext {
    static CTX: OnceLock<ParseContext> = OnceLock::new();
    CTX.get_or_init(|| {
        let mut c = ParseContext::new(&Vars::default());
        let (classes, _) = Classifications::parse("config classification: trojan-activity,A Network Trojan was detected,1\nconfig classification: misc-activity,Misc activity,3\n");
        c.classifications = Some(classes);
        c
    })
}

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let origin = Origin { file: Arc::from(Path::new("fuzz.rules")), line: 1 };
    if let Ok(rule) = parse_rule(&text, origin, ctx()) {
        // What loads must load again from its own text (what --emit-loaded writes).
        let again = parse_rule(&rule.text, rule.origin.clone(), ctx()).expect("a loaded rule's text parses again");
        assert_eq!(again, rule);
    }
    let _ = RuleSet::load_str(&text, "fuzz.rules", ctx());
});
