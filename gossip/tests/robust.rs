//! Whatever a peer sends, a node answers with an error value, never a panic.

use std::sync::Arc;
use std::time::Instant;

use beacon_gossip::sim::SimCa;
use beacon_gossip::{Node, NodeConfig, NodeId};
use proptest::prelude::*;

fn node() -> Node {
    let id = NodeId::new("n1", "10.0.0.1:7000".parse().unwrap(), 1);
    let keys = Arc::new(Arc::new(SimCa::new()).issue("n1", false));
    Node::new(NodeConfig::default(), id, 7, Instant::now(), keys)
}

/// A datagram envelope for cluster 0 around `swim`: tag 0, cluster 0, length, bytes (postcard).
fn envelope(swim: &[u8]) -> Vec<u8> {
    let mut out = vec![0, 0];
    let mut len = swim.len();
    loop {
        let byte = (len & 0x7f) as u8;
        len >>= 7;
        if len == 0 {
            out.push(byte);
            break;
        }
        out.push(byte | 0x80);
    }
    out.extend_from_slice(swim);
    out
}

proptest! {
    #[test]
    fn random_input_is_an_error_not_a_panic(bytes in proptest::collection::vec(any::<u8>(), 0..1500)) {
        let mut n = node();
        let now = Instant::now();
        let peer = NodeId::seed("10.0.0.2:7000".parse().unwrap());
        let _ = n.handle_datagram(now, &bytes);
        let _ = n.handle_datagram(now, &envelope(&bytes));
        let _ = n.handle_sync_request(now, &bytes);
        let _ = n.handle_sync_response(now, &peer, &bytes);
        let _ = n.handle_sync_push(now, &bytes);
        n.handle_timeout(now);
    }
}
