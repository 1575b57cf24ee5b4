//! Cgroup v2 directories a test creates under the cgroup2 mount and removes itself. Needs root.

use std::fs::{self, File};
use std::path::{Path, PathBuf};
use std::thread;
use std::time::Duration;

use crate::netns::tag;

/// A child of the cgroup2 mount (`beacon-test-<name>-<tag>`), removed when dropped.
#[derive(Debug)]
pub struct Cgroup {
    path: PathBuf,
}

impl Cgroup {
    /// Creates a cgroup named after `name` (made unique with [`tag`]).
    pub fn new(name: &str) -> Self {
        let root = cgroup2_root().expect("no cgroup v2 mount");
        let path = root.join(format!("beacon-test-{name}-{}", tag()));
        fs::create_dir(&path).unwrap_or_else(|e| panic!("create {}: {e}", path.display()));
        Self { path }
    }

    /// The cgroup's directory.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The directory opened, for attaching BPF programs.
    pub fn file(&self) -> File {
        File::open(&self.path).unwrap_or_else(|e| panic!("open {}: {e}", self.path.display()))
    }
}

impl Drop for Cgroup {
    /// Retries for a second: a killed client leaves the cgroup only once reaped.
    fn drop(&mut self) {
        for _ in 0..50 {
            if fs::remove_dir(&self.path).is_ok() {
                return;
            }
            thread::sleep(Duration::from_millis(20));
        }
        eprintln!("could not remove {}", self.path.display());
    }
}

/// Where cgroup v2 is mounted: `/sys/fs/cgroup` or `/sys/fs/cgroup/unified` (hybrid hosts) if
/// either is a cgroup2 mount, else the first cgroup2 mount in `/proc/self/mountinfo`.
pub fn cgroup2_root() -> Option<PathBuf> {
    let text = fs::read_to_string("/proc/self/mountinfo").ok()?;
    let mounts: Vec<PathBuf> = text
        .lines()
        .filter_map(|line| {
            // "id parent major:minor root mountpoint options... - fstype source superoptions"
            let (left, right) = line.split_once(" - ")?;
            let fstype = right.split_whitespace().next()?;
            let point = left.split_whitespace().nth(4)?;
            (fstype == "cgroup2").then(|| PathBuf::from(point.replace("\\040", " ")))
        })
        .collect();
    ["/sys/fs/cgroup", "/sys/fs/cgroup/unified"]
        .iter()
        .map(PathBuf::from)
        .find(|p| mounts.contains(p))
        .or_else(|| mounts.into_iter().next())
}
