//! Whatever a master (or anything pretending to be one) streams, the RecordIO decoder, the event
//! decoder and the stream state return results or errors, never panic.
//!
//! Case counts are small so that the file runs in a few seconds in a debug build;
//! `PROPTEST_CASES` overrides them.

use std::collections::HashMap;

use beacon_catalog::mesos_v1::{RecordIo, StreamState, decode_event, encode_record};
use proptest::prelude::*;

fn config(cases: u32) -> ProptestConfig {
    let mut config = ProptestConfig::default();
    if std::env::var_os("PROPTEST_CASES").is_none() {
        config.cases = cases;
    }
    config.failure_persistence = None;
    config
}

/// Pieces of events: valid fragments that a shuffle of them turns into near-misses.
const PIECES: [&str; 27] = [
    r#"{"type":"SUBSCRIBED","subscribed":{"get_state":{"get_tasks":{"tasks":["#,
    r#"{"type":"TASK_ADDED","task_added":{"task":"#,
    r#"{"type":"TASK_UPDATED","task_updated":{"framework_id":{"value":"F"},"status":"#,
    r#""state":"TASK_KILLED""#,
    r#"{"type":"AGENT_ADDED","agent_added":{"agent":{"agent_info":{"id":{"value":"S"}},"pid":"#,
    r#"{"type":"FRAMEWORK_ADDED","framework_added":{"framework":"#,
    r#"{"framework_info":{"id":{"value":"F"}}}}}"#,
    r#"{"type":"FRAMEWORK_REMOVED","framework_removed":{"framework_info":{"id":{"value":"F"}}}}"#,
    r#"{"type":"AGENT_REMOVED","agent_removed":{"agent_id":{"value":"S"}}}"#,
    r#"{"type":"HEARTBEAT"}"#,
    r#"{"task_id":{"value":"t"},"framework_id":{"value":"F"},"state":"TASK_RUNNING","#,
    r#""resources":[{"name":"ports","type":"RANGES","#,
    r#""ranges":{"range":[{"begin":1,"end":70000}]}}]"#,
    r#""statuses":[{"state":"TASK_RUNNING","timestamp":1e308,"healthy":true}]"#,
    r#""container_status":{"network_infos":[{"ip_addresses":[{"ip_address":"::1"}]}]}"#,
    r#""discovery":{"ports":{"ports":[{"number":-1}]},"labels":{"labels":[{"key":null}]}}"#,
    r#""heartbeat_interval_seconds":1e400"#,
    r#""get_frameworks":{"frameworks":[{"framework_info":{"id":{"value":"F"}}}]}"#,
    r#""get_agents":{"agents":[{"agent_info":{"id":{"value":"S"}},"pid":"x@y:1"}]}"#,
    r#""task_id":{"value":"t"}"#,
    r#""labels":[{"key":"k","value":"v"}]"#,
    "}",
    "]",
    ",",
    "{",
    "null",
    "\"",
];

fn apply_all(records: &[Vec<u8>]) {
    let mut state = StreamState::default();
    for record in records {
        match decode_event(record) {
            Ok(event) => {
                let _ = state.apply(event);
            }
            Err(e) => assert!(!e.to_string().is_empty()),
        }
    }
    let _ = state.catalog("master@1.2.3.4:5050", &HashMap::new());
}

proptest! {
    #![proptest_config(config(2000))]

    #[test]
    fn arbitrary_bytes_never_panic(
        bytes in prop::collection::vec(any::<u8>(), 0..300),
        cut in 1usize..40,
    ) {
        let mut decoder = RecordIo::new(1 << 10);
        let mut records = Vec::new();
        for chunk in bytes.chunks(cut) {
            decoder.push(chunk);
            while let Ok(Some(record)) = decoder.next_record() {
                records.push(record);
            }
        }
        records.push(bytes);
        apply_all(&records);
    }

    #[test]
    fn near_miss_events_never_panic(
        picks in prop::collection::vec(prop::collection::vec(0..PIECES.len(), 1..12), 1..8),
    ) {
        let records: Vec<Vec<u8>> = picks
            .iter()
            .map(|p| p.iter().map(|&i| PIECES[i]).collect::<Vec<_>>().join("").into_bytes())
            .collect();
        let stream: Vec<u8> = records.iter().flat_map(|r| encode_record(r)).collect();
        let mut decoder = RecordIo::new(1 << 20);
        decoder.push(&stream);
        let mut framed = Vec::new();
        while let Some(record) = decoder.next_record().expect("well framed") {
            framed.push(record);
        }
        prop_assert_eq!(&framed, &records);
        apply_all(&records);
    }
}
