/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Load-time configuration: `volatile const` globals in .rodata that userspace sets before load
 * (aya: EbpfLoader::set_global). The verifier sees the final values, so branches on them cost
 * nothing at run time.
 */
#ifndef BEACON_CONFIG_H
#define BEACON_CONFIG_H

#include "common.h"

/*
 * Seed of the flow and socket hashes that pick a ring slot. Every node must use the same seed
 * (and userspace the same Maglev tables) for nodes to agree on a flow's backend without
 * sharing state.
 */
volatile const __u32 beacon_hash_seed = 0;

/*
 * The new-flow rate guard (Katran's flood mode, MAX_CONN_RATE): how many new flows each CPU may
 * save in the flow table per one-second window. Flows over it are still balanced (the ring picks
 * their backend) but not saved, so a flood of new flows (a SYN flood from spoofed sources)
 * cannot evict established flows from the LRU tables. 0: no guard.
 */
volatile const __u32 beacon_new_flow_rate_limit = 0;

#endif /* BEACON_CONFIG_H */
