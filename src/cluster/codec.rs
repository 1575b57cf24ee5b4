//! How a fragment travels in gossip: the payload format and the mapping between the agent's
//! origin names (`mesos-master`, `node/<name>`) and gossip's [`Origin`].

use beacon_catalog::Catalog;
use beacon_gossip::Origin;
use bytes::Bytes;

use crate::publish::node_origin;

/// The first byte of a payload: JSON compressed with LZ4 (block format, size prepended).
/// Fragments are JSON because they are read rarely and must stay debuggable; compressed because
/// a node's fragment runs to a megabyte for a few thousand tasks and compresses about tenfold.
const LZ4_JSON: u8 = 1;

/// The largest fragment a payload may expand to (a sync stream carries up to 64 MB).
const MAX_FRAGMENT: usize = 256 << 20;

/// Encodes a fragment as a gossip payload.
pub fn encode(fragment: &Catalog) -> Result<Bytes, serde_json::Error> {
    let json = serde_json::to_vec(fragment)?;
    let mut payload = vec![LZ4_JSON];
    payload.extend_from_slice(&lz4_flex::compress_prepend_size(&json));
    Ok(Bytes::from(payload))
}

/// Decodes a gossip payload; any other node may have sent it, so every length is checked.
pub fn decode(payload: &[u8]) -> Result<Catalog, String> {
    let Some((&LZ4_JSON, block)) = payload.split_first() else {
        return Err("unknown payload format".into());
    };
    let size = block.get(..4).map_or(usize::MAX, |s| {
        u32::from_le_bytes([s[0], s[1], s[2], s[3]]) as usize
    });
    if size > MAX_FRAGMENT {
        return Err(format!("fragment of {size} bytes is over the limit"));
    }
    let json = lz4_flex::decompress_size_prepended(block).map_err(|e| e.to_string())?;
    serde_json::from_slice(&json).map_err(|e| e.to_string())
}

/// Gossip's origin for the agent's origin name.
pub fn to_gossip(origin: &str) -> Origin {
    match origin.strip_prefix("node/") {
        Some(node) => Origin::Node(node.to_string()),
        None => Origin::Shared(origin.to_string()),
    }
}

/// The agent's origin name for gossip's origin.
pub fn from_gossip(origin: &Origin) -> String {
    match origin {
        Origin::Node(node) => node_origin(node),
        Origin::Shared(name) => name.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payloads_round_trip_and_garbage_is_an_error() {
        let fragment = Catalog {
            leader_raw: "master@10.0.0.1:5050".into(),
            ..Default::default()
        };
        let payload = encode(&fragment).unwrap();
        assert_eq!(decode(&payload).unwrap(), fragment);
        for bad in [
            &b""[..],
            b"{}",
            b"\x01",
            b"\x01\xff\xff\xff\xff",
            &payload[..payload.len() - 1],
        ] {
            assert!(decode(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn origin_names_map_both_ways() {
        for name in ["mesos-master", "node/n1"] {
            assert_eq!(from_gossip(&to_gossip(name)), name);
        }
    }
}
