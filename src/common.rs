//! Small things every room uses: the boxed error of the top of the call stack, the shutdown
//! signal, the default log filter, the wall clock and poison-tolerant locking.

use std::sync::{Mutex, MutexGuard};
use std::time::{SystemTime, UNIX_EPOCH};

/// Any error, boxed, for the top of the call stack.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Directives that keep hickory's per-query lines out of the log; added to any filter that does
/// not name hickory itself.
pub const QUIET_HICKORY: &str = "hickory_server=warn,hickory_proto=warn,hickory_net=warn";

/// The default log filter: informative, but not a line per query.
pub const DEFAULT_LOG: &str = "info,hickory_server=warn,hickory_proto=warn,hickory_net=warn";

/// Resolves on SIGINT or SIGTERM.
pub async fn shutdown_signal() {
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending().await,
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term => {}
    }
}

/// Milliseconds since the Unix epoch on this node's clock (0 before 1970).
pub fn wall_millis() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// Locks `m`, taking the data over from a holder that panicked: every value guarded here is
/// replaced whole under the lock, so a panic cannot leave it half-written.
pub fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// Writes `bytes` to `file` so that after a crash at any point `file` is either the old version
/// or the new one, whole: a temporary file beside it (`<file>.tmp`), flushed to disk, renamed
/// over `file`, then the directory flushed.
pub fn write_durably(file: &std::path::Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    if let Some(dir) = file.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let mut tmp = file.as_os_str().to_owned();
    tmp.push(".tmp");
    let tmp = std::path::PathBuf::from(tmp);
    let mut out = std::fs::File::create(&tmp)?;
    out.write_all(bytes)?;
    out.sync_all()?;
    drop(out);
    std::fs::rename(&tmp, file)?;
    if let Some(dir) = file.parent() {
        std::fs::File::open(dir)?.sync_all()?;
    }
    Ok(())
}
