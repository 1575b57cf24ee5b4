//! The running data plane: the loaded programs, the maps they read, and the model of what the
//! maps hold.
//!
//! [`DataPlane::start`] loads and attaches the programs ([`crate::loader`]). Without a pin
//! directory the maps start empty and dropping the [`DataPlane`] detaches everything and frees
//! the maps. With one ([`crate::pins`]) the maps and links are pinned and outlive it: a start
//! finds the programs of the previous agent still running on the pinned maps, gives their links
//! its own programs atomically, and adopts the maps' content as its model of what is programmed
//! ([`State::adopt`]), so its first [`DataPlane::apply`] writes only what the catalog changed
//! meanwhile: no moment of empty maps. Pinned maps of another layout are not adopted: the old
//! programs keep them until the first apply has filled new maps, then the links switch.
//! [`DataPlane::apply`] plans against the model of what is programmed ([`crate::plan`]) and runs
//! the plan; [`DataPlane::reconcile`] reads the maps back and repairs drift (dcos-net's 30 s
//! reconcile, `research/dcos-net.md` §2.5). DNS must publish only [`DataPlane::programmed`]
//! VIPs: "program the data path before DNS publishes" (DCOS_OSS-4939).

use std::collections::BTreeSet;
use std::fmt;
use std::path::PathBuf;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use aya::Ebpf;
use beacon_catalog::vip::VipKey;
use beacon_ebpf::abi;
use tracing::{debug, info, warn};

use crate::config::DataPlaneConfig;
use crate::desired::{Desired, Limits, Skipped};
use crate::error::DataPlaneError;
use crate::loader::{self, Pending};
use crate::maps::Maps;
use crate::pins::{Found, Pins, pin_error};
use crate::plan::{Op, Plan, State};
use crate::report::ApplyReport;
use crate::stats::{BackendStats, Counters, GLOBAL, VipStats};
use crate::udp_destroy;

/// The running data plane: the loaded object with its links, the maps, and the model of what
/// they hold. Not thread-safe by itself: one owner calls `apply`/`reconcile` (blocking
/// syscalls; from async code use `spawn_blocking` or a dedicated thread).
pub struct DataPlane {
    maps: Maps,
    state: State,
    last: Option<Desired>,
    last_skipped: Vec<Skipped>,
    grace: Duration,
    udp_destroy: bool,
    xdp_interfaces: Vec<String>,
    cgroup: Option<PathBuf>,
    /// The pin directory, locked while this data plane runs.
    pins: Option<Pins>,
    /// The maps were adopted and no catalog applied yet.
    adopted: bool,
    /// An upgrade to another map layout: the pinned links still run the old programs on the old
    /// maps, until the new maps hold a catalog.
    upgrade: Option<Vec<Pending>>,
    // Last: dropping the object unloads the programs and, unpinned, detaches every link.
    bpf: Ebpf,
}

impl fmt::Debug for DataPlane {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DataPlane")
            .field("cgroup", &self.cgroup)
            .field("xdp_interfaces", &self.xdp_interfaces)
            .field("pinned", &self.pins.as_ref().map(Pins::dir))
            .field("vips", &self.state.vips().len())
            .field("udp_destroy", &self.udp_destroy)
            .finish()
    }
}

impl DataPlane {
    /// Loads the programs and attaches them as `config` says. Without
    /// [`bpffs_dir`](DataPlaneConfig::bpffs_dir) the maps start empty; with it, maps pinned
    /// there by an earlier start are adopted; maps of another layout are left serving, and the
    /// first [`apply`](Self::apply) fills new ones and switches the links over.
    pub fn start(config: &DataPlaneConfig) -> Result<Self, DataPlaneError> {
        loader::check(config)?;
        let pinned = match &config.bpffs_dir {
            Some(dir) => Some(Pins::prepare(dir, &loader::map_sizes(config))?),
            None => None,
        };
        let (pins, found) = match pinned {
            Some((pins, found)) => (Some(pins), found),
            None => (None, Found::Nothing),
        };
        let upgrade = found == Found::Upgrade;
        let (mut bpf, sock_destroy, pending) =
            loader::load_and_attach(config, pins.as_ref(), upgrade)?;
        let udp_destroy = sock_destroy && udp_destroy::load(&mut bpf);
        let maps = Maps::take(&mut bpf)?;
        let state = match found {
            Found::Adoptable => adopt(&maps)?,
            Found::Nothing | Found::Upgrade => State::new(Limits::KERNEL),
        };
        if let Some(pins) = &pins {
            let abi_map = bpf.take_map(abi::maps::ABI);
            let abi_map =
                abi_map.ok_or_else(|| pin_error(&pins.map_path(abi::maps::ABI), &"missing"))?;
            pins.write_version(abi_map)?;
        }
        info!(
            cgroup = %config.cgroup.display(),
            socket_lb = config.socket_lb,
            xdp = ?config.xdp_interfaces,
            mode = ?config.xdp_mode,
            udp_destroy,
            pinned = ?config.bpffs_dir,
            flow_table_size = config.flow_table_size,
            new_flow_rate_limit = config.new_flow_rate_limit,
            adopted_vips = state.vips().len(),
            "VIP data plane on"
        );
        Ok(Self {
            maps,
            state,
            last: None,
            last_skipped: Vec::new(),
            grace: config.removal_grace,
            udp_destroy,
            xdp_interfaces: config.xdp_interfaces.clone(),
            cgroup: config.socket_lb.then(|| config.cgroup.clone()),
            pins,
            adopted: found == Found::Adoptable,
            upgrade: upgrade.then_some(pending),
            bpf,
        })
    }

    /// How many kernel VIPs the maps hold (adopted at start, or programmed since).
    pub fn kernel_vips(&self) -> usize {
        self.state.vips().len()
    }

    /// Moves the maps to `desired` by diffing it against what is programmed (never flushing).
    ///
    /// On error the maps may be half-way; call [`reconcile`](Self::reconcile), which repairs
    /// them. VIPs whose writes did not all succeed stay out of [`programmed`](Self::programmed).
    pub fn apply(&mut self, desired: &Desired) -> Result<ApplyReport, DataPlaneError> {
        let started = Instant::now();
        self.log_skipped(desired.skipped());
        let plan = self.state.plan(desired, started, self.grace);
        self.last = Some(desired.clone());
        let mut report = ApplyReport {
            skipped: desired.skipped().to_vec(),
            ..ApplyReport::default()
        };
        self.run(&plan, &mut report)?;
        self.finish_upgrade()?;
        report.elapsed = started.elapsed();
        if std::mem::take(&mut self.adopted) {
            let c = &report.changes;
            info!(
                writes = report.writes,
                added = c.vips_added,
                removed = c.vips_removed,
                ring_slots = c.ring_slots,
                "VIP data plane: the adopted maps now hold the catalog"
            );
        } else if report.changed() {
            debug!(?report, "VIP data plane applied");
        }
        Ok(report)
    }

    /// Reads the maps back and rewrites whatever differs from the last desired state (counted
    /// in [`Changes::repairs`](crate::plan::Changes::repairs)); also retries deferred VIPs and
    /// frees removed backend ids whose grace period has passed. Call it every
    /// [`reconcile_interval`](DataPlaneConfig::reconcile_interval).
    pub fn reconcile(&mut self) -> Result<ApplyReport, DataPlaneError> {
        let started = Instant::now();
        let mut report = ApplyReport::default();
        if let Some(last) = self.last.take() {
            let plan = self.state.plan(&last, started, self.grace);
            report.skipped = last.skipped().to_vec();
            self.last = Some(last);
            self.run(&plan, &mut report)?;
        }
        let snap = self.maps.snapshot(&self.state)?;
        let plan = self.state.repair(&snap, Instant::now(), self.grace);
        self.run(&plan, &mut report)?;
        if self.last.is_some() {
            self.finish_upgrade()?;
        }
        report.elapsed = started.elapsed();
        if report.changes.repairs > 0 {
            warn!(
                repairs = report.changes.repairs,
                ring_slots = report.changes.ring_slots,
                "VIP data plane: repaired map entries that drifted"
            );
        }
        Ok(report)
    }

    /// The catalog VIPs whose maps are completely in place (every address family): the ones DNS
    /// may publish.
    pub fn programmed(&self) -> BTreeSet<VipKey> {
        self.state.programmed()
    }

    /// Counters of every programmed kernel VIP and its backends, summed over CPUs.
    pub fn stats(&self) -> Vec<VipStats> {
        let read = |r: Result<Counters, aya::maps::MapError>| {
            r.unwrap_or_else(|e| {
                debug!(error = %e, "VIP data plane: reading counters");
                Counters::default()
            })
        };
        self.state
            .vips()
            .iter()
            .map(|(id, slot)| VipStats {
                key: slot.key.clone(),
                address: id.addr,
                protocol: id.protocol,
                counters: read(self.maps.vip_counters(slot.index)),
                backends: slot
                    .backends
                    .iter()
                    .map(|(b, bid)| BackendStats {
                        addr: b.addr,
                        weight: b.weight,
                        node: b.node.clone(),
                        counters: read(self.maps.backend_counters(*bid)),
                    })
                    .collect(),
            })
            .collect()
    }

    /// The data plane's global counters (`beacon_stats`), by name: XDP verdicts, tc reverse
    /// translations, socket translations, destroyed UDP sockets.
    pub fn global_counters(&self) -> Vec<(&'static str, u64)> {
        GLOBAL
            .iter()
            .map(|(stat, name)| (*name, self.maps.stat(*stat).unwrap_or(0)))
            .collect()
    }

    /// Whether connected UDP sockets of removed backends are destroyed (kernel ≥ 6.5).
    pub fn destroys_udp_sockets(&self) -> bool {
        self.udp_destroy
    }

    /// The kernel id of one of the maps userspace writes (`beacon_vips`, `beacon_backends`,
    /// `beacon_rings`), for tests and debugging tools that open it with `MapData::from_id`.
    #[doc(hidden)]
    pub fn map_id(&self, name: &str) -> Option<u32> {
        self.maps.id(name)
    }

    /// Ends an upgrade to another map layout once the new maps hold the catalog: every pinned
    /// link gets its new program (atomically, one link after the other: a connect may meet the
    /// new connect program while its recvmsg still runs the old one, for a moment), then the new
    /// maps take the old ones' place. A failure is retried on the next apply or reconcile.
    fn finish_upgrade(&mut self) -> Result<(), DataPlaneError> {
        let (Some(pending), Some(pins)) = (&self.upgrade, &mut self.pins) else {
            return Ok(());
        };
        for link in pending {
            link.switch()?;
        }
        pins.promote()?;
        self.upgrade = None;
        info!(
            version = abi::MAPS_ABI_VERSION,
            "VIP data plane: switched to the new map layout; the old maps are freed"
        );
        Ok(())
    }

    /// Runs a plan's operations in order.
    fn run(&mut self, plan: &Plan, report: &mut ApplyReport) -> Result<(), DataPlaneError> {
        report.add(plan);
        for op in &plan.ops {
            match op {
                Op::Programmed(vip) => self.state.mark_complete(vip),
                Op::DestroyUdp => report.udp_sockets_destroyed += self.destroy_udp(),
                other => {
                    self.maps.execute(other)?;
                    report.writes += 1;
                }
            }
        }
        Ok(())
    }

    /// One pass of the UDP destroy iterator; returns how many sockets it destroyed.
    fn destroy_udp(&mut self) -> u64 {
        if !self.udp_destroy {
            return 0;
        }
        let before = self.maps.stat(abi::Stat::SockDestroyed).unwrap_or(0);
        if let Err(e) = udp_destroy::run(&mut self.bpf) {
            warn!(error = %e, "VIP data plane: UDP destroy iterator failed");
            return 0;
        }
        let after = self.maps.stat(abi::Stat::SockDestroyed).unwrap_or(0);
        after.saturating_sub(before)
    }

    fn log_skipped(&mut self, skipped: &[Skipped]) {
        if skipped != self.last_skipped.as_slice() {
            for s in skipped {
                warn!("{s}");
            }
            self.last_skipped = skipped.to_vec();
        }
    }
}

/// The model of the pinned maps as they are.
fn adopt(maps: &Maps) -> Result<State, DataPlaneError> {
    let snap = maps.snapshot_all(Limits::KERNEL)?;
    // Generations of free ids restart above anything an earlier run can have given them.
    let epoch = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(1, |d| d.as_secs() as u32);
    Ok(State::adopt(Limits::KERNEL, &snap, Instant::now(), epoch))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn start_reports_a_missing_interface_or_cgroup_before_loading() {
        let config = DataPlaneConfig {
            cgroup: "/nonexistent-cgroup".into(),
            ..DataPlaneConfig::default()
        };
        assert!(matches!(
            DataPlane::start(&config),
            Err(DataPlaneError::CgroupMissing(_))
        ));
        let config = DataPlaneConfig {
            socket_lb: false,
            xdp_interfaces: vec!["beacon-nosuch0".into()],
            ..DataPlaneConfig::default()
        };
        assert!(matches!(
            DataPlane::start(&config),
            Err(DataPlaneError::InterfaceMissing(_))
        ));
    }

    #[test]
    fn data_plane_is_send() {
        fn send<T: Send>() {}
        send::<DataPlane>();
    }
}
