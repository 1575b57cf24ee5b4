//! Robustness of the Mesos state parser: whatever a master (or anything pretending to be one)
//! sends, `parse_state` returns `Ok` or `Err`, never panics or overflows the stack, and a
//! catalog it accepts is safe to use.
//!
//! Case counts default to 2,000-5,000 per property so that the file runs in about 20 s
//! in a debug build on 2 cores; `PROPTEST_CASES` overrides them all.

use std::net::{IpAddr, Ipv6Addr};
use std::sync::LazyLock;

use beacon_catalog::mesos::{StateError, parse_state};
use beacon_catalog::{Catalog, Pid};
use proptest::prelude::*;
use serde_json::{Map, Number, Value, json};

const FIXTURE: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../shared/conformance/mesos-dns/fake.json"
);

static FIXTURE_BYTES: LazyLock<Vec<u8>> =
    LazyLock::new(|| std::fs::read(FIXTURE).expect("shared/ must sit beside the checkout"));

static FIXTURE_VALUE: LazyLock<Value> =
    LazyLock::new(|| serde_json::from_slice(&FIXTURE_BYTES).expect("fixture is JSON"));

/// `cases` unless `PROPTEST_CASES` is set (`ProptestConfig::with_cases` would override the
/// variable). No failure persistence: a failing input is printed, not written beside the tests.
fn config(cases: u32) -> ProptestConfig {
    let mut config = ProptestConfig::default();
    if std::env::var_os("PROPTEST_CASES").is_none() {
        config.cases = cases;
    }
    config.failure_persistence = None;
    config
}

// ---------------------------------------------------------------------------------------------
// The properties every outcome must satisfy.

/// Parses `body` and checks everything that may be asked of the result.
fn check(body: &[u8]) -> Result<(), TestCaseError> {
    match parse_state(body) {
        Ok(catalog) => check_catalog(&catalog),
        Err(error) => {
            // Formatting the error must not panic either (it is logged).
            let text = error.to_string();
            prop_assert!(!text.is_empty());
            if let StateError::BadPid { value, .. } = &error {
                prop_assert!(beacon_catalog::mesos::parse_pid(value).is_err());
            }
            Ok(())
        }
    }
}

fn check_pid(pid: &Pid) -> Result<(), TestCaseError> {
    prop_assert!(!pid.host.is_empty(), "empty pid host: {pid:?}");
    if pid.host.contains(':') {
        prop_assert!(
            pid.host.parse::<Ipv6Addr>().is_ok(),
            "host with ':' that is not IPv6: {pid:?}"
        );
    }
    // Display is used in logs and the HTTP API.
    let _ = pid.to_string();
    Ok(())
}

fn check_catalog(c: &Catalog) -> Result<(), TestCaseError> {
    prop_assert!(
        !c.leader_raw.trim().is_empty(),
        "accepted a state without leader"
    );
    if let Some(leader) = &c.leader {
        check_pid(leader)?;
    }
    for agent in &c.agents {
        if let Some(pid) = &agent.pid {
            check_pid(pid)?;
        }
        prop_assert!(c.agent(&agent.id).is_some());
    }

    let names = c.hostnames();
    prop_assert!(names.windows(2).all(|w| w[0] < w[1]), "not sorted/deduped");
    for name in &names {
        prop_assert!(!name.is_empty());
        prop_assert!(
            name.parse::<IpAddr>().is_err(),
            "IP literal {name:?} listed"
        );
        prop_assert!(c.ips_of(name).is_empty(), "nothing is resolved yet");
    }

    // Walking every expanded port of thousands of `[0-65535]` tasks would take minutes in debug
    // builds; past this budget ranges are checked arithmetically only.
    let mut budget: u64 = 2_000_000;
    let mut tasks = 0;
    for fw in &c.frameworks {
        if let Some(pid) = &fw.pid {
            check_pid(pid)?;
        }
        for task in &fw.tasks {
            tasks += 1;
            let _ = task.is_running();
            if let Some(status) = task.latest_running_status() {
                prop_assert_eq!(status.state.as_str(), "TASK_RUNNING");
            }
            // Every range is non-empty and ascending; the expansion is exactly each range in
            // order, so every port is a real u16 within its range.
            let mut expanded = task.expanded_ports();
            let mut total: u64 = 0;
            let size: u64 = task
                .ports
                .iter()
                .map(|r| u64::from(r.end.saturating_sub(r.begin)) + 1)
                .sum();
            if size > budget {
                for range in &task.ports {
                    prop_assert!(range.begin <= range.end, "inverted range {range:?}");
                }
                continue;
            }
            budget -= size;
            for range in &task.ports {
                prop_assert!(range.begin <= range.end, "inverted range {range:?}");
                let mut want = u32::from(range.begin);
                while want <= u32::from(range.end) {
                    let got = expanded.next();
                    prop_assert_eq!(got.map(u32::from), Some(want), "range {:?}", range);
                    want += 1;
                    total += 1;
                }
            }
            prop_assert_eq!(expanded.next(), None, "ports beyond the ranges");
            prop_assert_eq!(total, size);
        }
    }
    prop_assert_eq!(c.task_count(), tasks);
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Strategies.

/// Field names the parser reads, so that mutations hit what matters.
const KEYS: &[&str] = &[
    "leader",
    "pid",
    "slaves",
    "frameworks",
    "tasks",
    "id",
    "name",
    "hostname",
    "slave_id",
    "state",
    "statuses",
    "timestamp",
    "labels",
    "key",
    "value",
    "container_status",
    "network_infos",
    "ip_addresses",
    "ip_address",
    "resources",
    "ports",
    "discovery",
    "number",
    "protocol",
];

fn key() -> impl Strategy<Value = String> {
    prop_oneof![
        8 => proptest::sample::select(KEYS).prop_map(str::to_string),
        1 => "[a-z_]{0,8}",
    ]
}

/// Strings aimed at the pid, ports and address parsers, plus some that stress everything else.
fn nasty_string() -> impl Strategy<Value = String> {
    let fixed = proptest::sample::select(vec![
        "",
        " ",
        "\"",
        "\"\"",
        "[1-2, x]",
        "[65535-0]",
        "[0-65535]",
        "[65536-65537]",
        "[-1-5]",
        "[4294967296-1]",
        "[1-2,,3-4]",
        "[ 31000 - 31002 ]",
        "[-]",
        "[",
        "]",
        "[]",
        "[[]]",
        "1-2",
        "master@1.2.3.4:5050",
        "\"master@1.2.3.4:5050\"",
        "@:",
        "a@:1",
        "a@h:",
        "a@h:-1",
        "a@h:65536",
        "a@h:99999999999999999999",
        "a@[::1]:5",
        "a@[:::]:5",
        "a@::1:5",
        "a@[fe80::1%eth0]:1",
        "a@[]:1",
        "a@[[x]]:1",
        "a@b@c:1",
        "@@@",
        "slave(1)@1.2.3.10:5051",
        "TASK_RUNNING",
        "TASK_KILLED",
        "fd01:b::1:8000:2",
        "999.1.1.1",
        "\u{0}",
        "\u{feff}é\u{10ffff}",
        "\u{7f}\u{85}\u{2028}",
    ])
    .prop_map(str::to_string);
    prop_oneof![
        6 => fixed,
        3 => r"\[[0-9x, \-]{0,24}\]",
        3 => r"[a-z@:\[\]0-9. ()\x22%-]{0,24}",
        1 => any::<String>(),
        1 => (1usize..200_000).prop_map(|n| "x".repeat(n)),
        1 => (1usize..2_000).prop_map(|n| "[1-2, ".repeat(n)),
    ]
}

fn nasty_number() -> impl Strategy<Value = Value> {
    prop_oneof![
        proptest::sample::select(vec![
            json!(0),
            json!(-1),
            json!(65535),
            json!(65536),
            json!(u64::MAX),
            json!(i64::MIN),
            json!(u32::MAX),
            json!(1e308),
            json!(-1e308),
            json!(0.5),
            json!(-0.0),
            json!(f64::MIN_POSITIVE),
            json!(1_415_029_403.656_75),
        ]),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        any::<f64>().prop_filter_map("finite", |f| Number::from_f64(f).map(Value::Number)),
    ]
}

fn scalar() -> impl Strategy<Value = Value> {
    prop_oneof![
        4 => nasty_string().prop_map(Value::String),
        3 => nasty_number(),
        1 => any::<bool>().prop_map(Value::Bool),
        1 => Just(Value::Null),
    ]
}

/// Any small JSON value, with the parser's field names as keys.
fn value() -> impl Strategy<Value = Value> {
    scalar().prop_recursive(4, 48, 6, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            proptest::collection::vec((key(), inner.clone()), 0..6)
                .prop_map(|kv| Value::Object(kv.into_iter().collect::<Map<_, _>>())),
            // Shapes that are almost right: labels lists, wrapped labels, port objects.
            (inner.clone(), inner.clone())
                .prop_map(|(k, v)| json!({"labels": [{"key": k, "value": v}]})),
            inner
                .clone()
                .prop_map(|v| json!([{"key": "k", "value": v}])),
            (inner.clone(), inner)
                .prop_map(|(n, p)| json!({"ports": [{"number": n, "protocol": p}]})),
        ]
    })
}

/// Where a mutation applies.
#[derive(Clone, Debug)]
enum Target {
    /// A random walk from the root: each index picks a member of the current object or array.
    Walk(Vec<usize>),
    /// The `n`th (modulo the count) object member named `key`, anywhere in the document.
    Key(String, usize),
}

/// What a mutation does there.
#[derive(Clone, Debug)]
enum Op {
    Replace(Value),
    Delete,
    /// Wrap the value in an array.
    WrapArray,
    /// Replace the value by its own JSON text (numbers become strings, lists become strings...).
    Stringify,
    /// Replace a string by a number, a number by a string, a list by an object, etc.
    ChangeType,
    /// Insert `key: value` into the target (when it is an object) or push into it (array).
    Insert(String, Value),
    /// Repeat the target's elements (when an array) `n` times.
    Repeat(usize),
}

fn target() -> impl Strategy<Value = Target> {
    prop_oneof![
        2 => proptest::collection::vec(any::<usize>(), 0..9).prop_map(Target::Walk),
        3 => (proptest::sample::select(KEYS).prop_map(str::to_string), any::<usize>())
            .prop_map(|(k, n)| Target::Key(k, n)),
    ]
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        5 => value().prop_map(Op::Replace),
        2 => Just(Op::Delete),
        1 => Just(Op::WrapArray),
        1 => Just(Op::Stringify),
        2 => Just(Op::ChangeType),
        2 => (key(), value()).prop_map(|(k, v)| Op::Insert(k, v)),
        1 => (2usize..40).prop_map(Op::Repeat),
    ]
}

/// A byte-level edit of the serialised document, so that near-valid JSON is tried as well.
#[derive(Clone, Debug)]
enum ByteEdit {
    Truncate(usize),
    Set(usize, u8),
    Insert(usize, u8),
}

fn byte_edit() -> impl Strategy<Value = ByteEdit> {
    prop_oneof![
        any::<usize>().prop_map(ByteEdit::Truncate),
        (any::<usize>(), any::<u8>()).prop_map(|(i, b)| ByteEdit::Set(i, b)),
        (
            any::<usize>(),
            proptest::sample::select(b"{}[]\",:-0123456789.e\\ntf".to_vec())
        )
            .prop_map(|(i, b)| ByteEdit::Insert(i, b)),
    ]
}

// ---------------------------------------------------------------------------------------------
// Applying mutations.

#[derive(Clone, Debug)]
enum Seg {
    Key(String),
    Index(usize),
}

fn walk(root: &Value, picks: &[usize]) -> Vec<Seg> {
    let mut path = Vec::new();
    let mut cur = root;
    for &pick in picks {
        match cur {
            Value::Object(map) if !map.is_empty() => {
                let (k, v) = map.iter().nth(pick % map.len()).expect("in range");
                path.push(Seg::Key(k.clone()));
                cur = v;
            }
            Value::Array(items) if !items.is_empty() => {
                let i = pick % items.len();
                path.push(Seg::Index(i));
                cur = &items[i];
            }
            _ => break,
        }
    }
    path
}

fn find_key(root: &Value, key: &str) -> Vec<Vec<Seg>> {
    fn go(v: &Value, key: &str, path: &mut Vec<Seg>, out: &mut Vec<Vec<Seg>>) {
        match v {
            Value::Object(map) => {
                for (k, child) in map {
                    path.push(Seg::Key(k.clone()));
                    if k == key {
                        out.push(path.clone());
                    }
                    go(child, key, path, out);
                    path.pop();
                }
            }
            Value::Array(items) => {
                for (i, child) in items.iter().enumerate() {
                    path.push(Seg::Index(i));
                    go(child, key, path, out);
                    path.pop();
                }
            }
            _ => {}
        }
    }
    let mut out = Vec::new();
    go(root, key, &mut Vec::new(), &mut out);
    out
}

fn get_mut<'v>(root: &'v mut Value, path: &[Seg]) -> Option<&'v mut Value> {
    let mut cur = root;
    for seg in path {
        cur = match (seg, cur) {
            (Seg::Key(k), Value::Object(map)) => map.get_mut(k)?,
            (Seg::Index(i), Value::Array(items)) => items.get_mut(*i)?,
            _ => return None,
        };
    }
    Some(cur)
}

fn change_type(v: &Value) -> Value {
    match v {
        Value::Null => json!(false),
        Value::Bool(b) => json!(u8::from(*b)),
        Value::Number(n) => Value::String(n.to_string()),
        Value::String(s) => s
            .parse::<f64>()
            .ok()
            .and_then(Number::from_f64)
            .map_or_else(|| json!(s.len()), Value::Number),
        Value::Array(items) => Value::Object(
            items
                .iter()
                .enumerate()
                .map(|(i, v)| (i.to_string(), v.clone()))
                .collect(),
        ),
        Value::Object(map) => Value::Array(map.values().cloned().collect()),
    }
}

fn apply(root: &mut Value, target: &Target, op: &Op) {
    let path = match target {
        Target::Walk(picks) => walk(root, picks),
        Target::Key(key, n) => {
            let all = find_key(root, key);
            if all.is_empty() {
                return;
            }
            all[n % all.len()].clone()
        }
    };
    if let Op::Delete = op {
        let Some((last, parent)) = path.split_last() else {
            *root = Value::Null;
            return;
        };
        match (get_mut(root, parent), last) {
            (Some(Value::Object(map)), Seg::Key(k)) => {
                map.remove(k);
            }
            (Some(Value::Array(items)), Seg::Index(i)) if *i < items.len() => {
                items.remove(*i);
            }
            _ => {}
        }
        return;
    }
    let Some(slot) = get_mut(root, &path) else {
        return;
    };
    match op {
        Op::Replace(v) => *slot = v.clone(),
        Op::Delete => unreachable!(),
        Op::WrapArray => *slot = Value::Array(vec![slot.take()]),
        Op::Stringify => *slot = Value::String(slot.to_string()),
        Op::ChangeType => *slot = change_type(slot),
        Op::Insert(k, v) => match slot {
            Value::Object(map) => {
                map.insert(k.clone(), v.clone());
            }
            Value::Array(items) => items.push(v.clone()),
            other => {
                let mut map = Map::new();
                map.insert(k.clone(), v.clone());
                *other = Value::Object(map);
            }
        },
        Op::Repeat(n) => {
            // Bounded, so that nested repeats cannot blow a case up exponentially.
            if let Value::Array(items) = slot {
                let copy = items.clone();
                for _ in 1..*n {
                    if items.len() + copy.len() > MAX_REPEATED {
                        break;
                    }
                    items.extend(copy.iter().cloned());
                }
            }
        }
    }
}

/// The most elements an `Op::Repeat` grows an array to.
const MAX_REPEATED: usize = 64;

fn edit_bytes(mut body: Vec<u8>, edit: &ByteEdit) -> Vec<u8> {
    let len = body.len().max(1);
    match *edit {
        ByteEdit::Truncate(i) => body.truncate(i % len),
        ByteEdit::Set(i, b) => {
            if !body.is_empty() {
                body[i % len] = b;
            }
        }
        ByteEdit::Insert(i, b) => body.insert(i % (body.len() + 1), b),
    }
    body
}

// ---------------------------------------------------------------------------------------------
// Properties.

/// JSON-ish token soup: much more often syntactically valid than random bytes, so the typed
/// deserialiser is reached.
fn token_soup() -> impl Strategy<Value = Vec<u8>> {
    let token = proptest::sample::select(vec![
        "{",
        "}",
        "[",
        "]",
        ",",
        ":",
        "\"leader\"",
        "\"frameworks\"",
        "\"slaves\"",
        "\"tasks\"",
        "\"pid\"",
        "\"ports\"",
        "\"resources\"",
        "\"labels\"",
        "\"statuses\"",
        "\"timestamp\"",
        "\"discovery\"",
        "\"number\"",
        "\"state\"",
        "\"master@1.2.3.4:5050\"",
        "\"[1-2]\"",
        "\"TASK_RUNNING\"",
        "null",
        "true",
        "0",
        "-1",
        "1e400",
        "18446744073709551616",
        "0.5",
        "\"\\ud800\"",
        "\"\\u0000\"",
        "\"",
        " ",
    ]);
    proptest::collection::vec(token, 0..200).prop_map(|t| t.concat().into_bytes())
}

proptest! {
    #![proptest_config(config(5000))]

    #[test]
    fn arbitrary_bytes_never_panic(body in proptest::collection::vec(any::<u8>(), 0..1024)) {
        check(&body)?;
    }

    #[test]
    fn token_soup_never_panics(body in token_soup()) {
        check(&body)?;
    }
}

proptest! {
    #![proptest_config(config(3000))]

    /// A random JSON document, sometimes under a valid leader so the typed fields are reached.
    #[test]
    fn arbitrary_json_never_panics(
        with_leader in any::<bool>(),
        fields in proptest::collection::vec((key(), value()), 0..6),
    ) {
        let mut map: Map<String, Value> = fields.into_iter().collect();
        if with_leader {
            map.insert("leader".into(), json!("master@1.2.3.4:5050"));
        }
        check(&serde_json::to_vec(&Value::Object(map)).unwrap())?;
    }
}

proptest! {
    #![proptest_config(config(2000))]

    /// The real fixture with fields replaced, deleted or retyped at random paths, and sometimes
    /// a byte-level edit of the result.
    #[test]
    fn mutated_fixture_never_panics(
        mutations in proptest::collection::vec((target(), op()), 1..8),
        byte in proptest::option::weighted(0.2, byte_edit()),
    ) {
        let mut doc = FIXTURE_VALUE.clone();
        for (target, op) in &mutations {
            apply(&mut doc, target, op);
        }
        let mut body = serde_json::to_vec(&doc).unwrap();
        if let Some(edit) = &byte {
            body = edit_bytes(body, edit);
        }
        check(&body)?;
    }
}

// ---------------------------------------------------------------------------------------------
// Deterministic cases.

#[test]
fn the_fixture_itself_passes_the_checks() {
    let catalog = parse_state(&FIXTURE_BYTES).unwrap();
    check_catalog(&catalog).unwrap();
    assert!(catalog.task_count() > 0);
}

fn nested(depth: usize, open: &str, close: &str, inner: &str) -> String {
    let mut s = String::with_capacity(depth * (open.len() + close.len()) + inner.len());
    for _ in 0..depth {
        s.push_str(open);
    }
    s.push_str(inner);
    for _ in 0..depth {
        s.push_str(close);
    }
    s
}

fn wrap_in_state(field_path: &str, deep: &str) -> String {
    // field_path is a JSON fragment with `@` where the deep value goes.
    format!(
        r#"{{"leader":"master@1.2.3.4:5050",{}}}"#,
        field_path.replace('@', deep)
    )
}

#[test]
fn deep_nesting_at_the_top_is_an_error() {
    for (open, close) in [("[", "]"), ("{\"a\":", "}")] {
        let body = nested(10_000, open, close, "1");
        assert!(
            parse_state(body.as_bytes()).is_err(),
            "{open}...{close} accepted"
        );
    }
    // Unterminated, too.
    let body = "[".repeat(10_000);
    assert!(parse_state(body.as_bytes()).is_err());
}

/// Where the parser buffers a value whole (the untagged `labels` either-list goes through
/// serde's `Content`), serde_json's recursion limit (128) turns 10k levels into an error rather
/// than a stack overflow. Typed fields reject a nested list at its first element.
#[test]
fn deep_nesting_in_parsed_fields_is_an_error() {
    let deep = nested(10_000, "[", "]", "");
    for (place, recursion_limit) in [
        (r#""frameworks":[{"tasks":[{"labels":@}]}]"#, true),
        (
            r#""frameworks":[{"tasks":[{"labels":{"labels":@}}]}]"#,
            true,
        ),
        (
            r#""frameworks":[{"tasks":[{"statuses":[{"labels":@}]}]}]"#,
            true,
        ),
        (
            r#""frameworks":[{"tasks":[{"discovery":{"ports":{"ports":@}}}]}]"#,
            false,
        ),
        (r#""slaves":@"#, false),
        (r#""frameworks":@"#, false),
    ] {
        let body = wrap_in_state(place, &deep);
        match parse_state(body.as_bytes()) {
            Err(StateError::Json(e)) => assert_eq!(
                e.to_string().contains("recursion limit"),
                recursion_limit,
                "{place}: {e}"
            ),
            other => panic!("{place}: expected a JSON error, got {other:?}"),
        }
    }
    let deep_objects = nested(10_000, r#"{"labels":"#, "}", "[]");
    let body = wrap_in_state(r#""frameworks":[{"tasks":[{"labels":@}]}]"#, &deep_objects);
    match parse_state(body.as_bytes()) {
        Err(StateError::Json(e)) => assert!(e.to_string().contains("recursion limit"), "{e}"),
        other => panic!("expected the recursion limit, got {other:?}"),
    }
}

/// Fields the parser ignores are skipped by serde_json without recursion, so depth there is
/// harmless: the state is accepted.
#[test]
fn deep_nesting_in_ignored_fields_is_skipped() {
    let deep = nested(100_000, "[", "]", "");
    let body = wrap_in_state(r#""flags":@"#, &deep);
    let catalog = parse_state(body.as_bytes()).expect("ignored field");
    check_catalog(&catalog).unwrap();
    let body = wrap_in_state(r#""frameworks":[{"tasks":[{"executor":@}]}]"#, &deep);
    let catalog = parse_state(body.as_bytes()).expect("ignored field");
    assert_eq!(catalog.task_count(), 1);
}

#[test]
fn hostile_ports_and_pids() {
    let ports_case = |ports: &str| {
        let body = json!({
            "leader": "master@1.2.3.4:5050",
            "frameworks": [{"tasks": [{"resources": {"ports": ports}}]}],
        });
        parse_state(&serde_json::to_vec(&body).unwrap()).unwrap()
    };
    for ports in [
        "[1-2, x]",
        "[65535-0]",
        "[65536-65537]",
        "[-1-5]",
        "[",
        "]",
        "[,]",
    ] {
        let c = ports_case(ports);
        check_catalog(&c).unwrap();
        let t = &c.frameworks[0].tasks[0];
        let want: Vec<u16> = if ports == "[1-2, x]" {
            vec![1, 2]
        } else {
            vec![]
        };
        assert_eq!(t.expanded_ports().collect::<Vec<_>>(), want, "{ports}");
    }
    let c = ports_case("[0-65535]");
    check_catalog(&c).unwrap();
    assert_eq!(c.frameworks[0].tasks[0].expanded_ports().count(), 65536);

    for pid in ["a@[:::]:5", "a@[]:1", "a@h:65536", "a@h:-1", "a@h", "@", ""] {
        let body = json!({"leader": "master@1.2.3.4:5050", "slaves": [{"pid": pid}]});
        assert!(
            matches!(
                parse_state(&serde_json::to_vec(&body).unwrap()),
                Err(StateError::BadPid { .. })
            ),
            "{pid:?}"
        );
    }
    // A leader that is not a pid still counts as a leader (Mesos-DNS only needs it non-empty).
    let c = parse_state(br#"{"leader":"not a pid"}"#).unwrap();
    assert!(c.leader.is_none());
    check_catalog(&c).unwrap();
}

/// Replaces the first `key` member inside `frameworks` (the part of the state that is parsed;
/// agents' resources, for one, are ignored).
fn replace_first_under_frameworks(doc: &mut Value, key: &str, v: Value) {
    let path = find_key(doc, key)
        .into_iter()
        .find(|p| matches!(p.first(), Some(Seg::Key(k)) if k == "frameworks"))
        .unwrap_or_else(|| panic!("no {key} under frameworks"));
    *get_mut(doc, &path).unwrap() = v;
}

#[test]
fn wrongly_typed_fields_reject_the_state() {
    for (place, v) in [
        ("timestamp", json!("1415029403.65")),
        ("timestamp", json!([])),
        ("labels", json!("x")),
        ("labels", json!(5)),
        ("ports", json!([31000])),
        ("number", json!(-1)),
        ("number", json!(80.5)),
        ("number", json!("80")),
    ] {
        let mut doc = FIXTURE_VALUE.clone();
        replace_first_under_frameworks(&mut doc, place, v.clone());
        assert!(
            matches!(
                parse_state(&serde_json::to_vec(&doc).unwrap()),
                Err(StateError::Json(_))
            ),
            "{place} = {v}"
        );
    }
    // Out-of-range discovery port numbers are dropped, not fatal.
    let mut doc = FIXTURE_VALUE.clone();
    replace_first_under_frameworks(&mut doc, "number", json!(u64::MAX));
    check(&serde_json::to_vec(&doc).unwrap()).unwrap();
    assert!(parse_state(&serde_json::to_vec(&doc).unwrap()).is_ok());
}
