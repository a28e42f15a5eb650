//! `portcullis rules check`: the JSON shape, the exit status, `--emit-loaded`, and rule files
//! taken from the config.

use std::process::Command;

use serde_json::Value;

const RULES: &str = "\
alert tcp $HOME_NET any -> $EXTERNAL_NET $HTTP_PORTS (msg:\"ok\"; content:\"GET\"; classtype:trojan-activity; sid:1;)
alert http any any -> any any (msg:\"app\"; http.uri; content:\"/x\"; sid:2;)
alert smb any any -> any any (msg:\"app2\"; smb.share; content:\"a\"; sid:3;)
alert tcp any any -> any any (msg:\"unknown\"; frobnicate; sid:4;)
# alert tcp any any -> any any (msg:\"off\"; sid:5;)
alert udp any any -> any 53 (msg:\"ok2\"; \\
  dsize:>100; sid:6;)
";

fn portcullis() -> Command {
    Command::new(env!("CARGO_BIN_EXE_portcullis"))
}

#[test]
fn json_report_exit_status_and_emitted_rules() {
    let dir = tempfile::tempdir().unwrap();
    let rules = dir.path().join("a.rules");
    std::fs::write(&rules, RULES).unwrap();
    std::fs::write(dir.path().join("classification.config"), "config classification: trojan-activity,A Network Trojan was detected,1\n").unwrap();
    let emitted = dir.path().join("loaded.rules");

    let out = portcullis().args(["rules", "check", "--json", "--emit-loaded"]).arg(&emitted).arg(&rules).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v, serde_json::json!({"loaded": 3, "skipped": 2, "skipped_by_keyword": {"smb.share": 1, "frobnicate": 1}, "errors": []}));
    let text = std::fs::read_to_string(&emitted).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 3);
    assert!(lines[0].contains("sid:1;") && lines[1].contains("http.uri") && lines[2].contains("dsize:>100; sid:6;"), "{text}");

    // A file that cannot be read makes the status non-zero; the rest is still reported.
    let out = portcullis().args(["rules", "check"]).arg(&rules).arg(dir.path().join("missing.rules")).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    let s = String::from_utf8_lossy(&out.stdout);
    assert!(s.contains("1 rule file(s): 3 rules loaded, 2 skipped"), "{s}");
    assert!(s.contains("skipped: 1 need app-layer inspection, 0 use an unsupported keyword, 1 an unknown keyword, 0 do not parse, 0 are invalid, 0 repeat a sid"), "{s}");
    assert!(s.contains("a.rules:3: sid 3: unsupported app-layer keyword smb.share (no parser fills it)"), "{s}");
    assert!(s.contains("missing.rules: cannot read"), "{s}");
}

#[test]
fn rule_files_and_vars_from_the_config() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("a.rules"), "alert tcp $MY_NET any -> any any (sid:1;)\n").unwrap();
    let cfg = dir.path().join("c.yaml");
    std::fs::write(&cfg, format!("vars:\n  address-groups:\n    MY_NET: \"[10.0.0.0/8]\"\ndefault-rule-path: {}\nrule-files: [a.rules]\n", dir.path().display())).unwrap();
    let out = portcullis().args(["rules", "check", "--json", "-c"]).arg(&cfg).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["loaded"], 1, "{v}");
}

/// What Portcullis loads of ET Open, Suricata 7 loads too: every rule `--emit-loaded` writes
/// is accepted by `suricata -T` (0 failed). Skips without Suricata or the shared rules.
#[test]
fn suricata_accepts_every_rule_portcullis_loads_from_et_open() {
    let et = portcullis_common::shared_data_dir().join("rules/et-open-2024-04");
    let yaml = std::path::Path::new("/etc/suricata/suricata.yaml");
    let have_suricata = Command::new("suricata").arg("-V").output().is_ok_and(|o| o.status.success());
    if !et.is_dir() || !yaml.exists() || !have_suricata {
        eprintln!("skipping: needs ET Open under the shared data dir, suricata on PATH and {}", yaml.display());
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let loaded = dir.path().join("loaded.rules");
    let mut files: Vec<_> = std::fs::read_dir(&et).unwrap().map(|e| e.unwrap().path()).filter(|p| p.extension().is_some_and(|e| e == "rules")).collect();
    files.sort();
    let out = portcullis().args(["rules", "check", "--json", "--emit-loaded"]).arg(&loaded).args(&files).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    let n = v["loaded"].as_u64().unwrap();
    let out = Command::new("suricata")
        .args(["-T", "-v", "-c"])
        .arg(yaml)
        .arg("-S")
        .arg(&loaded)
        .arg("-l")
        .arg(dir.path())
        .arg("--set")
        .arg(format!("classification-file={}", et.join("classification.config").display()))
        .output()
        .unwrap();
    let log = String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{log}");
    let want = format!("{n} rules successfully loaded, 0 rules failed");
    assert!(log.contains(&want), "suricata did not say `{want}`:\n{}", log.lines().filter(|l| !l.contains("flowbit")).collect::<Vec<_>>().join("\n"));
}

/// Where Portcullis refuses a rule as invalid Suricata 7 refuses it too, and where it accepts
/// an unusual one Suricata accepts it: both lists go through `suricata -T` in one run each.
#[test]
fn suricata_agrees_on_edge_cases() {
    let yaml = std::path::Path::new("/etc/suricata/suricata.yaml");
    let have_suricata = Command::new("suricata").arg("-V").output().is_ok_and(|o| o.status.success());
    if !yaml.exists() || !have_suricata {
        eprintln!("skipping: needs suricata on PATH and {}", yaml.display());
        return;
    }
    let refused = [
        r#"content:"abcde"; within:3;"#,
        r#"content:"abc"; depth:0;"#,
        r#"content:"abc"; depth:2;"#,
        r#"content:"a"; depth:5; distance:1;"#,
        r#"content:"a"; startswith; offset:1;"#,
        r#"content:"a"; depth:1; depth:2;"#,
        r#"nocase;"#,
        r#"content:"a"; byte_test:9,=,1,0;"#,
        r#"content:"a"; fast_pattern:0,5;"#,
        r#"flow:to_server,to_client;"#,
        r#"content:"a\x";"#,
        r#"pcre:"/a/R";"#,
        r#"isdataat:1; pcre:"/a/R";"#,
        r#"content:"x"; pcre:"/a/UR";"#,
    ];
    let accepted = [
        r#"byte_test:1,=,1,0,relative;"#,
        r#"isdataat:1,relative;"#,
        r#"byte_jump:1,0,relative;"#,
        r#"byte_extract:1,0,x,relative;"#,
        r#"pcre:"/b/"; pcre:"/a/R";"#,
        r#"content:"x"; pkt_data; pcre:"/a/R";"#,
        r#"content:"x"; distance:0;"#,
        r#"content:"a"; byte_test:0,=,0,0,string,dec;"#,
        r#"flowbits:set,a&b;"#,
        r#"msg:"a \d b"; content:"x";"#,
    ];
    let dir = tempfile::tempdir().unwrap();
    for (list, want_loaded) in [(&refused[..], false), (&accepted[..], true)] {
        let file = dir.path().join(if want_loaded { "accepted.rules" } else { "refused.rules" });
        let text: String = list.iter().enumerate().map(|(i, o)| format!("alert tcp any any -> any any ({o} sid:{};)\n", i + 1)).collect();
        std::fs::write(&file, &text).unwrap();
        let out = portcullis().args(["rules", "check", "--json"]).arg(&file).output().unwrap();
        let v: Value = serde_json::from_slice(&out.stdout).unwrap();
        let n = list.len() as u64;
        assert_eq!(v["loaded"].as_u64().unwrap(), if want_loaded { n } else { 0 }, "{v}");
        let out = Command::new("suricata").args(["-T", "-v", "-c"]).arg(yaml).arg("-S").arg(&file).arg("-l").arg(dir.path()).output().unwrap();
        let log = String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
        if want_loaded {
            let want = format!("{n} rules successfully loaded, 0 rules failed");
            assert!(log.contains(&want), "suricata did not say `{want}`:\n{log}");
        } else {
            // With nothing loaded Suricata prints no tally, one error per refused rule.
            let refused = log.lines().filter(|l| l.contains("error parsing signature")).count();
            assert_eq!(refused as u64, n, "{log}");
        }
    }
}
