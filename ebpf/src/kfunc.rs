//! Turning the kfunc-call stubs of the object into real kfunc calls before aya loads it.
//!
//! aya 0.14 cannot resolve `extern ... __ksym` kfunc declarations (libbpf does this at load
//! time), so `bpf/sock_destroy.c` calls `bpf_sock_destroy` through a helper-call stub whose
//! immediate is [`KFUNC_SOCK_DESTROY_MAGIC`]. [`patch`] rewrites each such instruction into
//! what libbpf would have emitted: `src_reg = BPF_PSEUDO_KFUNC_CALL` and `imm` = the kfunc's
//! BTF id in the running kernel (vmlinux, so `off` stays 0).
//!
//! Only the UDP iterator uses a kfunc. The unpatched [`crate::OBJECT`] loads and runs every
//! other program; only loading `beacon_udp_destroy` from it would fail the verifier.
//! Little-endian BPF objects only (what clang `-target bpf` builds on x86-64 and arm64).

use std::ops::Deref;

use aya::Btf;
use aya_obj::btf::BtfKind;

use crate::abi::KFUNC_SOCK_DESTROY_MAGIC;

/// Name of the kfunc the UDP iterator calls (kernel ≥ 6.5).
pub const SOCK_DESTROY: &str = "bpf_sock_destroy";

/// A copy of an object, 8-byte aligned as aya's ELF parser wants it.
#[derive(Clone, Debug)]
pub struct AlignedObject {
    words: Vec<u64>,
    len: usize,
}

/// What went wrong preparing the object.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum KfuncError {
    /// Occurs when the running kernel's BTF (`/sys/kernel/btf/vmlinux`) cannot be read, or has
    /// no `bpf_sock_destroy` (kernel older than 6.5).
    #[error("error finding kfunc {name} in kernel BTF: {source}")]
    Btf {
        /// The kfunc looked for.
        name: &'static str,
        /// Why it was not found.
        source: aya::BtfError,
    },
    /// Occurs when the object is not a 64-bit little-endian ELF with a sane section table.
    #[error("malformed BPF object: {0}")]
    Elf(&'static str),
}

impl AlignedObject {
    fn new(bytes: &[u8]) -> Self {
        let mut words = vec![0u64; bytes.len().div_ceil(8)];
        let mut this = Self {
            words: Vec::new(),
            len: bytes.len(),
        };
        // SAFETY: `words` owns at least `bytes.len()` initialised bytes; u64 has no invalid
        // bit patterns, so viewing it as bytes and writing them is sound.
        let dst = unsafe {
            std::slice::from_raw_parts_mut(words.as_mut_ptr().cast::<u8>(), words.len() * 8)
        };
        dst[..bytes.len()].copy_from_slice(bytes);
        this.words = words;
        this
    }

    fn bytes_mut(&mut self) -> &mut [u8] {
        // SAFETY: as in `new`; `len <= words.len() * 8`.
        unsafe { std::slice::from_raw_parts_mut(self.words.as_mut_ptr().cast::<u8>(), self.len) }
    }
}

impl Deref for AlignedObject {
    type Target = [u8];

    fn deref(&self) -> &[u8] {
        // SAFETY: `len <= words.len() * 8` and u64 storage is initialised.
        unsafe { std::slice::from_raw_parts(self.words.as_ptr().cast::<u8>(), self.len) }
    }
}

/// The BTF id of `bpf_sock_destroy` in `btf` (normally `Btf::from_sys_fs()`).
pub fn sock_destroy_id(btf: &Btf) -> Result<u32, KfuncError> {
    btf.id_by_type_name_kind(SOCK_DESTROY, BtfKind::Func)
        .map_err(|source| KfuncError::Btf {
            name: SOCK_DESTROY,
            source,
        })
}

/// [`crate::OBJECT`] with its kfunc calls resolved against the running kernel.
pub fn object_for_running_kernel() -> Result<AlignedObject, KfuncError> {
    let btf = Btf::from_sys_fs().map_err(|source| KfuncError::Btf {
        name: SOCK_DESTROY,
        source,
    })?;
    patch(crate::OBJECT, sock_destroy_id(&btf)?)
}

/// A copy of `object` whose `bpf_sock_destroy` stubs call the kfunc with BTF id
/// `sock_destroy_id`.
pub fn patch(object: &[u8], sock_destroy_id: u32) -> Result<AlignedObject, KfuncError> {
    const SHT_PROGBITS: u32 = 1;
    const SHF_EXECINSTR: u64 = 0x4;
    const BPF_CALL: u8 = 0x85; // BPF_JMP | BPF_CALL | BPF_K
    const BPF_PSEUDO_KFUNC_CALL: u8 = 2;

    let mut out = AlignedObject::new(object);
    let elf = out.bytes_mut();
    if elf.len() < 64 || &elf[..4] != b"\x7fELF" || elf[4] != 2 || elf[5] != 1 {
        return Err(KfuncError::Elf("not a 64-bit little-endian ELF"));
    }
    let shoff = read_u64(elf, 0x28)? as usize;
    let shentsize = usize::from(read_u16(elf, 0x3a)?);
    let shnum = usize::from(read_u16(elf, 0x3c)?);
    if shentsize < 64 {
        return Err(KfuncError::Elf("section header entries too small"));
    }
    for i in 0..shnum {
        let sh = shoff + i * shentsize;
        let kind = read_u32(elf, sh + 4)?;
        let flags = read_u64(elf, sh + 8)?;
        if kind != SHT_PROGBITS || flags & SHF_EXECINSTR == 0 {
            continue;
        }
        let start = read_u64(elf, sh + 0x18)? as usize;
        let size = read_u64(elf, sh + 0x20)? as usize;
        let code = elf
            .get_mut(start..start.saturating_add(size))
            .ok_or(KfuncError::Elf("section outside the file"))?;
        for insn in code.chunks_exact_mut(8) {
            let imm = u32::from_le_bytes([insn[4], insn[5], insn[6], insn[7]]);
            if insn[0] == BPF_CALL && insn[1] == 0 && imm == KFUNC_SOCK_DESTROY_MAGIC {
                // regs byte: dst_reg in the low nibble, src_reg in the high one.
                insn[1] = BPF_PSEUDO_KFUNC_CALL << 4;
                insn[4..8].copy_from_slice(&sock_destroy_id.to_le_bytes());
            }
        }
    }
    Ok(out)
}

fn read_u16(b: &[u8], at: usize) -> Result<u16, KfuncError> {
    b.get(at..at + 2)
        .map(|s| u16::from_le_bytes([s[0], s[1]]))
        .ok_or(KfuncError::Elf("truncated header"))
}

fn read_u32(b: &[u8], at: usize) -> Result<u32, KfuncError> {
    b.get(at..at + 4)
        .map(|s| u32::from_le_bytes([s[0], s[1], s[2], s[3]]))
        .ok_or(KfuncError::Elf("truncated header"))
}

fn read_u64(b: &[u8], at: usize) -> Result<u64, KfuncError> {
    b.get(at..at + 8)
        .map(|s| u64::from_le_bytes([s[0], s[1], s[2], s[3], s[4], s[5], s[6], s[7]]))
        .ok_or(KfuncError::Elf("truncated header"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stubs(object: &[u8], src_reg: u8, imm: u32) -> usize {
        object
            .chunks_exact(8)
            .filter(|i| {
                i[0] == 0x85
                    && i[1] == src_reg << 4
                    && u32::from_le_bytes([i[4], i[5], i[6], i[7]]) == imm
            })
            .count()
    }

    #[test]
    fn patch_turns_every_stub_into_a_kfunc_call() {
        let before = stubs(crate::OBJECT, 0, KFUNC_SOCK_DESTROY_MAGIC);
        assert!(
            before >= 1,
            "the object calls bpf_sock_destroy through the stub"
        );
        let patched = patch(crate::OBJECT, 12345).unwrap();
        assert_eq!(patched.len(), crate::OBJECT.len());
        assert_eq!(stubs(&patched, 0, KFUNC_SOCK_DESTROY_MAGIC), 0);
        assert_eq!(stubs(&patched, 2, 12345), before);
        assert_eq!(patched.as_ptr() as usize % 8, 0);
    }

    #[test]
    fn patch_rejects_non_elf() {
        assert!(matches!(patch(&[0u8; 100], 1), Err(KfuncError::Elf(_))));
    }
}
