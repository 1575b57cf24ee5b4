//! Cluster behaviour in the deterministic simulator: convergence, deletion, withdrawal and
//! return, partitions, false positives under loss, monotonic versions across restarts, and
//! writes a certificate holder has no right to (forged origins, stamps from the future).

use std::cell::RefCell;
use std::rc::Rc;
use std::time::Duration;

use beacon_gossip::sim::{Sim, SimConfig};
use beacon_gossip::{Event, Origin, Reason};

/// Nodes 0 to 3 may poll the Mesos master; the others may not.
const MASTER_POLLERS: usize = 4;

fn cluster(n: usize, seed: u64) -> Sim {
    let mut sim = Sim::new(SimConfig {
        seed,
        master_pollers: MASTER_POLLERS,
        ..SimConfig::default()
    });
    sim.add_nodes(n, Duration::from_millis(20));
    // Let membership settle.
    sim.run_for(Duration::from_secs(5));
    for i in sim.alive() {
        assert_eq!(
            sim.node(i).unwrap().members().len(),
            n - 1,
            "node {i} sees everyone"
        );
    }
    sim
}

fn node_origin(i: usize) -> Origin {
    Origin::Node(Sim::name(i))
}

#[test]
fn five_nodes_converge_after_a_registration() {
    let mut sim = cluster(5, 1);
    let version = sim.publish(2, node_origin(2), &b"web.marathon -> 10.0.0.3:80"[..]);
    let start = sim.now();
    let done = sim.run_while_not(Duration::from_secs(5), Duration::from_millis(10), |s| {
        s.holding(&node_origin(2), version) == 5
    });
    assert!(done, "every node holds the registration");
    assert!(
        sim.now() - start < Duration::from_secs(1),
        "within a second"
    );
    for i in sim.alive() {
        let record = sim.node(i).unwrap().record(&node_origin(2)).unwrap();
        assert_eq!(&record.payload[..], b"web.marathon -> 10.0.0.3:80");
    }
}

#[test]
fn a_delete_converges() {
    let mut sim = cluster(5, 2);
    let version = sim.publish(1, node_origin(1), &b"task a"[..]);
    assert!(
        sim.run_while_not(Duration::from_secs(5), Duration::from_millis(10), |s| {
            s.holding(&node_origin(1), version) == 5
        })
    );
    let deleted = sim.publish(1, node_origin(1), &b""[..]);
    assert!(deleted > version);
    assert!(
        sim.run_while_not(Duration::from_secs(5), Duration::from_millis(10), |s| {
            s.holding(&node_origin(1), deleted) == 5
        })
    );
    for i in sim.alive() {
        assert!(
            sim.node(i).unwrap().record(&node_origin(1)).is_none(),
            "gone on node {i}"
        );
    }
}

#[test]
fn a_dead_node_is_withdrawn_after_the_grace_period_and_returns_after_restart() {
    let mut sim = cluster(5, 3);
    let grace = Duration::from_secs(30);
    let version = sim.publish(3, node_origin(3), &b"db.marathon"[..]);
    sim.run_for(Duration::from_secs(2));
    assert_eq!(sim.holding(&node_origin(3), version), 5);

    let downs = Rc::new(RefCell::new(Vec::new()));
    let log = downs.clone();
    sim.set_recorder(Box::new(move |at, i, e| {
        if let Event::MemberDown(id) = e {
            log.borrow_mut().push((at, i, id.name().to_owned()));
        }
    }));
    sim.kill(3);
    let killed = sim.now();
    let visible = |s: &Sim| {
        s.alive()
            .into_iter()
            .filter(|i| s.node(*i).unwrap().record(&node_origin(3)).is_some())
            .count()
    };
    assert!(
        sim.run_while_not(Duration::from_secs(10), Duration::from_millis(50), |_| {
            downs.borrow().iter().filter(|d| d.2 == "n3").count() == 4
        })
    );
    let detected = sim.now() - killed;
    assert!(
        detected < Duration::from_secs(5),
        "detected in {detected:?}"
    );
    // Still visible during the grace period.
    sim.run_for(grace / 2);
    assert_eq!(visible(&sim), 4);
    sim.run_for(grace / 2 + Duration::from_secs(2));
    assert_eq!(visible(&sim), 0, "withdrawn everywhere");

    sim.restart(3, 0);
    let back = sim.publish(3, node_origin(3), &b"db.marathon v2"[..]);
    assert!(back > version);
    assert!(
        sim.run_while_not(Duration::from_secs(5), Duration::from_millis(10), |s| {
            visible(s) == 5
        })
    );
    assert_eq!(sim.holding(&node_origin(3), back), 5);
}

#[test]
fn a_partition_heals_to_the_union() {
    let mut sim = cluster(6, 4);
    let shared = Origin::Shared("mesos-master".into());
    let base = sim.publish(0, shared.clone(), &b"state 0"[..]);
    sim.run_for(Duration::from_secs(2));
    assert_eq!(sim.holding(&shared, base), 6);

    sim.partition(&[&[0, 1, 2], &[3, 4, 5]]);
    sim.run_for(Duration::from_secs(5));
    let left = sim.publish(1, node_origin(1), &b"left task"[..]);
    let right = sim.publish(4, node_origin(4), &b"right task"[..]);
    let right_big = sim.publish(5, node_origin(5), vec![7u8; 5000]);
    sim.publish(0, shared.clone(), &b"state 1 (left)"[..]);
    sim.run_for(Duration::from_millis(10));
    let newest = sim.publish(3, shared.clone(), &b"state 2 (right)"[..]);
    sim.run_for(Duration::from_secs(60));
    assert_eq!(
        sim.holding(&node_origin(1), left),
        3,
        "left change stayed left"
    );

    sim.heal();
    let healed = sim.run_while_not(Duration::from_secs(120), Duration::from_millis(100), |s| {
        s.holding(&node_origin(1), left) == 6
            && s.holding(&node_origin(4), right) == 6
            && s.holding(&node_origin(5), right_big) == 6
            && s.holding(&shared, newest) == 6
            && s.alive().iter().all(|i| {
                s.node(*i).unwrap().members().len() == 5
                    && [1, 4, 5]
                        .iter()
                        .all(|o| s.node(*i).unwrap().record(&node_origin(*o)).is_some())
            })
    });
    assert!(healed, "both sides' changes everywhere, nothing withdrawn");
    for i in sim.alive() {
        let record = sim.node(i).unwrap().record(&shared).unwrap();
        assert_eq!(&record.payload[..], b"state 2 (right)");
    }
}

#[test]
/// Also the regression test for foca 2.0.0 sending `TurnUndead` after a refuted suspicion: that
/// showed up here as healthy nodes rejoining under new identities.
fn no_false_positives_at_5_percent_loss() {
    let mut sim = cluster(50, 5);
    sim.set_loss(0.05);
    let downs = Rc::new(RefCell::new((0, 0)));
    let log = downs.clone();
    sim.set_recorder(Box::new(move |_, _, e| match e {
        Event::MemberDown(_) => log.borrow_mut().0 += 1,
        Event::Rejoined(_) => log.borrow_mut().1 += 1,
        _ => {}
    }));
    sim.run_for(Duration::from_secs(600));
    assert_eq!(downs.borrow().0, 0, "no live node declared down");
    assert_eq!(downs.borrow().1, 0, "no live node forced to rejoin");
}

#[test]
fn a_restarted_node_never_goes_backwards() {
    let mut sim = cluster(5, 6);
    let before = sim.publish(1, node_origin(1), &b"old life"[..]);
    sim.run_for(Duration::from_secs(2));
    assert_eq!(sim.holding(&node_origin(1), before), 5);
    sim.kill(1);
    sim.run_for(Duration::from_secs(1));
    // The new life's clock is a minute behind: its first version is older than the last one.
    sim.restart(1, -60_000);
    let first = sim.publish(1, node_origin(1), &b"new life"[..]);
    assert!(first < before);
    let fixed = sim.run_while_not(Duration::from_secs(30), Duration::from_millis(100), |s| {
        s.alive().iter().all(|i| {
            let node = s.node(*i).unwrap();
            node.version(&node_origin(1)).is_some_and(|v| v > before)
                && node
                    .record(&node_origin(1))
                    .is_some_and(|r| &r.payload[..] == b"new life")
        })
    });
    assert!(
        fixed,
        "the new life's records win everywhere with a newer version"
    );
}

#[test]
fn same_seed_same_run() {
    let run = |seed| {
        let mut sim = cluster(8, seed);
        sim.set_loss(0.1);
        sim.publish(2, node_origin(2), &b"x"[..]);
        sim.run_for(Duration::from_secs(20));
        (
            sim.stats().datagrams,
            sim.stats().stream_bytes,
            sim.stats().dropped,
        )
    };
    assert_eq!(run(9), run(9));
}

fn rejected(sim: &Sim, reason: Reason) -> u64 {
    sim.alive()
        .iter()
        .map(|i| sim.node(*i).unwrap().rejections().get(reason))
        .sum()
}

#[test]
fn a_certificate_holder_cannot_forge_another_nodes_origin_or_the_masters() {
    let mut sim = cluster(12, 11);
    let master = Origin::Shared("mesos-master".into());
    let honest = sim.publish(0, master.clone(), &b"state from the real master"[..]);
    let own = sim.publish(3, node_origin(3), &b"db.marathon -> 10.0.0.4"[..]);
    sim.run_for(Duration::from_secs(3));
    assert_eq!(sim.holding(&master, honest), 12);
    assert_eq!(sim.holding(&node_origin(3), own), 12);
    // Node 7 holds a valid certificate (for n7, without the master-poller role). It writes
    // n3's origin and the master's, small (broadcast whole) and large (notice and pull).
    let forged = sim.publish(7, node_origin(3), &b"db.marathon -> 6.6.6.6"[..]);
    let forged_master = sim.publish(7, master.clone(), vec![6u8; 4000]);
    sim.run_for(Duration::from_secs(30));
    assert_eq!(sim.holding(&node_origin(3), forged), 1, "only the forger");
    assert_eq!(sim.holding(&master, forged_master), 1, "only the forger");
    for i in sim.alive().into_iter().filter(|i| *i != 7) {
        let node = sim.node(i).unwrap();
        assert_eq!(node.version(&node_origin(3)), Some(own), "node {i}");
        assert_eq!(node.version(&master), Some(honest), "node {i}");
    }
    assert!(
        rejected(&sim, Reason::Foreign) >= 11,
        "counted where refused"
    );
    // The owners still write, and everyone takes it.
    let next = sim.publish(3, node_origin(3), &b"db.marathon -> 10.0.0.5"[..]);
    let next_master = sim.publish(1, master.clone(), &b"next state"[..]);
    sim.run_for(Duration::from_secs(3));
    assert_eq!(sim.holding(&node_origin(3), next), 12);
    assert!(sim.holding(&master, next_master) >= 11);
}

#[test]
fn a_stamp_from_the_future_is_refused_and_the_owners_keep_writing() {
    let mut sim = cluster(8, 12);
    let master = Origin::Shared("mesos-master".into());
    sim.publish(0, master.clone(), &b"state 0"[..]);
    sim.run_for(Duration::from_secs(2));
    // Node 1, a master poller with a lying clock, deletes the master's records at the end of
    // time (a tombstone stamped u64::MAX), then node 2 an hour ahead.
    let locked = sim.publish_at(1, u64::MAX, master.clone(), &b""[..]);
    assert_eq!(locked.stamp, u64::MAX);
    let hour_ahead = sim.wall_ms(2) + 3_600_000;
    let ahead = sim.publish_at(2, hour_ahead, master.clone(), &b"state from the future"[..]);
    sim.run_for(Duration::from_secs(20));
    assert_eq!(sim.holding(&master, locked), 1, "only the liar");
    assert!(sim.holding(&master, ahead) <= 2, "only the liars");
    assert!(rejected(&sim, Reason::FutureStamp) >= 6);
    // The honest poller keeps writing, and every honest node takes it.
    let next = sim.publish(0, master.clone(), &b"state 1"[..]);
    sim.run_for(Duration::from_secs(3));
    for i in [0, 3, 4, 5, 6, 7] {
        let record = sim.node(i).unwrap().record(&master);
        assert_eq!(record.map(|r| r.version), Some(next), "node {i}");
    }
}

#[test]
fn a_revoked_node_is_dropped_its_origin_withdrawn_and_its_writes_refused() {
    let mut sim = cluster(8, 13);
    let before = sim.publish(5, node_origin(5), &b"api.marathon -> 10.0.0.6"[..]);
    sim.run_for(Duration::from_secs(3));
    assert_eq!(sim.holding(&node_origin(5), before), 8);
    sim.revoke(5);
    sim.run_for(Duration::from_millis(100));
    let others: Vec<usize> = sim.alive().into_iter().filter(|i| *i != 5).collect();
    for i in &others {
        let node = sim.node(*i).unwrap();
        assert_eq!(
            node.record(&node_origin(5)),
            None,
            "withdrawn at once on node {i}"
        );
    }
    // The revoked node keeps talking (no TLS here) and writes again: every other node keeps it
    // down and refuses the write.
    let after = sim.publish(5, node_origin(5), &b"api.marathon -> 6.6.6.6"[..]);
    sim.run_for(Duration::from_secs(30));
    assert_eq!(
        sim.holding(&node_origin(5), after),
        1,
        "only the revoked node"
    );
    for i in &others {
        let node = sim.node(*i).unwrap();
        assert_eq!(node.record(&node_origin(5)), None, "node {i}");
        let up = node.members().iter().any(|m| m.name() == Sim::name(5));
        assert!(!up, "node {i} lists the revoked node as a member");
    }
    assert!(
        rejected(&sim, Reason::Revoked) >= 7,
        "counted where refused"
    );
}
