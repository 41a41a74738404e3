/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

#include <stdbool.h>
#include <stddef.h>

/* containerd's identifier rule: 1..76 characters, [A-Za-z0-9]+ separated by single
 * '.', '_' or '-'. Anything that becomes part of a path is checked with this first. */
#define IDENTIFIER_MAX 76
bool identifier_is_valid(const char *s);
/* An absolute path without empty, "." or ".." components, at most max_len bytes. */
bool path_is_normal_absolute(const char *p, size_t max_len);
