/* SPDX-License-Identifier: Apache-2.0 */
#include "mount.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <unistd.h>

#include "log.h"
#include "macro.h"

struct flag_word {
        const char *word;
        bool clear;
        unsigned long flag;
};

static const struct flag_word flag_words[] = {
        {"async", true, MS_SYNCHRONOUS},   {"atime", true, MS_NOATIME},
        {"bind", false, MS_BIND},          {"defaults", false, 0},
        {"dev", true, MS_NODEV},           {"diratime", true, MS_NODIRATIME},
        {"dirsync", false, MS_DIRSYNC},    {"exec", true, MS_NOEXEC},
        {"mand", false, MS_MANDLOCK},      {"noatime", false, MS_NOATIME},
        {"nodev", false, MS_NODEV},        {"nodiratime", false, MS_NODIRATIME},
        {"noexec", false, MS_NOEXEC},      {"nomand", true, MS_MANDLOCK},
        {"norelatime", true, MS_RELATIME}, {"nostrictatime", true, MS_STRICTATIME},
        {"nosuid", false, MS_NOSUID},      {"rbind", false, MS_BIND | MS_REC},
        {"relatime", false, MS_RELATIME},  {"remount", false, MS_REMOUNT},
        {"ro", false, MS_RDONLY},          {"rw", true, MS_RDONLY},
        {"strictatime", false, MS_STRICTATIME}, {"suid", true, MS_NOSUID},
        {"sync", false, MS_SYNCHRONOUS},
};

static const struct flag_word propagation_words[] = {
        {"private", false, MS_PRIVATE},   {"rprivate", false, MS_PRIVATE | MS_REC},
        {"shared", false, MS_SHARED},     {"rshared", false, MS_SHARED | MS_REC},
        {"slave", false, MS_SLAVE},       {"rslave", false, MS_SLAVE | MS_REC},
        {"unbindable", false, MS_UNBINDABLE}, {"runbindable", false, MS_UNBINDABLE | MS_REC},
};

int mount_parse_options(char *const *options, size_t n, struct mount_flags *ret) {
        struct mount_flags f = {0};
        size_t page = (size_t)sysconf(_SC_PAGESIZE);
        _cleanup_free_ char *data = calloc(1, page + 1);
        size_t dlen = 0;
        if (!data)
                return -ENOMEM;
        for (size_t i = 0; i < n; i++) {
                const char *o = options[i];
                bool matched = false;
                for (size_t k = 0; k < ELEMENTSOF(flag_words) && !matched; k++)
                        if (strcmp(o, flag_words[k].word) == 0) {
                                if (flag_words[k].clear)
                                        f.flags &= ~flag_words[k].flag;
                                else
                                        f.flags |= flag_words[k].flag;
                                matched = true;
                        }
                for (size_t k = 0; k < ELEMENTSOF(propagation_words) && !matched; k++)
                        if (strcmp(o, propagation_words[k].word) == 0) {
                                f.propagation |= propagation_words[k].flag;
                                matched = true;
                        }
                if (!matched && strcmp(o, "loop") == 0) {
                        f.loop = true;
                        matched = true;
                }
                if (matched)
                        continue;
                size_t l = strlen(o);
                if (dlen + l + 1 > page)
                        return -E2BIG;
                if (dlen)
                        data[dlen++] = ',';
                memcpy(data + dlen, o, l);
                dlen += l;
                data[dlen] = 0;
        }
        f.data = TAKE_PTR(data);
        *ret = f;
        return 0;
}

int mount_all(const struct mount_spec *m, size_t n, const char *target, char **ret_error) {
        for (size_t i = 0; i < n; i++) {
                struct mount_flags f;
                int r = mount_parse_options(m[i].options, m[i].n_options, &f);
                if (r == 0 && f.loop) {
                        free(f.data); /* parsed, but loop devices are not supported */
                        r = -EOPNOTSUPP;
                }
                if (r < 0) {
                        if (ret_error && asprintf(ret_error, "mount %zu (%s): bad options: %s", i,
                                                  m[i].type ? m[i].type : "", strerror(-r)) < 0)
                                *ret_error = NULL;
                        goto fail;
                }
                const char *type = m[i].type && *m[i].type ? m[i].type : NULL;
                if (mount(m[i].source, target, type, f.flags,
                          *f.data ? f.data : NULL) < 0) {
                        r = -errno;
                        if (ret_error && asprintf(ret_error, "failed to mount rootfs component %s on %s (type %s, options \"%s\"): %s",
                                                  m[i].source ? m[i].source : "", target, type ? type : "",
                                                  f.data, strerror(-r)) < 0)
                                *ret_error = NULL;
                        free(f.data);
                        goto fail;
                }
                /* The kernel ignores MS_RDONLY on a first bind mount: remount to apply it. */
                if ((f.flags & MS_BIND) && (f.flags & MS_RDONLY) &&
                    mount("", target, NULL, f.flags | MS_REMOUNT, NULL) < 0)
                        log_warn("read-only remount of %s failed, ignoring: %m", target);
                if (f.propagation && mount("", target, NULL, f.propagation, NULL) < 0)
                        log_warn("setting propagation of %s failed, ignoring: %m", target);
                free(f.data);
                continue;
        fail:
                unmount_all(target);
                return r < 0 ? r : -EINVAL;
        }
        return 0;
}

int unmount_all(const char *target) {
        for (int tries = 0; tries < 64; tries++) {
                if (umount2(target, UMOUNT_NOFOLLOW) == 0)
                        continue;
                if (errno == EINVAL || errno == ENOENT)
                        return 0; /* nothing (more) mounted */
                if (errno == EBUSY) {
                        /* Something still uses it: detach now, the kernel finishes later. */
                        if (umount2(target, MNT_DETACH | UMOUNT_NOFOLLOW) == 0)
                                continue;
                }
                return -errno;
        }
        return -EBUSY;
}
