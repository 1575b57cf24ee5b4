//! Marks builds where root-only tests cannot run, so they show as ignored
//! (`beacon_test_support::privileged`).

fn main() {
    beacon_test_support::privileged::build_cfg();
}
