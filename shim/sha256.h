/* SPDX-License-Identifier: Apache-2.0 */
/* SHA-256 (FIPS 180-4), for the socket-name hash containerd's shims use. */
#pragma once

#include <stddef.h>
#include <stdint.h>

#define SHA256_DIGEST_SIZE 32

void sha256(const void *data, size_t len, uint8_t out[SHA256_DIGEST_SIZE]);
/* Lower-case hex of the digest: 64 characters + NUL. */
void sha256_hex(const void *data, size_t len, char out[2 * SHA256_DIGEST_SIZE + 1]);
