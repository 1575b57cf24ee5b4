//! Compiles the C BPF programs in `bpf/` with clang-19 into objects in `OUT_DIR`, which
//! `src/lib.rs` embeds: `beacon.bpf.o` (every program) and `dnat_baseline.o` (bench only).

use std::{
    env,
    path::{Path, PathBuf},
    process::Command,
};

/// Objects to build: (translation unit under `bpf/`, output file name).
const OBJECTS: &[(&str, &str)] = &[
    ("beacon.bpf.c", "beacon.bpf.o"),
    ("bench/dnat_baseline.c", "dnat_baseline.o"),
];

fn main() {
    let manifest_dir = PathBuf::from(env::var_os("CARGO_MANIFEST_DIR").expect("set by cargo"));
    let out_dir = PathBuf::from(env::var_os("OUT_DIR").expect("set by cargo"));
    let bpf_dir = manifest_dir.join("bpf");
    println!("cargo:rerun-if-changed={}", bpf_dir.display());
    println!("cargo:rerun-if-env-changed=BEACON_BPF_CLANG");
    // Root-only tests show as ignored where they cannot run (`beacon_test_support::privileged`).
    beacon_test_support::privileged::build_cfg();

    let clang = env::var("BEACON_BPF_CLANG").unwrap_or_else(|_| "clang-19".to_owned());
    check_clang(&clang);
    for (source, object) in OBJECTS {
        compile(
            &clang,
            &bpf_dir,
            &bpf_dir.join(source),
            &out_dir.join(object),
        );
    }
}

fn check_clang(clang: &str) {
    match Command::new(clang).arg("--version").output() {
        Ok(out) if out.status.success() => {}
        _ => panic!(
            "\n\nbeacon-ebpf: cannot run `{clang}`, needed to compile the BPF programs in ebpf/bpf.\n\
             Install it with:\n\n    apt-get install clang-19 libbpf-dev\n\n\
             (or point BEACON_BPF_CLANG at another clang with the BPF target)\n"
        ),
    }
    if !Path::new("/usr/include/bpf/bpf_helpers.h").exists() {
        panic!(
            "\n\nbeacon-ebpf: /usr/include/bpf/bpf_helpers.h is missing.\n\
             Install libbpf's headers with:\n\n    apt-get install clang-19 libbpf-dev\n"
        );
    }
}

fn compile(clang: &str, include_dir: &Path, source: &Path, object: &Path) {
    let status = Command::new(clang)
        .args(["-O2", "-g", "-target", "bpf", "-mcpu=v3"])
        .args(["-Wall", "-Wextra", "-Werror"])
        // <asm/types.h> and friends live in the multiarch directory on Debian.
        .arg(format!("-I/usr/include/{}", multiarch()))
        .arg("-I")
        .arg(include_dir)
        .arg("-c")
        .arg(source)
        .arg("-o")
        .arg(object)
        .status()
        .unwrap_or_else(|e| panic!("beacon-ebpf: running {clang}: {e}"));
    if !status.success() {
        panic!(
            "beacon-ebpf: {clang} failed to compile {}",
            source.display()
        );
    }
}

/// Debian's multiarch triplet for the host the object will be loaded on.
fn multiarch() -> &'static str {
    match env::var("CARGO_CFG_TARGET_ARCH").as_deref() {
        Ok("aarch64") => "aarch64-linux-gnu",
        Ok("riscv64") => "riscv64-linux-gnu",
        Ok("powerpc64") => "powerpc64le-linux-gnu",
        Ok("s390x") => "s390x-linux-gnu",
        _ => "x86_64-linux-gnu",
    }
}
