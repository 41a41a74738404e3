/* SPDX-License-Identifier: Apache-2.0 */
#include "cgroup.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <dirent.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/inotify.h>
#include <unistd.h>

#include "file-util.h"
#include "ids.h"
#include "log.h"
#include "macro.h"
#include "metrics.pb-c.h"

/* memory.stat of a deep hierarchy is a few KiB; cpuacct.usage_percpu grows with CPUs. */
#define CGROUP_FILE_MAX (256u * 1024)
#define NSEC_PER_SEC 1000000000ull

static const char *sysfs_or_default(const char *sysfs_root) {
        return sysfs_root ? sysfs_root : "/sys/fs/cgroup";
}

static const char *proc_or_default(const char *proc_root) {
        return proc_root ? proc_root : "/proc";
}

int cgroup_detect(const char *sysfs_root) {
        const char *root = sysfs_or_default(sysfs_root);
        _cleanup_free_ char *unified = NULL, *memory = NULL;
        if (asprintf(&unified, "%s/cgroup.controllers", root) < 0) {
                unified = NULL; /* undefined after a failure */
                return -ENOMEM;
        }
        if (asprintf(&memory, "%s/memory", root) < 0) {
                memory = NULL;
                return -ENOMEM;
        }
        /* Unified: cgroupfs v2 is mounted at the root itself. Hybrid hosts have their v2
         * tree below (<root>/unified) and the memory controller, the one OOM detection
         * needs, as v1: that is V1. */
        if (access(unified, F_OK) == 0)
                return CGROUP_V2;
        if (access(memory, F_OK) == 0)
                return CGROUP_V1;
        return -ENOENT;
}

/* ---- /proc/<pid>/cgroup ---------------------------------------------------------- */

void cgroup_paths_done(struct cgroup_paths *p) {
        if (!p)
                return;
        free(p->memory);
        free(p->cpu);
        free(p->cpuacct);
        free(p->pids);
        free(p->unified);
        *p = (struct cgroup_paths){0};
}

static int set_path(char **slot, const char *path, size_t len) {
        char *s = strndup(path, len);
        if (!s)
                return -ENOMEM;
        free(*slot);
        *slot = s;
        return 0;
}

/* One line: "<id>:<controller>[,<controller>...]:<path>"; v2: "0::<path>". */
static int parse_line(const char *line, size_t len, struct cgroup_paths *p) {
        const char *end = line + len;
        const char *c1 = memchr(line, ':', len);
        if (!c1 || c1 == line)
                return -EINVAL;
        const char *c2 = memchr(c1 + 1, ':', (size_t)(end - c1 - 1));
        if (!c2)
                return -EINVAL;
        const char *path = c2 + 1; /* the rest of the line: a path may itself hold ':' */
        size_t path_len = (size_t)(end - path);
        if (path_len == 0 || path[0] != '/')
                return -EINVAL;
        if (c2 == c1 + 1) {
                if (c1 - line != 1 || line[0] != '0')
                        return -EINVAL;
                return set_path(&p->unified, path, path_len);
        }
        for (const char *w = c1 + 1; w < c2;) {
                const char *comma = memchr(w, ',', (size_t)(c2 - w));
                const char *we = comma ? comma : c2;
                size_t wl = (size_t)(we - w);
                char **slot = NULL;
                if (wl == 6 && memcmp(w, "memory", 6) == 0)
                        slot = &p->memory;
                else if (wl == 3 && memcmp(w, "cpu", 3) == 0)
                        slot = &p->cpu;
                else if (wl == 7 && memcmp(w, "cpuacct", 7) == 0)
                        slot = &p->cpuacct;
                else if (wl == 4 && memcmp(w, "pids", 4) == 0)
                        slot = &p->pids;
                if (slot) {
                        int r = set_path(slot, path, path_len);
                        if (r < 0)
                                return r;
                }
                w = we + 1;
        }
        return 0;
}

int cgroup_paths_parse(const char *text, struct cgroup_paths *ret) {
        _cleanup_(cgroup_paths_done) struct cgroup_paths p = {0};
        for (const char *l = text; *l;) {
                const char *nl = strchr(l, '\n');
                size_t len = nl ? (size_t)(nl - l) : strlen(l);
                if (len > 0) {
                        int r = parse_line(l, len, &p);
                        if (r < 0)
                                return r;
                }
                if (!nl)
                        break;
                l = nl + 1;
        }
        *ret = p;
        p = (struct cgroup_paths){0};
        return 0;
}

int cgroup_paths_for_pid(const char *proc_root, pid_t pid, struct cgroup_paths *ret) {
        if (pid <= 0)
                return -EINVAL;
        _cleanup_free_ char *path = NULL, *text = NULL;
        if (asprintf(&path, "%s/%d/cgroup", proc_or_default(proc_root), (int)pid) < 0) {
                path = NULL;
                return -ENOMEM;
        }
        int r = read_file_at(AT_FDCWD, path, CGROUP_FILE_MAX, &text, NULL);
        if (r == -ENOENT)
                return -ESRCH;
        if (r < 0)
                return r;
        return cgroup_paths_parse(text, ret);
}

/* Open <root>[/<controller>]<path> as a directory. A path from /proc is trusted
 * only as far as it stays below the mount: no ".." components. */
static int open_cgroup_dir(const char *sysfs_root, const char *controller, const char *path, char **ret_path,
                           int *ret_fd) {
        if (!path)
                return -ENOENT;
        for (const char *s = path; (s = strstr(s, "..")); s += 2)
                if ((s == path || s[-1] == '/') && (s[2] == '/' || s[2] == 0))
                        return -EINVAL;
        _cleanup_free_ char *full = NULL;
        if (asprintf(&full, "%s%s%s%s", sysfs_or_default(sysfs_root), controller ? "/" : "",
                     controller ? controller : "", path) < 0) {
                full = NULL;
                return -ENOMEM;
        }
        int fd = open(full, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (fd < 0)
                return -errno;
        if (ret_path)
                *ret_path = TAKE_PTR(full);
        *ret_fd = fd;
        return 0;
}

/* ---- cgroupfs file parsing ------------------------------------------------------ */

/* A single value ("123\n"); "max" is max_value (v1 and v2 differ on what "max" means). */
static int parse_u64(const char *s, uint64_t max_value, uint64_t *ret) {
        while (*s == ' ' || *s == '\t')
                s++;
        const char *end;
        uint64_t v;
        if (strncmp(s, "max", 3) == 0) {
                v = max_value;
                end = s + 3;
        } else {
                if (*s < '0' || *s > '9')
                        return -EINVAL;
                char *e;
                errno = 0;
                unsigned long long ull = strtoull(s, &e, 10);
                if (errno != 0)
                        return -errno;
                v = ull;
                end = e;
        }
        while (*end == ' ' || *end == '\t' || *end == '\n')
                end++;
        if (*end != 0)
                return -EINVAL;
        *ret = v;
        return 0;
}

static int read_u64_at(int dirfd, const char *name, uint64_t max_value, uint64_t *ret) {
        _cleanup_free_ char *buf = NULL;
        int r = read_file_at(dirfd, name, 4096, &buf, NULL);
        if (r < 0)
                return r;
        return parse_u64(buf, max_value, ret);
}

/* For "key value" files: which key lands at which uint64_t field of a message. */
struct keyed_field {
        const char *key;
        size_t offset;
};

/* Fill msg from the "key value" lines of text; unknown keys and bad values are skipped
 * (kernels add keys; a partial answer beats none). */
static void parse_keyed(const char *text, const struct keyed_field *fields, size_t n_fields, void *msg) {
        for (const char *l = text; *l;) {
                const char *nl = strchr(l, '\n');
                size_t len = nl ? (size_t)(nl - l) : strlen(l);
                const char *sp = memchr(l, ' ', len);
                if (sp) {
                        size_t kl = (size_t)(sp - l);
                        for (size_t i = 0; i < n_fields; i++) {
                                if (strlen(fields[i].key) != kl || memcmp(l, fields[i].key, kl) != 0)
                                        continue;
                                char num[32];
                                size_t vl = len - kl - 1;
                                uint64_t v;
                                if (vl < sizeof num) {
                                        memcpy(num, sp + 1, vl);
                                        num[vl] = 0;
                                        if (parse_u64(num, UINT64_MAX, &v) == 0)
                                                *(uint64_t *)((char *)msg + fields[i].offset) = v;
                                }
                                break;
                        }
                }
                if (!nl)
                        break;
                l = nl + 1;
        }
}

/* Read a keyed file into msg; false when it cannot be read (missing: skipped). */
static bool read_keyed_at(int dirfd, const char *name, const struct keyed_field *fields, size_t n_fields,
                          void *msg) {
        _cleanup_free_ char *buf = NULL;
        if (read_file_at(dirfd, name, CGROUP_FILE_MAX, &buf, NULL) < 0)
                return false;
        parse_keyed(buf, fields, n_fields, msg);
        return true;
}

/* One key of a keyed file: -ENOKEY when the file has no such line. */
static int read_key_at(int dirfd, const char *name, const char *key, uint64_t *ret) {
        _cleanup_free_ char *buf = NULL;
        int r = read_file_at(dirfd, name, CGROUP_FILE_MAX, &buf, NULL);
        if (r < 0)
                return r;
        size_t kl = strlen(key);
        for (char *l = buf; *l;) {
                char *nl = strchr(l, '\n');
                if (nl)
                        *nl = 0;
                if (strncmp(l, key, kl) == 0 && l[kl] == ' ')
                        return parse_u64(l + kl + 1, UINT64_MAX, ret);
                if (!nl)
                        break;
                l = nl + 1;
        }
        return -ENOKEY;
}

/* ---- cgroup v1 metrics ---------------------------------------------------------- */

#define V1M(k, m) {k, offsetof(Nanoshim__Cgroups__V1MemoryStat, m)}
static const struct keyed_field v1_memory_stat_fields[] = {
        V1M("cache", cache),
        V1M("rss", rss),
        V1M("rss_huge", rss_huge),
        V1M("mapped_file", mapped_file),
        V1M("dirty", dirty),
        V1M("writeback", writeback),
        V1M("pgpgin", pg_pg_in),
        V1M("pgpgout", pg_pg_out),
        V1M("pgfault", pg_fault),
        V1M("pgmajfault", pg_maj_fault),
        V1M("inactive_anon", inactive_anon),
        V1M("active_anon", active_anon),
        V1M("inactive_file", inactive_file),
        V1M("active_file", active_file),
        V1M("unevictable", unevictable),
        V1M("hierarchical_memory_limit", hierarchical_memory_limit),
        V1M("hierarchical_memsw_limit", hierarchical_swap_limit),
        V1M("total_cache", total_cache),
        V1M("total_rss", total_rss),
        V1M("total_rss_huge", total_rss_huge),
        V1M("total_mapped_file", total_mapped_file),
        V1M("total_dirty", total_dirty),
        V1M("total_writeback", total_writeback),
        V1M("total_pgpgin", total_pg_pg_in),
        V1M("total_pgpgout", total_pg_pg_out),
        V1M("total_pgfault", total_pg_fault),
        V1M("total_pgmajfault", total_pg_maj_fault),
        V1M("total_inactive_anon", total_inactive_anon),
        V1M("total_active_anon", total_active_anon),
        V1M("total_inactive_file", total_inactive_file),
        V1M("total_active_file", total_active_file),
        V1M("total_unevictable", total_unevictable),
};
#undef V1M

#define V1O(k, m) {k, offsetof(Nanoshim__Cgroups__V1MemoryOomControl, m)}
static const struct keyed_field v1_oom_control_fields[] = {
        V1O("oom_kill_disable", oom_kill_disable),
        V1O("under_oom", under_oom),
        V1O("oom_kill", oom_kill),
};
#undef V1O

#define V1T(k, m) {k, offsetof(Nanoshim__Cgroups__V1Throttle, m)}
static const struct keyed_field v1_throttle_fields[] = {
        V1T("nr_periods", periods),
        V1T("nr_throttled", throttled_periods),
        V1T("throttled_time", throttled_time),
};
#undef V1T

/* Everything one V1Metrics points to, so that it can live on the stack. */
struct v1_metrics {
        Nanoshim__Cgroups__V1Metrics m;
        Nanoshim__Cgroups__V1PidsStat pids;
        Nanoshim__Cgroups__V1CPUStat cpu;
        Nanoshim__Cgroups__V1CPUUsage usage;
        Nanoshim__Cgroups__V1Throttle throttle;
        Nanoshim__Cgroups__V1MemoryStat memory;
        Nanoshim__Cgroups__V1MemoryEntry mem_usage, mem_swap, mem_kernel, mem_kernel_tcp;
        Nanoshim__Cgroups__V1MemoryOomControl oom;
        uint64_t *per_cpu;
};

static void v1_pids(const char *sysfs_root, const struct cgroup_paths *p, struct v1_metrics *v) {
        _cleanup_close_ int fd = -1;
        if (open_cgroup_dir(sysfs_root, "pids", p->pids, NULL, &fd) < 0)
                return;
        /* v1 reports an unlimited pids.max as 0, as containerd/cgroups does. */
        (void)read_u64_at(fd, "pids.current", 0, &v->pids.current);
        (void)read_u64_at(fd, "pids.max", 0, &v->pids.limit);
        v->m.pids = &v->pids;
}

static int parse_per_cpu(const char *text, uint64_t **ret, size_t *ret_n) {
        size_t n = 0, cap = 0;
        _cleanup_free_ uint64_t *a = NULL;
        for (const char *s = text;;) {
                while (*s == ' ' || *s == '\n' || *s == '\t')
                        s++;
                if (*s < '0' || *s > '9')
                        break;
                char *e;
                errno = 0;
                unsigned long long v = strtoull(s, &e, 10);
                if (errno != 0)
                        return -errno;
                if (n == cap) {
                        size_t ncap = cap ? cap * 2 : 16;
                        uint64_t *na = reallocarray(a, ncap, sizeof *na);
                        if (!na)
                                return -ENOMEM;
                        a = na;
                        cap = ncap;
                }
                a[n++] = v;
                s = e;
        }
        *ret = TAKE_PTR(a);
        *ret_n = n;
        return 0;
}

static void v1_cpu(const char *sysfs_root, const struct cgroup_paths *p, struct v1_metrics *v) {
        _cleanup_close_ int acct = -1, cpu = -1;
        bool any = false;
        if (open_cgroup_dir(sysfs_root, "cpuacct", p->cpuacct, NULL, &acct) == 0) {
                any = true;
                (void)read_u64_at(acct, "cpuacct.usage", UINT64_MAX, &v->usage.total);
                /* user/system in USER_HZ ticks, converted as containerd/cgroups does. */
                struct {
                        uint64_t user, system;
                } ticks = {0, 0};
                static const struct keyed_field tick_fields[] = {{"user", 0}, {"system", sizeof(uint64_t)}};
                long hz = sysconf(_SC_CLK_TCK);
                if (read_keyed_at(acct, "cpuacct.stat", tick_fields, ELEMENTSOF(tick_fields), &ticks) && hz > 0) {
                        v->usage.user = ticks.user * (NSEC_PER_SEC / (uint64_t)hz);
                        v->usage.kernel = ticks.system * (NSEC_PER_SEC / (uint64_t)hz);
                }
                _cleanup_free_ char *text = NULL;
                if (read_file_at(acct, "cpuacct.usage_percpu", CGROUP_FILE_MAX, &text, NULL) == 0 &&
                    parse_per_cpu(text, &v->per_cpu, &v->usage.n_per_cpu) == 0)
                        v->usage.per_cpu = v->per_cpu;
                v->cpu.usage = &v->usage;
        }
        if (open_cgroup_dir(sysfs_root, "cpu", p->cpu, NULL, &cpu) == 0 &&
            read_keyed_at(cpu, "cpu.stat", v1_throttle_fields, ELEMENTSOF(v1_throttle_fields), &v->throttle)) {
                any = true;
                v->cpu.throttling = &v->throttle;
        }
        if (any)
                v->m.cpu = &v->cpu;
}

static void v1_memory_entry(int dirfd, const char *prefix, Nanoshim__Cgroups__V1MemoryEntry *e,
                            Nanoshim__Cgroups__V1MemoryEntry **slot) {
        static const struct {
                const char *suffix;
                size_t offset;
        } files[] = {
                {"limit_in_bytes", offsetof(Nanoshim__Cgroups__V1MemoryEntry, limit)},
                {"usage_in_bytes", offsetof(Nanoshim__Cgroups__V1MemoryEntry, usage)},
                {"max_usage_in_bytes", offsetof(Nanoshim__Cgroups__V1MemoryEntry, max)},
                {"failcnt", offsetof(Nanoshim__Cgroups__V1MemoryEntry, failcnt)},
        };
        bool any = false;
        for (size_t i = 0; i < ELEMENTSOF(files); i++) {
                char name[96];
                snprintf(name, sizeof name, "%s.%s", prefix, files[i].suffix);
                if (read_u64_at(dirfd, name, UINT64_MAX, (uint64_t *)((char *)e + files[i].offset)) == 0)
                        any = true;
        }
        if (any)
                *slot = e;
}

static void v1_memory(const char *sysfs_root, const struct cgroup_paths *p, struct v1_metrics *v) {
        _cleanup_close_ int fd = -1;
        if (open_cgroup_dir(sysfs_root, "memory", p->memory, NULL, &fd) < 0)
                return;
        (void)read_keyed_at(fd, "memory.stat", v1_memory_stat_fields, ELEMENTSOF(v1_memory_stat_fields),
                            &v->memory);
        v1_memory_entry(fd, "memory", &v->mem_usage, &v->memory.usage);
        v1_memory_entry(fd, "memory.memsw", &v->mem_swap, &v->memory.swap);
        v1_memory_entry(fd, "memory.kmem", &v->mem_kernel, &v->memory.kernel);
        v1_memory_entry(fd, "memory.kmem.tcp", &v->mem_kernel_tcp, &v->memory.kernel_tcp);
        v->m.memory = &v->memory;
        if (read_keyed_at(fd, "memory.oom_control", v1_oom_control_fields, ELEMENTSOF(v1_oom_control_fields),
                          &v->oom))
                v->m.memory_oom_control = &v->oom;
}

static int collect_v1(const char *sysfs_root, const struct cgroup_paths *p, uint8_t **ret_buf, size_t *ret_len) {
        struct v1_metrics v = {
                .m = NANOSHIM__CGROUPS__V1_METRICS__INIT,
                .pids = NANOSHIM__CGROUPS__V1_PIDS_STAT__INIT,
                .cpu = NANOSHIM__CGROUPS__V1_CPUSTAT__INIT,
                .usage = NANOSHIM__CGROUPS__V1_CPUUSAGE__INIT,
                .throttle = NANOSHIM__CGROUPS__V1_THROTTLE__INIT,
                .memory = NANOSHIM__CGROUPS__V1_MEMORY_STAT__INIT,
                .mem_usage = NANOSHIM__CGROUPS__V1_MEMORY_ENTRY__INIT,
                .mem_swap = NANOSHIM__CGROUPS__V1_MEMORY_ENTRY__INIT,
                .mem_kernel = NANOSHIM__CGROUPS__V1_MEMORY_ENTRY__INIT,
                .mem_kernel_tcp = NANOSHIM__CGROUPS__V1_MEMORY_ENTRY__INIT,
                .oom = NANOSHIM__CGROUPS__V1_MEMORY_OOM_CONTROL__INIT,
        };
        v1_pids(sysfs_root, p, &v);
        v1_cpu(sysfs_root, p, &v);
        v1_memory(sysfs_root, p, &v);
        size_t len = nanoshim__cgroups__v1_metrics__get_packed_size(&v.m);
        uint8_t *buf = malloc(len ? len : 1);
        if (!buf) {
                free(v.per_cpu);
                return -ENOMEM;
        }
        nanoshim__cgroups__v1_metrics__pack(&v.m, buf);
        free(v.per_cpu);
        *ret_buf = buf;
        *ret_len = len;
        return 0;
}

/* ---- cgroup v2 metrics ---------------------------------------------------------- */

#define V2M(k) {#k, offsetof(Nanoshim__Cgroups__V2MemoryStat, k)}
static const struct keyed_field v2_memory_stat_fields[] = {
        V2M(anon),
        V2M(file),
        V2M(kernel_stack),
        V2M(slab),
        V2M(sock),
        V2M(shmem),
        V2M(file_mapped),
        V2M(file_dirty),
        V2M(file_writeback),
        V2M(anon_thp),
        V2M(inactive_anon),
        V2M(active_anon),
        V2M(inactive_file),
        V2M(active_file),
        V2M(unevictable),
        V2M(slab_reclaimable),
        V2M(slab_unreclaimable),
        V2M(pgfault),
        V2M(pgmajfault),
        V2M(workingset_refault),
        V2M(workingset_activate),
        V2M(workingset_nodereclaim),
        V2M(pgrefill),
        V2M(pgscan),
        V2M(pgsteal),
        V2M(pgactivate),
        V2M(pgdeactivate),
        V2M(pglazyfree),
        V2M(pglazyfreed),
        V2M(thp_fault_alloc),
        V2M(thp_collapse_alloc),
};
#undef V2M

#define V2C(k) {#k, offsetof(Nanoshim__Cgroups__V2CPUStat, k)}
static const struct keyed_field v2_cpu_stat_fields[] = {
        V2C(usage_usec), V2C(user_usec), V2C(system_usec), V2C(nr_periods), V2C(nr_throttled), V2C(throttled_usec),
};
#undef V2C

#define V2E(k) {#k, offsetof(Nanoshim__Cgroups__V2MemoryEvents, k)}
static const struct keyed_field v2_memory_events_fields[] = {
        V2E(low), V2E(high), V2E(max), V2E(oom), V2E(oom_kill),
};
#undef V2E

/* io.stat: one line per device, "MAJ:MIN rbytes=N wbytes=N rios=N wios=N dbytes=N ...";
 * the four counters containerd reports are kept, other keys and bad lines skipped. */
struct v2_io {
        Nanoshim__Cgroups__V2IOStat stat;
        Nanoshim__Cgroups__V2IOEntry *entries;
        Nanoshim__Cgroups__V2IOEntry **ptrs;
};

static void v2_io_done(struct v2_io *io) {
        free(io->entries);
        free(io->ptrs);
}

static bool v2_io_read(int dirfd, struct v2_io *io) {
        *io = (struct v2_io){.stat = NANOSHIM__CGROUPS__V2_IOSTAT__INIT};
        _cleanup_free_ char *buf = NULL;
        if (read_file_at(dirfd, "io.stat", CGROUP_FILE_MAX, &buf, NULL) < 0)
                return false;
        size_t lines = 0;
        for (const char *c = buf; *c; c++)
                lines += *c == '\n';
        io->entries = calloc(lines + 1, sizeof *io->entries);
        io->ptrs = calloc(lines + 1, sizeof *io->ptrs);
        if (!io->entries || !io->ptrs) {
                v2_io_done(io);
                return false;
        }
        char *save = NULL;
        for (char *l = strtok_r(buf, "\n", &save); l; l = strtok_r(NULL, "\n", &save)) {
                Nanoshim__Cgroups__V2IOEntry *e = &io->entries[io->stat.n_usage];
                nanoshim__cgroups__v2_ioentry__init(e);
                uint64_t maj, min;
                const char *p = l;
                if (scan_u64(&p, 10, UINT64_MAX, &maj) < 0 || *p++ != ':' || scan_u64(&p, 10, UINT64_MAX, &min) < 0 ||
                    (*p != ' ' && *p != 0))
                        continue;
                size_t n = (size_t)(p - l);
                e->major = maj;
                e->minor = min;
                char *save2 = NULL;
                for (char *kv = strtok_r(l + n, " ", &save2); kv; kv = strtok_r(NULL, " ", &save2)) {
                        char *eq = strchr(kv, '=');
                        uint64_t v;
                        if (!eq || parse_u64(eq + 1, UINT64_MAX, &v) < 0)
                                continue;
                        *eq = 0;
                        if (strcmp(kv, "rbytes") == 0)
                                e->rbytes = v;
                        else if (strcmp(kv, "wbytes") == 0)
                                e->wbytes = v;
                        else if (strcmp(kv, "rios") == 0)
                                e->rios = v;
                        else if (strcmp(kv, "wios") == 0)
                                e->wios = v;
                }
                io->ptrs[io->stat.n_usage++] = e;
        }
        io->stat.usage = io->ptrs;
        return true;
}

static int collect_v2(const char *sysfs_root, const struct cgroup_paths *p, uint8_t **ret_buf, size_t *ret_len) {
        Nanoshim__Cgroups__V2Metrics m = NANOSHIM__CGROUPS__V2_METRICS__INIT;
        Nanoshim__Cgroups__V2PidsStat pids = NANOSHIM__CGROUPS__V2_PIDS_STAT__INIT;
        Nanoshim__Cgroups__V2CPUStat cpu = NANOSHIM__CGROUPS__V2_CPUSTAT__INIT;
        Nanoshim__Cgroups__V2MemoryStat memory = NANOSHIM__CGROUPS__V2_MEMORY_STAT__INIT;
        Nanoshim__Cgroups__V2MemoryEvents events = NANOSHIM__CGROUPS__V2_MEMORY_EVENTS__INIT;
        _cleanup_close_ int fd = -1;
        int r = open_cgroup_dir(sysfs_root, NULL, p->unified, NULL, &fd);
        if (r < 0)
                return r == -ENOENT ? -ESRCH : r;
        /* v2 reports "max" as the largest uint64, as containerd/cgroups does. */
        bool have_current = read_u64_at(fd, "pids.current", UINT64_MAX, &pids.current) == 0;
        if (read_u64_at(fd, "pids.max", UINT64_MAX, &pids.limit) == 0 || have_current)
                m.pids = &pids;
        if (read_keyed_at(fd, "cpu.stat", v2_cpu_stat_fields, ELEMENTSOF(v2_cpu_stat_fields), &cpu))
                m.cpu = &cpu;
        bool any = read_keyed_at(fd, "memory.stat", v2_memory_stat_fields, ELEMENTSOF(v2_memory_stat_fields),
                                 &memory);
        any |= read_u64_at(fd, "memory.current", UINT64_MAX, &memory.usage) == 0;
        any |= read_u64_at(fd, "memory.max", UINT64_MAX, &memory.usage_limit) == 0;
        any |= read_u64_at(fd, "memory.swap.current", UINT64_MAX, &memory.swap_usage) == 0;
        any |= read_u64_at(fd, "memory.swap.max", UINT64_MAX, &memory.swap_limit) == 0;
        if (any)
                m.memory = &memory;
        if (read_keyed_at(fd, "memory.events", v2_memory_events_fields, ELEMENTSOF(v2_memory_events_fields),
                          &events))
                m.memory_events = &events;
        /* containerd reports io whenever io.stat can be read, empty or not */
        struct v2_io io;
        if (v2_io_read(fd, &io))
                m.io = &io.stat;
        size_t len = nanoshim__cgroups__v2_metrics__get_packed_size(&m);
        uint8_t *buf = malloc(len ? len : 1);
        if (!buf) {
                v2_io_done(&io);
                return -ENOMEM;
        }
        nanoshim__cgroups__v2_metrics__pack(&m, buf);
        v2_io_done(&io);
        *ret_buf = buf;
        *ret_len = len;
        return 0;
}

int cgroup_stats_collect(const char *sysfs_root, const char *proc_root, pid_t pid, uint8_t **ret_buf,
                         size_t *ret_len, const char **ret_type_url) {
        int version = cgroup_detect(sysfs_root);
        if (version < 0)
                return version;
        _cleanup_(cgroup_paths_done) struct cgroup_paths p = {0};
        int r = cgroup_paths_for_pid(proc_root, pid, &p);
        if (r < 0)
                return r;
        uint8_t *buf = NULL;
        size_t len = 0;
        if (version == CGROUP_V1)
                r = collect_v1(sysfs_root, &p, &buf, &len);
        else
                r = collect_v2(sysfs_root, &p, &buf, &len);
        if (r < 0)
                return r;
        *ret_buf = buf;
        *ret_len = len;
        *ret_type_url = version == CGROUP_V1 ? CGROUP_V1_METRICS_TYPE_URL : CGROUP_V2_METRICS_TYPE_URL;
        return 0;
}

/* ---- OOM watcher ---------------------------------------------------------------- */

struct cgroup_oom_watch {
        struct ev_loop *loop;
        enum cgroup_version version;
        char *dir;           /* the memory cgroup (opened when needed: no fd at rest) */
        int fd;              /* v1: eventfd; v2: inotify */
        ev_io io;
        ev_timer recheck;    /* v1: the counter rises only after the eventfd signals */
        unsigned rechecks_left;
        bool has_counter;    /* the kernel exposes oom_kill */
        uint64_t reported;   /* oom_kill value already reported */
        cgroup_oom_fn on_oom;
        void *userdata;
};

static const char *oom_counter_file(const struct cgroup_oom_watch *w) {
        return w->version == CGROUP_V1 ? "memory.oom_control" : "memory.events";
}

static int oom_dir_open(const struct cgroup_oom_watch *w) {
        int fd = open(w->dir, O_DIRECTORY | O_RDONLY | O_CLOEXEC);
        return fd < 0 ? -errno : fd;
}

static int oom_counter_read(const struct cgroup_oom_watch *w, uint64_t *ret) {
        _cleanup_close_ int dfd = oom_dir_open(w);
        if (dfd < 0)
                return dfd;
        return read_key_at(dfd, oom_counter_file(w), "oom_kill", ret);
}

/* 0 while the memory cgroup still exists. */
static int oom_cgroup_exists(const struct cgroup_oom_watch *w) {
        _cleanup_close_ int dfd = oom_dir_open(w);
        if (dfd < 0)
                return dfd;
        return faccessat(dfd, "memory.oom_control", F_OK, 0) < 0 ? -errno : 0;
}

/* true if the counter rose since the last report; it is then counted as reported. */
static bool oom_counter_advanced(struct cgroup_oom_watch *w, int *ret_error) {
        uint64_t n;
        int r = oom_counter_read(w, &n);
        if (ret_error)
                *ret_error = r < 0 ? r : 0;
        if (r < 0 || n <= w->reported)
                return false;
        w->reported = n;
        return true;
}

static void oom_stop(struct cgroup_oom_watch *w) {
        ev_io_stop(w->loop, &w->io);
        ev_timer_stop(w->loop, &w->recheck);
}

/* The v1 eventfd signals when the cgroup goes under OOM, before the kernel picks and
 * kills a victim (and counts it in oom_kill); with oom_kill_disable set no kill comes at
 * all. So after a signal without a new kill, look at the counter again for a while. */
#define OOM_RECHECK_INTERVAL_S 0.02
#define OOM_RECHECKS 100 /* 2 s */

static void on_oom_recheck(struct ev_loop *loop, ev_timer *t, int revents) {
        struct cgroup_oom_watch *w = t->data;
        int r;
        bool fire = oom_counter_advanced(w, &r);
        if (fire || r < 0 || --w->rechecks_left == 0)
                ev_timer_stop(loop, t);
        if (fire)
                w->on_oom(w->userdata);
}

static void on_oom_eventfd(struct ev_loop *loop, ev_io *io, int revents) {
        struct cgroup_oom_watch *w = io->data;
        uint64_t events;
        ssize_t n = read(w->fd, &events, sizeof events);
        if (n < 0 && (errno == EAGAIN || errno == EINTR))
                return;
        if (n != (ssize_t)sizeof events) {
                log_debug_errno(n < 0 ? -errno : -EIO, "OOM eventfd read failed, stopping: %m");
                oom_stop(w);
                return;
        }
        bool fire;
        int r;
        if (w->has_counter) {
                fire = oom_counter_advanced(w, &r);
                if (!fire && r == 0) {
                        w->rechecks_left = OOM_RECHECKS;
                        ev_timer_again(loop, &w->recheck);
                }
        } else {
                /* Old kernel: an event while the cgroup exists is an OOM; removal also signals. */
                r = oom_cgroup_exists(w);
                fire = r == 0;
        }
        if (r < 0 && r != -ENOKEY) {
                log_debug_errno(r, "Memory cgroup gone, stopping the OOM watcher: %m");
                oom_stop(w);
        }
        if (fire)
                w->on_oom(w->userdata);
}

static void on_oom_inotify(struct ev_loop *loop, ev_io *io, int revents) {
        struct cgroup_oom_watch *w = io->data;
        char buf[4096] __attribute__((aligned(__alignof__(struct inotify_event))));
        bool ignored = false;
        for (;;) {
                ssize_t n = read(w->fd, buf, sizeof buf);
                if (n < 0 && errno == EINTR)
                        continue;
                if (n <= 0)
                        break;
                for (char *p = buf; p < buf + n;) {
                        const struct inotify_event *ev = (const struct inotify_event *)p;
                        if (ev->mask & IN_IGNORED)
                                ignored = true; /* memory.events (its cgroup) was removed */
                        p += sizeof *ev + ev->len;
                }
        }
        bool fire = oom_counter_advanced(w, NULL);
        if (ignored)
                oom_stop(w);
        if (fire)
                w->on_oom(w->userdata);
}

/* The registration lives as long as the eventfd (or the cgroup): the control files are
 * closed again at once. */
static int oom_register_v1(struct cgroup_oom_watch *w) {
        _cleanup_close_ int dfd = oom_dir_open(w);
        if (dfd < 0)
                return dfd;
        _cleanup_close_ int ofd = openat(dfd, "memory.oom_control", O_RDONLY | O_CLOEXEC);
        if (ofd < 0)
                return -errno;
        _cleanup_close_ int cfd = openat(dfd, "cgroup.event_control", O_WRONLY | O_CLOEXEC);
        if (cfd < 0)
                return -errno;
        _cleanup_close_ int efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
        if (efd < 0)
                return -errno;
        char line[64];
        int l = snprintf(line, sizeof line, "%d %d", efd, ofd);
        ssize_t n = write(cfd, line, (size_t)l);
        if (n < 0)
                return -errno;
        if (n != l)
                return -EIO;
        w->fd = take_fd(&efd);
        ev_io_init(&w->io, on_oom_eventfd, w->fd, EV_READ);
        return 0;
}

static int oom_register_v2(struct cgroup_oom_watch *w, const char *dir) {
        _cleanup_close_ int fd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
        if (fd < 0)
                return -errno;
        _cleanup_free_ char *path = NULL;
        if (asprintf(&path, "%s/memory.events", dir) < 0) {
                path = NULL;
                return -ENOMEM;
        }
        if (inotify_add_watch(fd, path, IN_MODIFY) < 0)
                return -errno;
        w->fd = take_fd(&fd);
        ev_io_init(&w->io, on_oom_inotify, w->fd, EV_READ);
        return 0;
}

int cgroup_oom_watch_new_at(struct ev_loop *loop, const char *sysfs_root, const char *proc_root, pid_t pid,
                            cgroup_oom_fn on_oom, void *userdata, struct cgroup_oom_watch **ret) {
        if (!loop || !on_oom || !ret)
                return -EINVAL;
        int version = cgroup_detect(sysfs_root);
        if (version < 0)
                return version;
        _cleanup_(cgroup_paths_done) struct cgroup_paths p = {0};
        int r = cgroup_paths_for_pid(proc_root, pid, &p);
        if (r < 0)
                return r;
        _cleanup_free_ char *dir = NULL;
        _cleanup_close_ int dirfd = -1;
        if (version == CGROUP_V1)
                r = open_cgroup_dir(sysfs_root, "memory", p.memory, &dir, &dirfd);
        else
                r = open_cgroup_dir(sysfs_root, NULL, p.unified, &dir, &dirfd);
        if (r < 0)
                return r;

        struct cgroup_oom_watch *w = calloc(1, sizeof *w);
        if (!w)
                return -ENOMEM;
        *w = (struct cgroup_oom_watch){
                .loop = loop,
                .version = version,
                .dir = TAKE_PTR(dir),
                .fd = -1,
                .on_oom = on_oom,
                .userdata = userdata,
        };
        /* Baseline: kills before we started watching are not this container's news. */
        uint64_t n;
        r = oom_counter_read(w, &n);
        if (r == 0) {
                w->has_counter = true;
                w->reported = n;
        } else if (!(r == -ENOKEY && version == CGROUP_V1)) {
                cgroup_oom_watch_free(w);
                return r;
        }
        r = version == CGROUP_V1 ? oom_register_v1(w) : oom_register_v2(w, w->dir);
        if (r < 0) {
                cgroup_oom_watch_free(w);
                return r;
        }
        w->io.data = w;
        ev_init(&w->recheck, on_oom_recheck);
        w->recheck.repeat = OOM_RECHECK_INTERVAL_S;
        w->recheck.data = w;
        ev_io_start(loop, &w->io);
        *ret = w;
        return 0;
}

int cgroup_oom_watch_new(struct ev_loop *loop, pid_t pid, cgroup_oom_fn on_oom, void *userdata,
                         struct cgroup_oom_watch **ret) {
        return cgroup_oom_watch_new_at(loop, NULL, NULL, pid, on_oom, userdata, ret);
}

int cgroup_oom_check_final(struct cgroup_oom_watch *w, bool *ret_oom) {
        if (!w || !ret_oom)
                return -EINVAL;
        if (!w->has_counter) {
                /* Old v1 kernel: only a pending eventfd signal can tell, while the cgroup exists. */
                uint64_t events;
                ssize_t n = read(w->fd, &events, sizeof events);
                if (n < 0 && errno != EAGAIN)
                        return -errno;
                *ret_oom = n == (ssize_t)sizeof events && oom_cgroup_exists(w) == 0;
                return 0;
        }
        int r;
        bool oom = oom_counter_advanced(w, &r);
        if (r < 0)
                return r;
        *ret_oom = oom;
        return 0;
}

struct cgroup_oom_watch *cgroup_oom_watch_free(struct cgroup_oom_watch *w) {
        if (!w)
                return NULL;
        if (w->fd >= 0)
                oom_stop(w);
        safe_close(w->fd);
        free(w->dir);
        free(w);
        return NULL;
}

/* ---- joining a cgroup (ShimCgroup) ------------------------------------------------ */

static int write_pid_to(const char *procs, pid_t pid) {
        _cleanup_close_ int fd = open(procs, O_WRONLY | O_CLOEXEC | O_NOFOLLOW);
        if (fd < 0)
                return -errno;
        char buf[24];
        int n = snprintf(buf, sizeof buf, "%d\n", (int)pid);
        return write(fd, buf, (size_t)n) == n ? 0 : -errno;
}

int cgroup_join(const char *sysfs_root, const char *path, pid_t pid) {
        const char *root = sysfs_root ? sysfs_root : "/sys/fs/cgroup";
        _cleanup_free_ char *abs = NULL;
        if (!path || asprintf(&abs, "%s%s", path[0] == '/' ? "" : "/", path) < 0)
                return path ? -ENOMEM : -EINVAL;
        if (!path_is_normal_absolute(abs, 4096))
                return -EINVAL;
        int version = cgroup_detect(root);
        if (version < 0)
                return version;
        _cleanup_free_ char *procs = NULL;
        if (version == CGROUP_V2) {
                if (asprintf(&procs, "%s%s/cgroup.procs", root, abs) < 0)
                        return -ENOMEM;
                return write_pid_to(procs, pid);
        }
        DIR *d = opendir(root);
        if (!d)
                return -errno;
        int joined = 0, first_error = -ENOENT;
        struct dirent *e;
        while ((e = readdir(d))) {
                if (e->d_name[0] == '.')
                        continue;
                free(procs);
                if (asprintf(&procs, "%s/%s%s/cgroup.procs", root, e->d_name, abs) < 0) {
                        procs = NULL;
                        closedir(d);
                        return -ENOMEM;
                }
                int r = write_pid_to(procs, pid);
                if (r == 0)
                        joined++;
                else if (r != -ENOENT && first_error == -ENOENT)
                        first_error = r;
        }
        closedir(d);
        return joined > 0 ? 0 : first_error;
}
