//! The web view in a real browser: Debian's headless Chromium loads `/ui` from a running
//! `beacon demo`, and the test reads what the page shows through the DevTools protocol: the three
//! nodes, `demo-web` and its VIP, then a service registered after the page loaded, without a
//! reload. Chromium runs only against loopback, with a throw-away profile.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::os::unix::process::CommandExt;
use std::process::{Child, ChildStdout, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::support::*;

/// Chromium's binaries, headless shell first.
const BROWSERS: [&str; 3] = [
    "/usr/bin/chromium-headless-shell",
    "/usr/bin/chromium",
    "/usr/bin/chromium-browser",
];

/// The browser, or `None` (after saying why) where the test may be skipped. Under `CI=true`
/// (`.ci/run` installs `chromium-headless-shell`) a missing browser fails the test.
fn browser() -> Option<&'static str> {
    if let Some(found) = BROWSERS.iter().find(|b| std::path::Path::new(b).exists()) {
        return Some(found);
    }
    assert!(
        !beacon_test_support::privileged::in_ci(),
        "CI=true and no Chromium at {BROWSERS:?}: `apt-get install chromium-headless-shell`"
    );
    eprintln!(
        "skipped: the web view test needs Chromium (`apt-get install chromium-headless-shell`)"
    );
    None
}

#[test]
fn web_view_shows_the_demo_and_updates_without_a_reload() {
    let Some(browser) = browser() else { return };
    let _one = root_cgroup_data_plane();
    let demo = Demo::start();
    let url = format!("http://{}/ui", demo.http[0]);
    let dir = TempDir::new("ui");
    let chromium = Chromium::start(browser, &dir);
    let mut page = chromium.page();
    page.call("Page.navigate", json!({"url": url}));

    let text = page.wait_for_text("the demo on the page", |t| {
        ["n1", "n2", "n3", "demo-web.marathon.mesos"]
            .iter()
            .all(|s| t.contains(s))
            && t.contains("demo-web.marathon.l4lb.thisdcos.directory:80")
    });
    for state in text
        .lines()
        .filter(|l| l.starts_with("n2\t") || l.starts_with("n3\t"))
    {
        assert!(state.contains("\tup\t"), "a member not up: {state}\n{text}");
    }
    let vip = text
        .lines()
        .find(|l| l.contains("demo-web.marathon.l4lb.thisdcos.directory:80"))
        .unwrap();
    assert!(vip.contains(" 11."), "the VIP's address is shown: {vip}");

    // A mark in the page: a reload would lose it.
    page.evaluate("window.beaconTestMark = 'same page'; 1");
    let body = json!({"name": "uitest", "framework": "demo", "ips": ["127.0.0.1"],
        "ports": [{"number": 8080, "protocol": "tcp", "name": "http"}]});
    let auth = format!("Authorization: Bearer {}\r\n", demo.token);
    let put = http_request_with(
        demo.http[0],
        "PUT",
        "/v1/registrations/uitest-1",
        &auth,
        body.to_string().as_bytes(),
    )
    .unwrap();
    assert_eq!(put.status, 201, "{}", put.text());
    let text = page.wait_for_text("the registration on the page", |t| {
        t.contains("uitest.demo.mesos") && t.contains("_uitest._tcp.demo.mesos")
    });
    assert!(
        text.contains("+ record uitest.demo.mesos A 127.0.0.1"),
        "listed as a recent change: {text}"
    );
    assert_eq!(page.evaluate("window.beaconTestMark"), json!("same page"));

    // Every request the page made went to the agent.
    let origin = format!("http://{}/", demo.http[0]);
    let urls =
        page.evaluate("JSON.stringify(performance.getEntriesByType('resource').map(e => e.name))");
    let urls: Vec<String> = serde_json::from_str(urls.as_str().unwrap()).unwrap();
    assert!(urls.len() >= 5, "{urls:?}");
    for u in &urls {
        assert!(u.starts_with(&origin), "a request left the agent: {u}");
    }
}

/// `beacon demo --json`, stopped with SIGTERM so that it removes what it set up.
struct Demo {
    token: String,
    http: Vec<SocketAddr>,
    child: Child,
    _stdout: BufReader<ChildStdout>,
    log: std::path::PathBuf,
}

impl Demo {
    fn start() -> Self {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_beacon"));
        cmd.args(["demo", "--json"])
            .stdin(Stdio::null())
            .stdout(Stdio::piped());
        // Its log, to say why if it ends early.
        let log = std::env::temp_dir().join(format!("beacon-ui-demo-{}.log", std::process::id()));
        if std::env::var_os("BEACON_TEST_LOG").is_none() {
            cmd.stderr(std::fs::File::create(&log).unwrap());
        }
        let mut child = cmd.spawn().unwrap();
        let mut stdout = BufReader::new(child.stdout.take().unwrap());
        let (mut token, mut http) = (String::new(), Vec::new());
        while http.len() < 3 {
            let mut line = String::new();
            if stdout.read_line(&mut line).unwrap() == 0 {
                let said = std::fs::read_to_string(&log).unwrap_or_default();
                let _ = std::fs::remove_file(&log);
                panic!("beacon demo ended before printing its nodes; its log:\n{said}");
            }
            let v: Value = serde_json::from_str(&line).unwrap();
            if let Some(t) = v["token"].as_str() {
                token = t.to_string();
            }
            if let Some(h) = v["http"].as_str() {
                http.push(h.parse().unwrap());
            }
        }
        assert!(!token.is_empty(), "the demo printed no token");
        Self {
            token,
            http,
            child,
            _stdout: stdout,
            log,
        }
    }
}

impl Drop for Demo {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.log);
        // SIGTERM: the demo stops its agents in order; SIGKILL only if it does not end.
        unsafe { libc::kill(self.child.id() as i32, libc::SIGTERM) };
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A headless Chromium with its DevTools endpoint on a loopback port it chose.
struct Chromium {
    devtools: SocketAddr,
    child: Child,
}

impl Drop for Chromium {
    fn drop(&mut self) {
        // Debian's /usr/bin/chromium-headless-shell is a script that does not exec, and Chromium
        // starts helpers: the whole process group goes.
        unsafe { libc::kill(-(self.child.id() as i32), libc::SIGKILL) };
        let _ = self.child.wait();
    }
}

impl Chromium {
    fn start(binary: &str, dir: &TempDir) -> Self {
        let mut child = Command::new(binary)
            .args([
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--remote-debugging-address=127.0.0.1",
                "--remote-debugging-port=0",
                "--window-size=1400,1000",
            ])
            .arg(format!("--user-data-dir={}", dir.path("profile").display()))
            .arg("about:blank")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .process_group(0)
            .spawn()
            .unwrap();
        // "DevTools listening on ws://127.0.0.1:PORT/devtools/browser/ID" on stderr.
        let mut stderr = BufReader::new(child.stderr.take().unwrap()).lines();
        let mut devtools = None;
        let mut seen = String::new();
        for line in stderr.by_ref() {
            let line = line.unwrap();
            if let Some(rest) = line.split("ws://").nth(1) {
                devtools = rest.split('/').next().and_then(|a| a.parse().ok());
                break;
            }
            seen.push_str(&line);
            seen.push('\n');
        }
        // Chromium keeps logging; a closed pipe must not be what stops it.
        std::thread::spawn(move || stderr.for_each(drop));
        let Some(devtools) = devtools else {
            unsafe { libc::kill(-(child.id() as i32), libc::SIGKILL) };
            panic!("Chromium printed no DevTools address:\n{seen}");
        };
        Self { devtools, child }
    }

    /// The first page target, over its own WebSocket.
    fn page(&self) -> Cdp {
        let mut url = None;
        wait_until("a Chromium page target", || {
            let Ok(targets) = devtools_json(self.devtools, "/json/list") else {
                return false;
            };
            url = targets.as_array().into_iter().flatten().find_map(|t| {
                (t["type"] == "page")
                    .then(|| t["webSocketDebuggerUrl"].as_str().map(String::from))?
            });
            url.is_some()
        });
        Cdp::connect(&url.unwrap())
    }
}

/// A GET of DevTools' HTTP side, which keeps the connection open whatever the request says: the
/// body is read by its length.
fn devtools_json(addr: SocketAddr, path: &str) -> std::io::Result<Value> {
    let mut s = TcpStream::connect(addr)?;
    s.set_read_timeout(Some(Duration::from_secs(5)))?;
    write!(s, "GET {path} HTTP/1.1\r\nHost: {addr}\r\n\r\n")?;
    let mut reader = BufReader::new(s);
    let mut length = 0;
    loop {
        let mut line = String::new();
        reader.read_line(&mut line)?;
        let line = line.trim_end();
        if line.is_empty() {
            break;
        }
        if let Some((name, value)) = line.split_once(':')
            && name.eq_ignore_ascii_case("content-length")
        {
            length = value.trim().parse().map_err(std::io::Error::other)?;
        }
    }
    let mut body = vec![0; length];
    reader.read_exact(&mut body)?;
    serde_json::from_slice(&body).map_err(std::io::Error::other)
}

/// A DevTools protocol session: JSON commands over a WebSocket (RFC 6455 text frames, masked
/// from the client as the RFC requires; replies read until the one with the command's id).
struct Cdp {
    stream: TcpStream,
    next: u64,
}

impl Cdp {
    fn connect(url: &str) -> Self {
        let rest = url.strip_prefix("ws://").expect("a ws:// URL");
        let (host, path) = rest.split_at(rest.find('/').unwrap());
        let mut stream = TcpStream::connect(host).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(30)))
            .unwrap();
        write!(
            stream,
            "GET {path} HTTP/1.1\r\nHost: {host}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
             Sec-WebSocket-Key: YmVhY29uLXVpLXRlc3QhIQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
        )
        .unwrap();
        let mut head = Vec::new();
        let mut byte = [0u8];
        while !head.ends_with(b"\r\n\r\n") {
            stream.read_exact(&mut byte).unwrap();
            head.push(byte[0]);
        }
        let head = String::from_utf8_lossy(&head);
        assert!(
            head.starts_with("HTTP/1.1 101"),
            "no WebSocket upgrade: {head}"
        );
        Self { stream, next: 1 }
    }

    /// Sends `method` and returns its `result`; panics on a protocol error.
    fn call(&mut self, method: &str, params: Value) -> Value {
        let id = self.next;
        self.next += 1;
        self.send(&json!({"id": id, "method": method, "params": params}).to_string());
        loop {
            let reply: Value = serde_json::from_slice(&self.receive()).unwrap();
            if reply["id"] == id {
                assert!(reply["error"].is_null(), "{method}: {reply}");
                return reply["result"].clone();
            }
        }
    }

    /// The value of `expression` in the page.
    fn evaluate(&mut self, expression: &str) -> Value {
        let r = self.call(
            "Runtime.evaluate",
            json!({"expression": expression, "returnByValue": true}),
        );
        assert!(r["exceptionDetails"].is_null(), "{expression}: {r}");
        r["result"]["value"].clone()
    }

    /// The page's visible text once `ok` holds of it (within 20 s).
    fn wait_for_text(&mut self, what: &str, ok: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + Duration::from_secs(20);
        let mut text = String::new();
        while Instant::now() < deadline {
            text = self
                .evaluate("document.body ? document.body.innerText : ''")
                .as_str()
                .unwrap_or_default()
                .to_string();
            if ok(&text) {
                return text;
            }
            std::thread::sleep(Duration::from_millis(200));
        }
        panic!("timed out waiting for {what}; the page shows:\n{text}");
    }

    fn send(&mut self, text: &str) {
        let payload = text.as_bytes();
        let mut frame = vec![0x81u8]; // FIN, text
        match payload.len() {
            n @ 0..=125 => frame.push(0x80 | n as u8),
            n @ 126..=65535 => {
                frame.push(0x80 | 126);
                frame.extend_from_slice(&(n as u16).to_be_bytes());
            }
            n => {
                frame.push(0x80 | 127);
                frame.extend_from_slice(&(n as u64).to_be_bytes());
            }
        }
        let mask = [0x5a, 0x17, 0xc3, 0x08];
        frame.extend_from_slice(&mask);
        frame.extend(payload.iter().enumerate().map(|(i, b)| b ^ mask[i % 4]));
        self.stream.write_all(&frame).unwrap();
    }

    /// One whole message (continuation frames joined); control frames skipped.
    fn receive(&mut self) -> Vec<u8> {
        let mut message = Vec::new();
        loop {
            let mut head = [0u8; 2];
            self.stream.read_exact(&mut head).unwrap();
            let (fin, opcode) = (head[0] & 0x80 != 0, head[0] & 0x0f);
            let len = match head[1] & 0x7f {
                126 => {
                    let mut b = [0u8; 2];
                    self.stream.read_exact(&mut b).unwrap();
                    u16::from_be_bytes(b) as usize
                }
                127 => {
                    let mut b = [0u8; 8];
                    self.stream.read_exact(&mut b).unwrap();
                    u64::from_be_bytes(b) as usize
                }
                n => n as usize,
            };
            let mut mask = [0u8; 4];
            if head[1] & 0x80 != 0 {
                self.stream.read_exact(&mut mask).unwrap();
            }
            let mut payload = vec![0u8; len];
            self.stream.read_exact(&mut payload).unwrap();
            payload
                .iter_mut()
                .enumerate()
                .for_each(|(i, b)| *b ^= mask[i % 4]);
            assert_ne!(opcode, 0x8, "Chromium closed the DevTools connection");
            if opcode >= 0x8 {
                continue;
            }
            message.extend(payload);
            if fin {
                return message;
            }
        }
    }
}
