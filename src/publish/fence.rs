//! Where VIPs may not go. From any source, an IP VIP on an address of the cluster's own
//! infrastructure would capture traffic meant for it (the socket LB rewrites the agent's own
//! connections too): a member's gossip address, a configured Mesos master or agent, a DNS
//! upstream, or this host's interfaces. (Loopback, multicast and the named-VIP pools are fenced
//! for every node alike in `catalog::vip`.) And one node's registrations may declare at most
//! `[vip] max_registered_vips` VIPs, so that no node can fill the kernel's tables.

use std::collections::{BTreeMap, BTreeSet};
use std::net::{IpAddr, SocketAddr, ToSocketAddrs};

use beacon_catalog::vip::{VipAddress, VipKey, VipProblem, VipTable, VipWarning};
use beacon_catalog::{Catalog, Label};

use crate::config::{Config, Endpoints};

/// The addresses fenced off, and the per-node quota of registered VIPs.
#[derive(Debug)]
pub struct Fence {
    /// From the configuration and this host: masters, agent, upstreams, interfaces.
    fixed: BTreeSet<IpAddr>,
    /// Cluster members' gossip addresses, by name.
    members: BTreeMap<String, IpAddr>,
    /// The masters the catalog names (the leader, and those ZooKeeper found), which the
    /// configuration cannot list: a VIP there would capture the master poll or stream.
    named_masters: BTreeSet<IpAddr>,
    /// VIPs one node's registrations may declare.
    quota: usize,
}

impl Default for Fence {
    /// No address fenced but the catalog's own, and the default quota.
    fn default() -> Self {
        Self {
            fixed: BTreeSet::new(),
            members: BTreeMap::new(),
            named_masters: BTreeSet::new(),
            quota: crate::config::VipSettings::default().max_registered_vips,
        }
    }
}

impl Fence {
    /// The fence of a node configured by `config`.
    pub fn new(config: &Config, endpoints: &Endpoints) -> Self {
        let mut fixed = BTreeSet::new();
        let hosts = config
            .mesos_dns
            .masters
            .iter()
            .chain(Some(&config.mesos_agent.address).filter(|a| !a.is_empty()));
        for host in hosts {
            // A host name that does not resolve now fences nothing: the poll would fail too.
            let resolved = host.to_socket_addrs().into_iter().flatten();
            fixed.extend(resolved.map(|a: SocketAddr| a.ip()));
        }
        let upstreams = endpoints.forward.resolvers.iter();
        let zoned = endpoints.forward.zones.iter().flat_map(|(_, list)| list);
        fixed.extend(upstreams.chain(zoned).map(SocketAddr::ip));
        let interfaces = if_addrs::get_if_addrs().unwrap_or_default();
        fixed.extend(interfaces.iter().map(|i| i.ip()));
        Self {
            fixed,
            members: BTreeMap::new(),
            named_masters: BTreeSet::new(),
            quota: config.vip.max_registered_vips,
        }
    }

    /// Records `member`'s gossip address.
    pub fn member(&mut self, member: &str, ip: IpAddr) {
        self.members.insert(member.to_string(), ip);
    }

    /// Fences the masters `catalog` names: its leader and the masters ZooKeeper found.
    pub fn masters_of(&mut self, catalog: &Catalog) {
        let named = catalog.masters.iter().filter_map(|m| {
            let host = m.rsplit_once(':')?.0;
            Some(host.trim_matches(['[', ']']))
        });
        let leader = catalog.leader.as_ref().map(|pid| pid.host.as_str());
        self.named_masters = named
            .chain(leader)
            .flat_map(|host| catalog.ips_of(host))
            .collect();
    }

    /// Why `ip` may not be a VIP, if it may not.
    pub fn refuses(&self, ip: IpAddr) -> Option<&'static str> {
        if self.fixed.contains(&ip) || self.named_masters.contains(&ip) {
            return Some("a Mesos master or agent, a DNS upstream, or this host");
        }
        self.members
            .values()
            .any(|m| *m == ip)
            .then_some("a cluster member")
    }

    /// Takes fenced VIPs out of `table`, and registered VIPs past each node's quota (in key
    /// order), with a warning for each.
    pub fn apply(&self, table: &mut VipTable) {
        let mut dropped = Vec::new();
        for key in table.vips.keys() {
            if let VipAddress::Ip(ip) = key.address
                && self.refuses(ip).is_some()
            {
                dropped.push((key.clone(), VipProblem::Fenced(ip)));
            }
        }
        let fenced: BTreeSet<&VipKey> = dropped.iter().map(|(k, _)| k).collect();
        let mut per_node: BTreeMap<&str, usize> = BTreeMap::new();
        let mut over = Vec::new();
        for (key, node) in table.registered.iter().filter(|(k, _)| !fenced.contains(k)) {
            let held = per_node.entry(node).or_default();
            *held += 1;
            if *held > self.quota {
                over.push((key.clone(), VipProblem::OverQuota(node.clone(), self.quota)));
            }
        }
        dropped.extend(over);
        for (key, problem) in dropped {
            table.vips.remove(&key);
            table.registered.remove(&key);
            table.warnings.push(warning(&key, problem));
        }
    }

    /// The VIPs of one node's registrations a write would leave, against the quota.
    pub fn quota(&self) -> usize {
        self.quota
    }
}

fn warning(key: &VipKey, problem: VipProblem) -> VipWarning {
    VipWarning {
        framework: String::new(),
        task_id: String::new(),
        label: Label {
            key: "VIP".into(),
            value: key.display_name(),
        },
        problem,
    }
}

#[cfg(test)]
mod tests {
    use beacon_catalog::registration::{Registration, fragment};
    use beacon_catalog::vip::extract;

    use super::*;

    /// The attack: an IP VIP on the Mesos master's address, after which the socket LB sent the
    /// agent's own master poll to whoever the VIP named. From any source, it is taken out.
    #[test]
    fn vips_on_masters_members_and_upstreams_are_fenced_off() {
        let mut config = Config::default();
        config.mesos_dns.masters = vec!["10.1.1.1:5050".into()];
        config.mesos_dns.resolvers = vec!["10.2.2.2".into()];
        config.mesos_dns.external_on = true;
        config.vip.max_registered_vips = 1;
        let mut fence = Fence::new(&config, &config.endpoints().unwrap());
        fence.member("n7", "10.3.3.3".parse().unwrap());
        let body = br#"{"name": "x", "framework": "f", "ips": ["10.9.0.1"], "ports": [
            {"number": 1, "protocol": "tcp", "labels": {"VIP_0": "10.1.1.1:5050"}},
            {"number": 2, "protocol": "tcp", "labels": {"VIP_0": "10.2.2.2:53"}},
            {"number": 3, "protocol": "tcp", "labels": {"VIP_0": "10.3.3.3:7946"}},
            {"number": 4, "protocol": "tcp", "labels": {"VIP_0": "10.4.4.4:80"}},
            {"number": 5, "protocol": "tcp", "labels": {"VIP_0": "10.5.5.5:80"}}]}"#;
        let regs = BTreeMap::from([("x".to_string(), Registration::parse(body).unwrap())]);
        let mut table = extract(&fragment("n1", &regs));
        assert_eq!(table.vips.len(), 5);
        fence.apply(&mut table);
        let left: Vec<String> = table.vips.keys().map(VipKey::display_name).collect();
        // The three fenced, and the fifth over the node's quota of one.
        assert_eq!(left, ["10.4.4.4:80"]);
        assert_eq!(table.warnings.len(), 4);
    }

    /// The same attack on a master the configuration does not list: the leader and the masters
    /// ZooKeeper named, which the catalog carries.
    #[test]
    fn vips_on_masters_the_catalog_names_are_fenced_off() {
        let mut fence = Fence::default();
        let catalog = Catalog {
            leader: beacon_catalog::mesos::parse_pid("master@10.6.6.6:5050").ok(),
            masters: vec!["10.7.7.7:5050".into(), "[fd00::7]:5050".into()],
            ..Catalog::default()
        };
        for ip in ["10.6.6.6", "10.7.7.7", "fd00::7"] {
            assert_eq!(fence.refuses(ip.parse().unwrap()), None, "{ip} before");
        }
        fence.masters_of(&catalog);
        for ip in ["10.6.6.6", "10.7.7.7", "fd00::7"] {
            assert!(fence.refuses(ip.parse().unwrap()).is_some(), "{ip}");
        }
        assert_eq!(fence.refuses("10.8.8.8".parse().unwrap()), None);
    }
}
