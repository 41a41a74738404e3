/* SPDX-License-Identifier: Apache-2.0 */
/* What a Go binary says about itself: the module it was built from, read from the ELF
 * section .go.buildinfo (Go >= 1.18 stores the module information there inline). */
#pragma once

/* The major version of the containerd module the binary at PATH was built from: 1 for
 * github.com/containerd/containerd, N for github.com/containerd/containerd/vN; 0 if it
 * is no readable 64-bit ELF Go build of containerd. */
int containerd_binary_major(const char *path);
