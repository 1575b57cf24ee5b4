//! Operator commands that ask a running agent over its HTTP API: `beacon services`,
//! `beacon members` and `beacon vips`.

use std::collections::BTreeMap;
use std::time::Duration;

use crate::cli::QueryArgs;
use crate::common::BoxError;

/// `beacon services`: every SRV name with its targets, and every A/AAAA name with its
/// addresses, as the agent serves them.
pub async fn services(args: &QueryArgs) -> Result<(), BoxError> {
    let axfr = get_json(&args.api, "/v1/axfr").await?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&axfr)?);
        return Ok(());
    }
    let records = &axfr["Records"];
    let table = |key: &str| -> BTreeMap<String, Vec<String>> {
        serde_json::from_value(records[key].clone()).unwrap_or_default()
    };
    let (srv, a, aaaa) = (table("SRVs"), table("As"), table("AAAAs"));
    println!("{:<60} TARGETS", "SERVICE");
    for (name, targets) in &srv {
        println!("{name:<60} {}", targets.join(" "));
    }
    println!("\n{:<60} ADDRESSES", "NAME");
    let mut names: BTreeMap<&String, Vec<&String>> = BTreeMap::new();
    for (name, ips) in a.iter().chain(&aaaa) {
        names.entry(name).or_default().extend(ips);
    }
    for (name, ips) in names {
        let ips: Vec<&str> = ips.iter().map(|s| s.as_str()).collect();
        println!("{name:<60} {}", ips.join(" "));
    }
    Ok(())
}

/// `beacon members`: the cluster's members, this node first.
pub async fn members(args: &QueryArgs) -> Result<(), BoxError> {
    let nodes = get_json(&args.api, "/v1/nodes").await?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&nodes)?);
        return Ok(());
    }
    println!(
        "{:<24} {:<24} {:<8} {:>11} {:>10}",
        "NAME", "ADDRESS", "STATE", "INCARNATION", "SEEN (s)"
    );
    for m in nodes.as_array().into_iter().flatten() {
        let seen = m["last_seen_secs_ago"]
            .as_f64()
            .map_or("-".to_string(), |s| format!("{s:.1}"));
        println!(
            "{:<24} {:<24} {:<8} {:>11} {:>10}",
            m["name"].as_str().unwrap_or(""),
            m["address"].as_str().unwrap_or(""),
            m["state"].as_str().unwrap_or(""),
            m["incarnation"],
            seen
        );
    }
    Ok(())
}

/// `beacon vips`: each VIP with its address, whether it is programmed, and its backends.
pub async fn vips(args: &QueryArgs) -> Result<(), BoxError> {
    let vips = get_json(&args.api, "/v1/vips").await?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&vips)?);
        return Ok(());
    }
    for v in vips.as_array().into_iter().flatten() {
        let addresses: Vec<&str> = ["address", "address6"]
            .iter()
            .filter_map(|k| v[*k].as_str())
            .collect();
        println!(
            "{} {} {}  {}  packets {} bytes {} flows {}",
            v["vip"].as_str().unwrap_or(""),
            v["protocol"].as_str().unwrap_or(""),
            addresses.join(" "),
            if v["programmed"] == true {
                "programmed"
            } else {
                "not programmed"
            },
            v["packets"],
            v["bytes"],
            v["new_flows"],
        );
        for b in v["backend"].as_array().into_iter().flatten() {
            println!(
                "    {:<40} weight {} node {:<20} {}  packets {} flows {}",
                format!("{}:{}", b["ip"].as_str().unwrap_or(""), b["port"]),
                b["weight"],
                b["node"].as_str().unwrap_or(""),
                if b["reachable"] == true {
                    "reachable"
                } else {
                    "withdrawn"
                },
                b["packets"],
                b["new_flows"],
            );
        }
    }
    Ok(())
}

async fn get_json(api: &str, path: &str) -> Result<serde_json::Value, BoxError> {
    let base = api.trim_end_matches('/');
    let url = match base.contains("://") {
        true => format!("{base}{path}"),
        false => format!("http://{base}{path}"),
    };
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .no_proxy()
        .tls_backend_preconfigured(no_tls()?)
        .build()?;
    let resp = client
        .get(&url)
        .send()
        .await
        .map_err(|e| format!("cannot reach the agent at {url}: {e}"))?;
    let status = resp.status();
    if !status.is_success() {
        return Err(format!("GET {url}: {status}").into());
    }
    let body = resp.bytes().await.map_err(|e| format!("GET {url}: {e}"))?;
    Ok(serde_json::from_slice(&body).map_err(|e| format!("GET {url}: not JSON: {e}"))?)
}

/// The agent's API is plain HTTP; reqwest still wants a TLS backend configured.
fn no_tls() -> Result<rustls::ClientConfig, BoxError> {
    let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
    Ok(rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_root_certificates(rustls::RootCertStore::empty())
        .with_no_client_auth())
}
