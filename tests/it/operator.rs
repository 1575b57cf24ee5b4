//! What an operator sees from the command line and in the logs: JSON log lines that parse,
//! clear errors for missing or bad options, `--api host:port`, the version with its revision,
//! and shell completions.

use std::process::{Command, Stdio};

use serde_json::{Value, json};

use crate::support::*;

fn beacon(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_beacon"))
        .args(args)
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

#[test]
fn json_log_lines_parse_and_carry_level_target_and_fields() {
    let dir = TempDir::new("logs");
    let master = FakeMaster::start(
        &dir,
        &std::fs::read(conformance("fake-loopback-leader.json")).unwrap(),
    );
    let (dns, http) = (free_port(), free_port());
    let config = json!({"masters": [master.addr.to_string()], "listener": "127.0.0.1", "port": dns,
        "HTTPListener": "127.0.0.1", "httpport": http, "externalOn": false});
    let path = dir.path("config.json");
    std::fs::write(&path, config.to_string()).unwrap();
    let child = Command::new(env!("CARGO_BIN_EXE_beacon"))
        .args(["agent", "--log-format", "json", "--mesos-dns-config"])
        .arg(&path)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut proc = Proc(child);
    let http_addr = ([127, 0, 0, 1], http).into();
    wait_until("agent ready", || {
        http_get(http_addr, "/readyz").is_ok_and(|r| r.status == 200)
    });
    // SAFETY: kill has no memory preconditions; the PID is our own child's.
    unsafe { libc::kill(proc.0.id() as libc::pid_t, libc::SIGTERM) };
    let stderr = proc.0.stderr.take().unwrap();
    let text = std::io::read_to_string(stderr).unwrap();
    let lines: Vec<Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l:?}")))
        .collect();
    assert!(lines.len() >= 2, "{text}");
    let started = (lines.iter())
        .find(|l| l["fields"]["message"] == "beacon agent started")
        .unwrap_or_else(|| panic!("{text}"));
    assert_eq!(started["level"], "INFO");
    assert_eq!(started["fields"]["dns"], format!("127.0.0.1:{dns}"));
    assert!(!text.contains("\u{1b}["), "no colour codes in a file");
}

#[test]
fn missing_or_bad_options_say_what_to_do() {
    let none = beacon(&["agent"]);
    let err = String::from_utf8_lossy(&none.stderr);
    assert!(!none.status.success());
    assert!(
        err.contains("--config") && err.contains("--mesos-dns-config"),
        "{err}"
    );
    let bad = beacon(&[
        "agent",
        "--mesos-dns-config",
        "/nonexistent.json",
        "--log",
        "info,[[",
    ]);
    let err = String::from_utf8_lossy(&bad.stderr);
    assert!(!bad.status.success());
    assert!(err.contains("invalid log filter"), "{err}");
    let version = beacon(&["--version"]);
    let out = String::from_utf8_lossy(&version.stdout);
    assert!(out.starts_with("beacon ") && out.contains('('), "{out}");
    let completions = beacon(&["completions", "bash"]);
    assert!(String::from_utf8_lossy(&completions.stdout).contains("_beacon"));
}

#[test]
fn operator_commands_take_host_and_port_without_a_scheme() {
    let dir = TempDir::new("operator");
    let master = FakeMaster::start(
        &dir,
        &std::fs::read(conformance("fake-loopback-leader.json")).unwrap(),
    );
    let agent = Agent::start(&dir, json!({}), master.addr);
    let out = beacon(&["members", "--json", "--api", &agent.http.to_string()]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let members: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(members.as_array().map(Vec::len), Some(1), "{members}");
}

/// `promtool`, or `None` outside CI when it is not installed (under `CI=true` it must be).
fn promtool() -> Option<&'static str> {
    let found = Command::new("promtool")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    match (found, std::env::var("CI").as_deref() == Ok("true")) {
        (true, _) => Some("promtool"),
        (false, true) => {
            panic!("CI=true but promtool is missing: install Debian's prometheus package")
        }
        (false, false) => {
            eprintln!("skipping: promtool not installed (apt-get install prometheus)");
            None
        }
    }
}

#[test]
fn metrics_and_alerting_rules_pass_promtool() {
    let Some(promtool) = promtool() else { return };
    let rules = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/packaging/prometheus/beacon-rules.yml"
    );
    let out = Command::new(promtool)
        .args(["check", "rules", rules])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    let dir = TempDir::new("promtool");
    let master = FakeMaster::start(
        &dir,
        &std::fs::read(conformance("fake-loopback-leader.json")).unwrap(),
    );
    let agent = Agent::start(&dir, json!({}), master.addr);
    let _ = query(
        agent.dns,
        "leader.mesos.",
        hickory_proto::rr::RecordType::A,
        Ask::UDP,
    );
    let metrics = http_get(agent.http, "/metrics").unwrap().body;
    let mut child = Command::new(promtool)
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    std::io::Write::write_all(&mut child.stdin.take().unwrap(), &metrics).unwrap();
    let out = child.wait_with_output().unwrap();
    let report = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "promtool check metrics: {report}");
}
