/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * The one object Beacon loads: every program, built as a single translation unit so the maps
 * in lib/maps.h are defined once and aya sees one ELF (no BPF linker needed). Each program
 * lives in its own file; this file only includes them and states the licence.
 */
#include "xdp_lb.c"
#include "tc_revnat.c"
#include "sock_lb.c"
#include "sock_destroy.c"

/* GPL-compatible: bpf_sock_destroy and several helpers are GPL-only. */
char LICENSE[] SEC("license") = "Dual BSD/GPL";
