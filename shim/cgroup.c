/* SPDX-License-Identifier: Apache-2.0 */
#include "cgroup.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <unistd.h>

#include "file-util.h"
#include "log.h"
#include "macro.h"
#include "metrics.pb-c.h"

#define CGROUP_FILE_MAX (256u * 1024)

int cgroup_detect(const char *sysfs_root) {
        char p[512];
        snprintf(p, sizeof p, "%s/memory/memory.usage_in_bytes", sysfs_root ? sysfs_root : "/sys/fs/cgroup");
        if (access(p, F_OK) == 0)
                return CGROUP_V1;
        snprintf(p, sizeof p, "%s/cgroup.controllers", sysfs_root ? sysfs_root : "/sys/fs/cgroup");
        if (access(p, F_OK) == 0)
                return CGROUP_V2;
        return -ENOENT;
}

int cgroup_path_of(const char *proc_cgroup, size_t len, const char *controller, char **ret_dir, char **ret_path) {
        /* lines: "N:ctrl1,ctrl2:/path"; v2: "0::/path" (controller NULL or "") */
        const char *p = proc_cgroup, *end = proc_cgroup + len;
        while (p < end) {
                const char *nl = memchr(p, '\n', (size_t)(end - p));
                const char *le = nl ? nl : end;
                const char *c1 = memchr(p, ':', (size_t)(le - p));
                const char *c2 = c1 ? memchr(c1 + 1, ':', (size_t)(le - c1 - 1)) : NULL;
                if (c2) {
                        size_t cl = (size_t)(c2 - c1 - 1);
                        bool match = false;
                        if (!controller || !*controller)
                                match = cl == 0;
                        else {
                                /* controller appears as a whole word in the comma list */
                                const char *w = c1 + 1;
                                while (w < c2 && !match) {
                                        const char *comma = memchr(w, ',', (size_t)(c2 - w));
                                        const char *we = comma ? comma : c2;
                                        if ((size_t)(we - w) == strlen(controller) &&
                                            strncmp(w, controller, (size_t)(we - w)) == 0)
                                                match = true;
                                        w = we + 1;
                                }
                        }
                        if (match) {
                                char *dir = strndup(c1 + 1, cl), *path = strndup(c2 + 1, (size_t)(le - c2 - 1));
                                if (!dir || !path || strstr(path, "/../") || path[0] != '/') {
                                        free(dir);
                                        free(path);
                                        return -EINVAL;
                                }
                                *ret_dir = dir;
                                *ret_path = path;
                                return 0;
                        }
                }
                p = le + 1;
        }
        return -ENOENT;
}

static int cgroup_dir(const char *proc_root, const char *sysfs_root, pid_t pid, const char *controller, char **ret) {
        char path[256];
        snprintf(path, sizeof path, "%s/%d/cgroup", proc_root ? proc_root : "/proc", (int)pid);
        _cleanup_free_ char *buf = NULL, *dir = NULL, *rel = NULL;
        size_t len;
        int r = read_file_at(AT_FDCWD, path, CGROUP_FILE_MAX, &buf, &len);
        if (r < 0)
                return r;
        r = cgroup_path_of(buf, len, controller, &dir, &rel);
        if (r < 0)
                return r;
        if (asprintf(ret, "%s%s%s%s", sysfs_root ? sysfs_root : "/sys/fs/cgroup", *dir ? "/" : "", dir, rel) < 0)
                return -ENOMEM;
        return 0;
}

static int read_u64(const char *dir, const char *file, uint64_t *ret) {
        char p[1024];
        snprintf(p, sizeof p, "%s/%s", dir, file);
        _cleanup_free_ char *buf = NULL;
        int r = read_file_at(AT_FDCWD, p, 4096, &buf, NULL);
        if (r < 0)
                return r;
        if (strncmp(buf, "max", 3) == 0) {
                *ret = UINT64_MAX;
                return 0;
        }
        char *end;
        errno = 0;
        unsigned long long v = strtoull(buf, &end, 10);
        if (errno || end == buf)
                return -EINVAL;
        *ret = v;
        return 0;
}

/* "key value" lines (memory.stat, cpu.stat, memory.oom_control, memory.events). */
int cgroup_read_keyed(const char *dir, const char *file, const char *key, uint64_t *ret) {
        char p[1024];
        snprintf(p, sizeof p, "%s/%s", dir, file);
        _cleanup_free_ char *buf = NULL;
        int r = read_file_at(AT_FDCWD, p, CGROUP_FILE_MAX, &buf, NULL);
        if (r < 0)
                return r;
        size_t kl = strlen(key);
        for (char *l = buf; l && *l;) {
                if (strncmp(l, key, kl) == 0 && l[kl] == ' ') {
                        *ret = strtoull(l + kl + 1, NULL, 10);
                        return 0;
                }
                l = strchr(l, '\n');
                if (l)
                        l++;
        }
        return -ENOENT;
}

struct stat_field {
        const char *key;
        size_t offset;
};
#define F(k, m) {k, offsetof(Nanoshim__Cgroups__V1MemoryStat, m)}
static const struct stat_field memory_fields[] = {
        F("cache", cache), F("rss", rss), F("rss_huge", rss_huge), F("mapped_file", mapped_file),
        F("dirty", dirty), F("writeback", writeback), F("pgpgin", pg_pg_in), F("pgpgout", pg_pg_out),
        F("pgfault", pg_fault), F("pgmajfault", pg_maj_fault), F("inactive_anon", inactive_anon),
        F("active_anon", active_anon), F("inactive_file", inactive_file), F("active_file", active_file),
        F("unevictable", unevictable), F("hierarchical_memory_limit", hierarchical_memory_limit),
        F("hierarchical_memsw_limit", hierarchical_swap_limit), F("total_cache", total_cache),
        F("total_rss", total_rss), F("total_rss_huge", total_rss_huge), F("total_mapped_file", total_mapped_file),
        F("total_dirty", total_dirty), F("total_writeback", total_writeback), F("total_pgpgin", total_pg_pg_in),
        F("total_pgpgout", total_pg_pg_out), F("total_pgfault", total_pg_fault),
        F("total_pgmajfault", total_pg_maj_fault), F("total_inactive_anon", total_inactive_anon),
        F("total_active_anon", total_active_anon), F("total_inactive_file", total_inactive_file),
        F("total_active_file", total_active_file), F("total_unevictable", total_unevictable),
};
#undef F

static void read_memory_stat(const char *dir, Nanoshim__Cgroups__V1MemoryStat *m) {
        char p[1024];
        snprintf(p, sizeof p, "%s/memory.stat", dir);
        _cleanup_free_ char *buf = NULL;
        if (read_file_at(AT_FDCWD, p, CGROUP_FILE_MAX, &buf, NULL) < 0)
                return;
        for (char *l = buf; l && *l;) {
                char *sp = strchr(l, ' ');
                char *nl = strchr(l, '\n');
                if (sp && (!nl || sp < nl)) {
                        for (size_t i = 0; i < ELEMENTSOF(memory_fields); i++)
                                if ((size_t)(sp - l) == strlen(memory_fields[i].key) &&
                                    strncmp(l, memory_fields[i].key, (size_t)(sp - l)) == 0)
                                        *(uint64_t *)((char *)m + memory_fields[i].offset) = strtoull(sp + 1, NULL, 10);
                }
                l = nl ? nl + 1 : NULL;
        }
}

static void read_entry(const char *dir, const char *prefix, Nanoshim__Cgroups__V1MemoryEntry *e) {
        char f[128];
        snprintf(f, sizeof f, "%s.limit_in_bytes", prefix);
        read_u64(dir, f, &e->limit);
        snprintf(f, sizeof f, "%s.usage_in_bytes", prefix);
        read_u64(dir, f, &e->usage);
        snprintf(f, sizeof f, "%s.max_usage_in_bytes", prefix);
        read_u64(dir, f, &e->max);
        snprintf(f, sizeof f, "%s.failcnt", prefix);
        read_u64(dir, f, &e->failcnt);
}

int cgroup_stats_collect(const char *proc_root, const char *sysfs_root, pid_t pid, uint8_t **ret_buf,
                         size_t *ret_len, const char **ret_type_url) {
        if (cgroup_detect(sysfs_root) != CGROUP_V1)
                return -EOPNOTSUPP; /* v2 metrics: see docs/protocol.md */
        Nanoshim__Cgroups__V1Metrics m = NANOSHIM__CGROUPS__V1_METRICS__INIT;
        Nanoshim__Cgroups__V1PidsStat pids = NANOSHIM__CGROUPS__V1_PIDS_STAT__INIT;
        Nanoshim__Cgroups__V1CPUStat cpu = NANOSHIM__CGROUPS__V1_CPUSTAT__INIT;
        Nanoshim__Cgroups__V1CPUUsage usage = NANOSHIM__CGROUPS__V1_CPUUSAGE__INIT;
        Nanoshim__Cgroups__V1Throttle thr = NANOSHIM__CGROUPS__V1_THROTTLE__INIT;
        Nanoshim__Cgroups__V1MemoryStat mem = NANOSHIM__CGROUPS__V1_MEMORY_STAT__INIT;
        Nanoshim__Cgroups__V1MemoryEntry mu = NANOSHIM__CGROUPS__V1_MEMORY_ENTRY__INIT,
                                           ms = NANOSHIM__CGROUPS__V1_MEMORY_ENTRY__INIT,
                                           mk = NANOSHIM__CGROUPS__V1_MEMORY_ENTRY__INIT,
                                           mt = NANOSHIM__CGROUPS__V1_MEMORY_ENTRY__INIT;
        Nanoshim__Cgroups__V1MemoryOomControl oom = NANOSHIM__CGROUPS__V1_MEMORY_OOM_CONTROL__INIT;
        _cleanup_free_ char *pdir = NULL, *cdir = NULL, *mdir = NULL, *percpu = NULL;
        _cleanup_free_ uint64_t *per_cpu = NULL;
        int found = 0;
        if (cgroup_dir(proc_root, sysfs_root, pid, "pids", &pdir) == 0) {
                read_u64(pdir, "pids.current", &pids.current);
                uint64_t lim = 0;
                if (read_u64(pdir, "pids.max", &lim) == 0)
                        pids.limit = lim == UINT64_MAX ? 0 : lim;
                m.pids = &pids;
                found++;
        }
        if (cgroup_dir(proc_root, sysfs_root, pid, "cpuacct", &cdir) == 0) {
                read_u64(cdir, "cpuacct.usage", &usage.total);
                read_u64(cdir, "cpuacct.usage_user", &usage.user);
                read_u64(cdir, "cpuacct.usage_sys", &usage.kernel);
                char p[1024];
                snprintf(p, sizeof p, "%s/cpuacct.usage_percpu", cdir);
                if (read_file_at(AT_FDCWD, p, 65536, &percpu, NULL) == 0) {
                        size_t n = 0;
                        per_cpu = calloc(1024, sizeof *per_cpu);
                        for (char *s = percpu, *e; per_cpu && n < 1024; s = e) {
                                unsigned long long v = strtoull(s, &e, 10);
                                if (e == s)
                                        break;
                                per_cpu[n++] = v;
                        }
                        usage.n_per_cpu = n;
                        usage.per_cpu = per_cpu;
                }
                cgroup_read_keyed(cdir, "cpu.stat", "nr_periods", &thr.periods);
                cgroup_read_keyed(cdir, "cpu.stat", "nr_throttled", &thr.throttled_periods);
                cgroup_read_keyed(cdir, "cpu.stat", "throttled_time", &thr.throttled_time);
                cpu.usage = &usage;
                cpu.throttling = &thr;
                m.cpu = &cpu;
                found++;
        }
        if (cgroup_dir(proc_root, sysfs_root, pid, "memory", &mdir) == 0) {
                read_memory_stat(mdir, &mem);
                read_entry(mdir, "memory", &mu);
                read_entry(mdir, "memory.memsw", &ms);
                read_entry(mdir, "memory.kmem", &mk);
                read_entry(mdir, "memory.kmem.tcp", &mt);
                mem.usage = &mu;
                mem.swap = &ms;
                mem.kernel = &mk;
                mem.kernel_tcp = &mt;
                m.memory = &mem;
                cgroup_read_keyed(mdir, "memory.oom_control", "oom_kill_disable", &oom.oom_kill_disable);
                cgroup_read_keyed(mdir, "memory.oom_control", "under_oom", &oom.under_oom);
                cgroup_read_keyed(mdir, "memory.oom_control", "oom_kill", &oom.oom_kill);
                m.memory_oom_control = &oom;
                found++;
        }
        if (!found)
                return -ESRCH;
        size_t len = nanoshim__cgroups__v1_metrics__get_packed_size(&m);
        uint8_t *buf = malloc(len ? len : 1);
        if (!buf)
                return -ENOMEM;
        nanoshim__cgroups__v1_metrics__pack(&m, buf);
        *ret_buf = buf;
        *ret_len = len;
        *ret_type_url = "io.containerd.cgroups.v1.Metrics";
        return 0;
}

/* ---- OOM ------------------------------------------------------------------------ */

struct cgroup_oom_watch {
        struct ev_loop *loop;
        char *dir;
        bool v2;
        int fd;          /* eventfd (v1) or inotify (v2) */
        ev_io w;
        uint64_t seen;   /* oom_kill count already reported */
        void (*on_oom)(void *);
        void *ud;
};

static int oom_count(struct cgroup_oom_watch *w, uint64_t *ret) {
        return cgroup_read_keyed(w->dir, w->v2 ? "memory.events" : "memory.oom_control", "oom_kill", ret);
}

int cgroup_oom_poll(struct cgroup_oom_watch *w) {
        if (!w)
                return 0;
        uint64_t n;
        if (oom_count(w, &n) < 0)
                return 0;
        int fired = 0;
        if (n > w->seen) {
                w->seen = n;
                if (w->on_oom)
                        w->on_oom(w->ud);
                fired = 1;
        }
        return fired;
}

static void on_oom_event(struct ev_loop *loop, ev_io *io, int revents) {
        struct cgroup_oom_watch *w = io->data;
        char buf[4096];
        ssize_t n = read(w->fd, buf, sizeof buf);
        if (n < 0 && errno == EAGAIN)
                return;
        uint64_t cnt;
        if (oom_count(w, &cnt) < 0) {
                /* The cgroup is gone (the eventfd also signals removal): stop watching. */
                ev_io_stop(loop, io);
                return;
        }
        cgroup_oom_poll(w);
}

int cgroup_oom_watch_new(struct ev_loop *loop, pid_t pid, void (*on_oom)(void *ud), void *ud,
                         struct cgroup_oom_watch **ret) {
        struct cgroup_oom_watch *w = calloc(1, sizeof *w);
        if (!w)
                return -ENOMEM;
        w->loop = loop;
        w->fd = -1;
        w->on_oom = on_oom;
        w->ud = ud;
        int kind = cgroup_detect(NULL);
        int r = kind == CGROUP_V1 ? cgroup_dir(NULL, NULL, pid, "memory", &w->dir)
                                  : kind == CGROUP_V2 ? cgroup_dir(NULL, NULL, pid, "", &w->dir) : -ENOENT;
        if (r < 0)
                goto fail;
        w->v2 = kind == CGROUP_V2;
        oom_count(w, &w->seen);
        if (w->v2) {
                w->fd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
                char p[1024];
                snprintf(p, sizeof p, "%s/memory.events", w->dir);
                if (w->fd < 0 || inotify_add_watch(w->fd, p, IN_MODIFY) < 0) {
                        r = -errno;
                        goto fail;
                }
        } else {
                char p[1024];
                snprintf(p, sizeof p, "%s/memory.oom_control", w->dir);
                _cleanup_close_ int ofd = open(p, O_RDONLY | O_CLOEXEC);
                snprintf(p, sizeof p, "%s/cgroup.event_control", w->dir);
                _cleanup_close_ int cfd = open(p, O_WRONLY | O_CLOEXEC);
                w->fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
                char line[64];
                int l = snprintf(line, sizeof line, "%d %d", w->fd, ofd);
                if (ofd < 0 || cfd < 0 || w->fd < 0 || write(cfd, line, (size_t)l) != l) {
                        r = -errno;
                        goto fail;
                }
        }
        ev_io_init(&w->w, on_oom_event, w->fd, EV_READ);
        w->w.data = w;
        ev_io_start(loop, &w->w);
        *ret = w;
        return 0;
fail:
        cgroup_oom_watch_free(w);
        return r < 0 ? r : -EINVAL;
}

struct cgroup_oom_watch *cgroup_oom_watch_free(struct cgroup_oom_watch *w) {
        if (!w)
                return NULL;
        if (w->fd >= 0) {
                ev_io_stop(w->loop, &w->w);
                close(w->fd);
        }
        free(w->dir);
        free(w);
        return NULL;
}

int cgroup_oom_check_final(struct cgroup_oom_watch *w, bool *ret_oom) {
        uint64_t n;
        *ret_oom = false;
        if (!w || oom_count(w, &n) < 0)
                return 0;
        if (n > w->seen) {
                w->seen = n;
                *ret_oom = true;
        }
        return 0;
}
