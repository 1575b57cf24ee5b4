//! What the agent currently serves: one catalog and everything derived from it, swapped whole.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use arc_swap::ArcSwapOption;
use beacon_catalog::Catalog;
use beacon_dns::handler::SharedZone;
use beacon_dns::labels::LabelSpec;
use beacon_dns::records::{GeneratorConfig, IpSource, RecordSet, generate};
use beacon_dns::zone::{Zone, ZoneConfig, ZoneError};

use crate::config::Config;
use crate::vips::Vips;

/// One generation of served data.
#[derive(Debug)]
pub struct Published {
    /// The catalog it was built from.
    pub catalog: Catalog,
    /// The Mesos-DNS records.
    pub records: RecordSet,
    /// SOA serial: the unix time of the refresh, as Mesos-DNS sets it.
    pub serial: u32,
}

/// The current generation, readable without waiting by the DNS server and the HTTP API.
#[derive(Clone, Default)]
pub struct Current {
    /// Records and catalog, for the HTTP API.
    pub published: Arc<ArcSwapOption<Published>>,
    /// The zone, for the DNS server.
    pub zone: SharedZone,
}

impl Current {
    /// Whether a first catalog has been loaded.
    pub fn is_ready(&self) -> bool {
        self.published.load().is_some()
    }
}

/// Turns catalogs into published generations for one configuration.
#[derive(Clone, Debug)]
pub struct Publisher {
    generator: GeneratorConfig,
    zone: ZoneConfig,
    vips: Arc<Vips>,
}

impl Publisher {
    /// A publisher for `config`, whose DNS server answers as `ns_ips` (see [`ns_addresses`]),
    /// programming VIPs through `vips`.
    pub fn new(config: &Config, ns_ips: Vec<IpAddr>, vips: Arc<Vips>) -> Self {
        let m = &config.mesos_dns;
        let generator = GeneratorConfig {
            domain: m.domain.clone(),
            spec: if m.enforce_rfc952 {
                LabelSpec::Rfc952
            } else {
                LabelSpec::Rfc1123
            },
            ip_sources: m
                .ip_sources
                .iter()
                .filter_map(|s| IpSource::parse(s))
                .collect(),
            masters: m.masters.clone(),
            ns_name: m.soa_mname.clone(),
            ns_ips,
            enumerate: false,
        };
        let zone = ZoneConfig {
            domain: m.domain.clone(),
            ttl: m.ttl,
            srv_weight: m.srv_record_default_weight,
            soa_mname: m.soa_mname.clone(),
            soa_rname: m.soa_rname.clone(),
            soa_refresh: m.soa_refresh,
            soa_retry: m.soa_retry,
            soa_expire: m.soa_expire,
            serial: 0,
            apex_nodata: config.dns.apex_nodata,
            ptr_records: config.dns.ptr_records,
        };
        Self {
            generator,
            zone,
            vips,
        }
    }

    /// The VIP side.
    pub fn vips(&self) -> &Arc<Vips> {
        &self.vips
    }

    /// Which task made which record (`/v1/enumerate`): generated again on demand, since keeping
    /// it with every generation would double the records' memory.
    pub fn enumeration(&self, catalog: &Catalog) -> Vec<beacon_dns::records::EnumFramework> {
        let config = GeneratorConfig {
            enumerate: true,
            ..self.generator.clone()
        };
        generate(catalog, &config).enumeration
    }

    /// Builds a generation from `catalog` and makes it current. VIPs are programmed before
    /// the zone naming them is swapped in; `owners` maps Mesos agent ids to gossip nodes.
    pub fn publish(
        &self,
        current: &Current,
        catalog: Catalog,
        owners: &BTreeMap<String, String>,
    ) -> Result<Arc<Published>, ZoneError> {
        let serial = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs() as u32);
        let records = generate(&catalog, &self.generator);
        let zone = Zone::new(
            &records,
            ZoneConfig {
                serial,
                ..self.zone.clone()
            },
        )?;
        let vips = self.vips.program(&catalog, owners, |staying| {
            current.zone.store(Some(Arc::new(zone.with_vips(staying))));
        });
        let zone = zone.with_vips(&vips);
        if zone.skipped() > 0 {
            tracing::debug!(
                names = zone.skipped(),
                "generated names that DNS cannot serve (upper case or over-long labels)"
            );
        }
        let published = Arc::new(Published {
            catalog,
            records,
            serial,
        });
        current.zone.store(Some(Arc::new(zone)));
        current.published.store(Some(published.clone()));
        Ok(published)
    }
}

/// The addresses of the server's own name (`SOAMname`), from the DNS listener as Mesos-DNS
/// derives them (§3.9): a specific address is itself; the wildcard means every non-loopback
/// interface address.
pub fn ns_addresses(listener: &str) -> Vec<IpAddr> {
    match listener.parse::<IpAddr>() {
        Ok(ip) if !ip.is_unspecified() => vec![ip],
        Ok(_) => if_addrs::get_if_addrs()
            .map(|ifs| {
                ifs.into_iter()
                    .filter(|i| !i.is_loopback())
                    .map(|i| i.ip())
                    .collect()
            })
            .unwrap_or_default(),
        Err(_) => Vec::new(),
    }
}
