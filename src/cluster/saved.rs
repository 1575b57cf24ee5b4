//! The gossip store kept in `[node] state_dir` (`gossip-store.bin`): every origin's version,
//! payload and seal, and the certificates behind the seals. A node restarted while no peer
//! answers (a cluster outage) serves the records it last held at once, instead of SERVFAIL;
//! newer versions from peers replace them as they arrive, as any newer version does.
//!
//! Written whole and flushed (temp file, fsync, rename, fsync of the directory) by a task of its
//! own, at most every [`SAVE_EVERY`] and only when the store changed, on a blocking thread, and
//! once more when the node stops cleanly. Read back before joining: every entry is checked as a
//! peer's record would be ([`beacon_gossip::core::saved`]), so a file someone edited injects
//! nothing. A file that does not read whole is set aside as `gossip-store.bin.corrupt-<time>`
//! and the node starts empty, as it did before there was a file.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use beacon_gossip::net::Gossip;
use beacon_gossip::{Node, Snapshot};
use prometheus::IntGauge;
use tokio_util::sync::CancellationToken;

use crate::common::wall_millis;

/// How often the store may be written: at most once a second, and only after a change.
pub const SAVE_EVERY: Duration = Duration::from_secs(1);

/// The file name in the state directory.
pub const FILE: &str = "gossip-store.bin";

/// The kept store of a node.
pub struct StoreFile {
    file: PathBuf,
}

/// What was found in the state directory.
pub enum Loaded {
    /// No file (a first start), or one that cannot be read (logged).
    Nothing,
    /// A whole copy, still to be checked entry by entry.
    Copy(Snapshot),
    /// A file that does not read whole, renamed to this path.
    SetAside(PathBuf),
}

impl StoreFile {
    /// The kept store of a node whose state directory is `state_dir`; none without one.
    pub fn new(state_dir: &Path) -> Option<Self> {
        (!state_dir.as_os_str().is_empty()).then(|| Self {
            file: state_dir.join(FILE),
        })
    }

    /// Reads the kept copy. Blocking.
    pub fn load(&self) -> Loaded {
        let bytes = match std::fs::read(&self.file) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Loaded::Nothing,
            Err(error) => {
                tracing::warn!(file = %self.file.display(), %error, "cannot read the kept gossip store: starting empty");
                return Loaded::Nothing;
            }
        };
        match Snapshot::decode(&bytes) {
            Ok(copy) => Loaded::Copy(copy),
            Err(error) => match crate::publish::registrations::set_aside(&self.file) {
                Ok(aside) => {
                    tracing::error!(aside = %aside.display(), %error, "the kept gossip store is unreadable and is set aside: starting empty");
                    Loaded::SetAside(aside)
                }
                Err(rename) => {
                    tracing::error!(file = %self.file.display(), %error, %rename, "the kept gossip store is unreadable and cannot be set aside: starting empty");
                    Loaded::Nothing
                }
            },
        }
    }

    /// Writes `copy` whole and flushed. Blocking.
    pub fn save(&self, copy: &Snapshot) -> std::io::Result<()> {
        crate::common::write_durably(&self.file, &copy.encode())
    }
}

/// Restores into `node`, before it joins, what `file` kept; returns the node. The file is read,
/// decoded and every seal checked on a blocking thread.
pub async fn restore(file: Arc<StoreFile>, mut node: Node, age: &IntGauge) -> Node {
    let restoring = tokio::task::spawn_blocking(move || {
        if let Loaded::Copy(copy) = file.load() {
            let restored = node.restore(Instant::now(), wall_millis(), copy);
            let age_secs = wall_millis().saturating_sub(restored.saved_at) / 1000;
            match restored.kept {
                0 => tracing::warn!(
                    refused = restored.refused,
                    "nothing in the kept gossip store could be checked: starting empty"
                ),
                kept => tracing::warn!(
                    origins = kept,
                    refused = restored.refused,
                    age_secs,
                    "serving the kept gossip store until a peer answers"
                ),
            }
        }
        node
    });
    // A panic in the restore is a bug: it stays a panic.
    let node = restoring
        .await
        .unwrap_or_else(|e| std::panic::resume_unwind(e.into_panic()));
    set_age(age, node.restored_at());
    node
}

/// `beacon_gossip_restored_age_seconds`: how old the restored copy served is, 0 once a peer
/// has synced.
pub fn age_gauge(registry: &prometheus::Registry) -> Result<IntGauge, prometheus::Error> {
    let age = IntGauge::new(
        "beacon_gossip_restored_age_seconds",
        "Age of the gossip store restored from the state directory while no peer has synced with this node yet; 0 otherwise",
    )?;
    registry.register(Box::new(age.clone()))?;
    Ok(age)
}

fn set_age(age: &IntGauge, restored_at: Option<u64>) {
    let secs = restored_at.map_or(0, |at| wall_millis().saturating_sub(at) / 1000);
    age.set(i64::try_from(secs).unwrap_or(i64::MAX));
}

/// Keeps `gossip`'s store in `file`: every [`SAVE_EVERY`] if it changed, and once more on
/// `stop`, then ends. Also follows the restored copy's age into `age`.
pub async fn run(file: Arc<StoreFile>, gossip: Gossip, age: IntGauge, stop: CancellationToken) {
    let mut saved = None;
    let mut tick = tokio::time::interval(SAVE_EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        let stopping = tokio::select! {
            () = stop.cancelled() => true,
            _ = tick.tick() => false,
        };
        if let Ok(restored_at) = gossip.restored().await {
            set_age(&age, restored_at);
        }
        saved = save(&file, &gossip, saved).await;
        if stopping {
            return;
        }
    }
}

/// Saves the store unless it is unchanged since the change count `saved`; returns the count
/// now on disk.
async fn save(file: &Arc<StoreFile>, gossip: &Gossip, saved: Option<u64>) -> Option<u64> {
    // u64::MAX is never a count the store reaches: before the first save, always save.
    let Ok(Some((changes, copy))) = gossip.snapshot(saved.unwrap_or(u64::MAX)).await else {
        return saved;
    };
    let file = file.clone();
    let written = tokio::task::spawn_blocking(move || file.save(&copy)).await;
    match written {
        Ok(Ok(())) => Some(changes),
        Ok(Err(error)) => {
            tracing::warn!(%error, "could not keep the gossip store");
            saved
        }
        Err(error) => {
            tracing::warn!(%error, "keeping the gossip store panicked");
            saved
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dir(tag: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("beacon-store-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    #[test]
    fn a_saved_copy_reads_back() {
        let dir = dir("round-trip");
        let file = StoreFile::new(&dir).unwrap();
        assert!(matches!(file.load(), Loaded::Nothing));
        let mut copy = Snapshot::default();
        copy.saved_at = 42;
        file.save(&copy).unwrap();
        assert!(!dir.join("gossip-store.bin.tmp").exists());
        let Loaded::Copy(back) = file.load() else {
            panic!("the copy does not read back");
        };
        assert_eq!(back.saved_at, 42);
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn a_truncated_file_is_set_aside() {
        let dir = dir("truncated");
        let file = StoreFile::new(&dir).unwrap();
        file.save(&Snapshot::default()).unwrap();
        let path = dir.join(FILE);
        let bytes = std::fs::read(&path).unwrap();
        std::fs::write(&path, &bytes[..bytes.len() - 3]).unwrap();
        let Loaded::SetAside(aside) = file.load() else {
            panic!("a truncated file is not set aside");
        };
        assert!(!path.exists());
        let name = aside.file_name().unwrap().to_string_lossy().into_owned();
        assert!(name.starts_with("gossip-store.bin.corrupt-"), "{name}");
        assert_eq!(
            std::fs::read(&aside).unwrap().len(),
            bytes.len() - 3,
            "kept as it was"
        );
        // The next start finds nothing and starts empty.
        assert!(matches!(file.load(), Loaded::Nothing));
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn no_state_dir_keeps_nothing() {
        assert!(StoreFile::new(Path::new("")).is_none());
    }
}
