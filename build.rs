//! Marks builds where the root-only integration tests cannot run, so they show as ignored
//! (`beacon_test_support::privileged`).

fn main() {
    beacon_test_support::privileged::build_cfg();
    git_revision();
}

/// `BEACON_GIT_REV` for `beacon --version`: the commit built, `-dirty` when the tree has
/// changes, `unknown` outside a git checkout (a source tarball).
fn git_revision() {
    let git = |args: &[&str]| {
        std::process::Command::new("git")
            .args(args)
            .output()
            .ok()
            .filter(|o| o.status.success())
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
    };
    let rev = git(&["rev-parse", "--short=12", "HEAD"]).unwrap_or_else(|| "unknown".into());
    let dirty =
        git(&["status", "--porcelain", "--untracked-files=no"]).is_some_and(|s| !s.is_empty());
    let suffix = if dirty { "-dirty" } else { "" };
    println!("cargo:rustc-env=BEACON_GIT_REV={rev}{suffix}");
    println!("cargo:rerun-if-changed=.git/HEAD");
    println!("cargo:rerun-if-changed=.git/index");
}
