/* SPDX-License-Identifier: Apache-2.0 */
/* Rootfs mounts from a Create request (containerd.types.Mount), made in the shim's
 * mount namespace onto <bundle>/rootfs, and their removal. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

struct mount_spec {
        const char *type;
        const char *source;
        char *const *options;
        size_t n_options;
};

struct mount_flags {
        unsigned long flags;     /* MS_* set by the options */
        unsigned long propagation;
        char *data;              /* the options the kernel gets as data (comma-joined), malloc'd */
        bool loop;               /* "loop": attach source to a loop device first (unsupported) */
};

/* fstab-style options -> flags + data. -E2BIG if data exceeds a page. */
int mount_parse_options(char *const *options, size_t n, struct mount_flags *ret);
/* Mount each entry onto target in order; on failure, what was mounted is unmounted.
 * *ret_error (malloc'd) describes a failure. */
int mount_all(const struct mount_spec *m, size_t n, const char *target, char **ret_error);
/* Unmount target until nothing is mounted there any more (EINVAL). 0 or -errno. */
int unmount_all(const char *target);
