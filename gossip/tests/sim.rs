//! Cluster behaviour in the deterministic simulator: convergence, deletion, withdrawal and
//! return, partitions, false positives under loss, and monotonic versions across restarts.

use std::cell::RefCell;
use std::rc::Rc;
use std::time::Duration;

use beacon_gossip::sim::{Sim, SimConfig};
use beacon_gossip::{Event, Origin};

fn cluster(n: usize, seed: u64) -> Sim {
    let mut sim = Sim::new(SimConfig {
        seed,
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
