//! `beacon dataplane remove`: detaches the VIP data plane an agent left pinned in bpffs and
//! removes its maps. The agent never does this itself: a stop of any kind leaves balancing
//! running, and the next agent adopts it.

use std::path::Path;

use crate::common::BoxError;
use crate::config::{Config, VipSettings};

/// Removes what is pinned at the `[vip] bpffs_dir` of `config` (the default directory without
/// one) and says what it removed.
pub fn remove(config: Option<&Path>) -> Result<(), BoxError> {
    let dir = match config {
        Some(path) => Config::from_toml_file(path)?.vip.bpffs_dir,
        None => VipSettings::default().bpffs_dir,
    };
    if dir.as_os_str().is_empty() {
        println!("[vip] bpffs_dir is empty: the data plane is not pinned, nothing to remove");
        return Ok(());
    }
    let removed = beacon_vip_lb::remove_pinned(&dir)?;
    println!(
        "VIP data plane at {}: {} links detached, {} maps unpinned",
        dir.display(),
        removed.links,
        removed.maps
    );
    Ok(())
}
