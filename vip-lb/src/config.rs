//! Where and how the data plane runs: the settings the agent passes to
//! [`DataPlane::start`](crate::DataPlane::start), and finding the cgroup v2 mount they default to.

use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

/// How to attach XDP.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum XdpModeSetting {
    /// Native when the driver supports it, generic otherwise (the kernel decides).
    #[default]
    Auto,
    /// Native (driver) mode only; attaching fails where the driver has no XDP support.
    Native,
    /// Generic (skb) mode: works on any interface, slower.
    Generic,
}

/// Where and how to run the data plane.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DataPlaneConfig {
    /// The cgroup v2 directory whose processes get socket LB (normally the root of the cgroup2
    /// mount). Default: the first cgroup2 mount in `/proc/self/mountinfo`
    /// (`/sys/fs/cgroup` on systemd hosts, `/sys/fs/cgroup/unified` on hybrid ones); empty when
    /// none is mounted, which [`DataPlane::start`](crate::DataPlane::start) reports.
    pub cgroup: PathBuf,
    /// Interfaces that get XDP ingress translation and tc egress reverse translation: where
    /// packets from clients that do not go through socket LB (other hosts, containers with their
    /// own network namespace) arrive. Default: none (socket LB only).
    pub xdp_interfaces: Vec<String>,
    /// XDP attach mode. Default: auto.
    pub xdp_mode: XdpModeSetting,
    /// How often the agent should call [`DataPlane::reconcile`](crate::DataPlane::reconcile).
    /// Default: 30 s, like dcos-net.
    pub reconcile_interval: Duration,
    /// How long a removed backend's id stays marked removed before it is freed (its flows move
    /// and its connected UDP sockets are destroyed meanwhile). Default: 10 s.
    pub removal_grace: Duration,
    /// Attach the socket-LB programs to `cgroup`. Default: true.
    pub socket_lb: bool,
    /// Where to pin the maps and links in bpffs so that the data plane outlives the process
    /// (see [`remove_pinned`](crate::remove_pinned)); a start adopts what an earlier one pinned
    /// there. `None`: nothing pinned, and dropping the [`DataPlane`](crate::DataPlane) detaches
    /// everything. Default: `None` (the agent pins at `/sys/fs/bpf/beacon`).
    pub bpffs_dir: Option<PathBuf>,
    /// Entries of the XDP flow table and of its reverse table, shared out among the CPUs (each
    /// CPU's LRU list holds about `flow_table_size / CPUs`; the kernel rounds the size up to a
    /// multiple of the CPUs). A pinned table of another size is a layout change: the tables
    /// start empty (established flows are picked again from the ring). Default:
    /// [`abi::FLOW_TABLE_SIZE`](beacon_ebpf::abi::FLOW_TABLE_SIZE) (65536).
    pub flow_table_size: u32,
    /// The new-flow rate guard (Katran's flood mode): new XDP flows each CPU saves in the flow
    /// table per second. Flows over it are still balanced but not saved, so a flood of new
    /// flows (a SYN flood from spoofed sources) cannot evict established ones; they count as
    /// `xdp_flow_unsaved`. 0: no guard. Default: 0 (the agent's default is 20000).
    pub new_flow_rate_limit: u32,
}

impl Default for DataPlaneConfig {
    fn default() -> Self {
        Self {
            cgroup: detect_cgroup2().unwrap_or_default(),
            xdp_interfaces: Vec::new(),
            xdp_mode: XdpModeSetting::Auto,
            reconcile_interval: Duration::from_secs(30),
            removal_grace: Duration::from_secs(10),
            socket_lb: true,
            bpffs_dir: None,
            flow_table_size: beacon_ebpf::abi::FLOW_TABLE_SIZE,
            new_flow_rate_limit: 0,
        }
    }
}

impl FromStr for XdpModeSetting {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        match s.to_ascii_lowercase().as_str() {
            "auto" => Ok(Self::Auto),
            "native" | "driver" | "drv" => Ok(Self::Native),
            "generic" | "skb" => Ok(Self::Generic),
            other => Err(format!(
                "unknown XDP mode {other:?}; use auto, native or generic"
            )),
        }
    }
}

impl fmt::Display for XdpModeSetting {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Auto => "auto",
            Self::Native => "native",
            Self::Generic => "generic",
        })
    }
}

/// The first cgroup2 mount point in `/proc/self/mountinfo`, preferring `/sys/fs/cgroup` and
/// `/sys/fs/cgroup/unified`.
pub fn detect_cgroup2() -> Option<PathBuf> {
    let text = std::fs::read_to_string("/proc/self/mountinfo").ok()?;
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn xdp_modes_parse_and_print() {
        for s in ["auto", "native", "generic"] {
            assert_eq!(s.parse::<XdpModeSetting>().unwrap().to_string(), s);
        }
        assert!("fast".parse::<XdpModeSetting>().is_err());
    }
}
