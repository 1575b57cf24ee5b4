//! A test's client process: the test binary re-running the same test inside a cgroup (and
//! optionally a network namespace), so that programs attached to the cgroup see its sockets.
//!
//! The test starts with `if let Some(script) = client_script() { run(&script); return; }`;
//! [`Client::spawn`] re-runs it with the script in `BEACON_TEST_CLIENT`, which makes the new
//! process the client. The client reports on stdout with [`report`] (`RESULT <text>` lines)
//! and can pause with [`wait_for_go`] until the test calls [`Client::go`].

use std::ffi::CString;
use std::io::{BufRead, BufReader, Write};
use std::os::fd::AsRawFd;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::process::CommandExt;
use std::process::{Child, ChildStdout, Command, Stdio};

use crate::cgroup::Cgroup;
use crate::netns::Netns;

/// The variable that carries a client's script.
pub const CLIENT_ENV: &str = "BEACON_TEST_CLIENT";

/// What the harness prints in front of a client's lines.
const RESULT: &str = "RESULT ";

/// The script this process was started with, if it is a test's client.
pub fn client_script() -> Option<String> {
    std::env::var(CLIENT_ENV).ok()
}

/// In the client: reports one result to the test.
pub fn report(text: impl std::fmt::Display) {
    println!("{RESULT}{text}");
}

/// In the client: tells the test it is ready (`RESULT ready`) and waits for [`Client::go`].
pub fn wait_for_go() {
    report("ready");
    let mut line = String::new();
    std::io::stdin().read_line(&mut line).unwrap();
}

/// A client process, killed on drop if still running (a failed test must not leave it behind,
/// nor keep its cgroup busy).
#[derive(Debug)]
pub struct Client {
    /// The process.
    pub child: Child,
    stdout: BufReader<ChildStdout>,
}

impl Client {
    /// Re-runs the test `test` (the calling test function's name) of this test binary as a
    /// client with `script`, moved into `cgroup` and, if given, `netns` before it runs.
    pub fn spawn(test: &str, script: &str, cgroup: &Cgroup, netns: Option<&Netns>) -> Self {
        let procs = CString::new(cgroup.path().join("cgroup.procs").as_os_str().as_bytes())
            .expect("a cgroup path without NUL");
        let ns = netns.map(Netns::file);
        let mut cmd = Command::new(std::env::current_exe().unwrap());
        cmd.args([test, "--exact", "--nocapture", "--test-threads=1"])
            .env(CLIENT_ENV, script)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped());
        // SAFETY: the closure only calls async-signal-safe functions (setns, open, write,
        // close) on data prepared before fork.
        unsafe {
            cmd.pre_exec(move || {
                if let Some(ns) = &ns
                    && libc::setns(ns.as_raw_fd(), libc::CLONE_NEWNET) != 0
                {
                    return Err(std::io::Error::last_os_error());
                }
                let fd = libc::open(procs.as_ptr(), libc::O_WRONLY);
                if fd < 0 {
                    return Err(std::io::Error::last_os_error());
                }
                // "0" moves the writing process: the child, before it runs the client.
                let ok = libc::write(fd, b"0".as_ptr().cast(), 1) == 1;
                libc::close(fd);
                if ok {
                    Ok(())
                } else {
                    Err(std::io::Error::last_os_error())
                }
            });
        }
        let mut child = cmd.spawn().expect("spawn client in cgroup");
        let stdout = BufReader::new(child.stdout.take().unwrap());
        Self { child, stdout }
    }

    /// The client's results (the text of its `RESULT` lines) until it exits or reports `until`.
    /// (The harness prints `test <name> ... ` in front of the first line, hence the search.)
    pub fn results(&mut self, until: Option<&str>) -> Vec<String> {
        let mut out = Vec::new();
        for line in (&mut self.stdout).lines() {
            let line = line.unwrap();
            let Some(at) = line.find(RESULT) else {
                continue;
            };
            let rest = &line[at + RESULT.len()..];
            println!("client: {rest}");
            if Some(rest) == until {
                break;
            }
            out.push(rest.to_owned());
        }
        out
    }

    /// Reads the results to the end and checks that the client succeeded.
    pub fn finish(mut self) -> Vec<String> {
        let out = self.results(None);
        assert!(self.child.wait().unwrap().success(), "client failed");
        out
    }

    /// Lets a client waiting in [`wait_for_go`] go on.
    pub fn go(&mut self) {
        let stdin = self.child.stdin.as_mut().unwrap();
        stdin.write_all(b"go\n").unwrap();
    }
}

impl Drop for Client {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}
