//! The UDP destroy iterator (`beacon_udp_destroy`). connect() pins a UDP socket to one backend
//! for its lifetime, so when that backend is removed the application would keep sending into
//! the void; one pass of the iterator aborts such sockets so the application reconnects to a
//! live backend. It needs the `bpf_sock_destroy` kfunc (kernel ≥ 6.5); without it removed
//! backends' sockets are left alone.

use std::error::Error;
use std::io::Read;

use aya::programs::Iter;
use aya::{Btf, Ebpf};
use beacon_ebpf::abi;
use tracing::warn;

use crate::error::first_line;
use crate::loader::program;

/// Loads the iterator; false (with a warning) if the kernel refuses it.
pub(crate) fn load(bpf: &mut Ebpf) -> bool {
    let loaded = Btf::from_sys_fs()
        .map_err(|e| e.to_string())
        .and_then(|btf| {
            let iter: &mut Iter =
                program(bpf, abi::programs::UDP_DESTROY).map_err(|e| e.to_string())?;
            iter.load("udp", &btf).map_err(|e| first_line(&e))
        });
    match loaded {
        Ok(()) => true,
        Err(e) => {
            warn!(
                error = %e,
                "connected UDP sockets of removed backends will not be destroyed"
            );
            false
        }
    }
}

/// Runs one pass: reading the iterator to its end is what visits (and destroys) the sockets.
pub(crate) fn run(bpf: &mut Ebpf) -> Result<(), Box<dyn Error>> {
    let iter: &mut Iter = program(bpf, abi::programs::UDP_DESTROY)?;
    let link = iter.attach()?;
    let link = iter.take_link(link)?;
    let mut file = link.into_file()?;
    let mut out = Vec::new();
    file.read_to_end(&mut out)?;
    Ok(())
}
