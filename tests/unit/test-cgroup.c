/* SPDX-License-Identifier: Apache-2.0 */
/* Unit tests for the cgroup module: /proc/<pid>/cgroup parsing, metrics from fake v1 and
 * v2 trees (decoded back with the generated unpackers, and checked at the wire level
 * against containerd/cgroups' field numbers), the OOM watcher on fake trees, and, as
 * root on a v1 host, a real OOM kill in a 16 MiB memory cgroup. */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cgroup.h"
#include "macro.h"
#include "metrics.pb-c.h"
#include "reaper.h"
#include "unit.h"

/* ---- helpers ------------------------------------------------------------------- */

static void write_text(const char *dir, const char *name, const char *text) {
        char path[PATH_MAX];
        snprintf(path, sizeof path, "%s/%s", dir, name);
        /* Rewritten in place (O_TRUNC, not rename) so that inotify sees IN_MODIFY. */
        int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
        ck_assert_msg(fd >= 0, "open %s: %s", path, strerror(errno));
        ck_assert_int_eq(write(fd, text, strlen(text)), (ssize_t)strlen(text));
        close(fd);
}

static void mkdir_p(const char *path) {
        char buf[PATH_MAX];
        snprintf(buf, sizeof buf, "%s", path);
        for (char *s = buf + 1; *s; s++)
                if (*s == '/') {
                        *s = 0;
                        (void)mkdir(buf, 0755);
                        *s = '/';
                }
        ck_assert_msg(mkdir(buf, 0755) == 0 || errno == EEXIST, "mkdir %s: %s", buf, strerror(errno));
}

static char *path_join(const char *a, const char *b) {
        char *s;
        ck_assert_int_ge(asprintf(&s, "%s/%s", a, b), 0);
        return s;
}

static void rm_rf(const char *path) {
        char cmd[PATH_MAX + 16];
        snprintf(cmd, sizeof cmd, "rm -rf '%s'", path);
        if (system(cmd) != 0)
                fprintf(stderr, "cannot remove %s\n", path);
}

/* Made and removed by the runner process (unchecked fixtures), so that a test that
 * fails half way leaves nothing behind. */
static char tmp_root[64];

static void tmp_root_setup(void) {
        snprintf(tmp_root, sizeof tmp_root, "/tmp/test-cgroup-XXXXXX");
        if (!mkdtemp(tmp_root))
                tmp_root[0] = 0;
}

static void tmp_root_teardown(void) {
        if (tmp_root[0])
                rm_rf(tmp_root);
}

static char *make_tmpdir(void) {
        ck_assert_msg(tmp_root[0], "no temporary directory");
        char *d;
        ck_assert_int_ge(asprintf(&d, "%s/t-XXXXXX", tmp_root), 0);
        ck_assert_ptr_nonnull(mkdtemp(d));
        return d;
}

/* A fake /proc/<pid>/cgroup under <root>/proc. */
static char *fake_proc(const char *root, pid_t pid, const char *text) {
        char *proc = path_join(root, "proc");
        char dir[PATH_MAX];
        snprintf(dir, sizeof dir, "%s/%d", proc, (int)pid);
        mkdir_p(dir);
        write_text(dir, "cgroup", text);
        return proc;
}

/* Top-level field numbers present in a packed message (walks the wire format). */
static unsigned top_level_fields(const uint8_t *buf, size_t len, bool seen[static 64]) {
        unsigned n = 0;
        size_t i = 0;
        memset(seen, 0, 64 * sizeof(bool));
        while (i < len) {
                uint64_t key = 0;
                for (int shift = 0; i < len; shift += 7) {
                        key |= (uint64_t)(buf[i] & 0x7f) << shift;
                        if (!(buf[i++] & 0x80))
                                break;
                }
                unsigned field = (unsigned)(key >> 3), wt = (unsigned)(key & 7);
                ck_assert_msg(wt == 2, "top-level field %u has wire type %u, want 2 (message)", field, wt);
                uint64_t l = 0;
                for (int shift = 0; i < len; shift += 7) {
                        l |= (uint64_t)(buf[i] & 0x7f) << shift;
                        if (!(buf[i++] & 0x80))
                                break;
                }
                i += l;
                if (field < 64 && !seen[field]) {
                        seen[field] = true;
                        n++;
                }
        }
        ck_assert_uint_eq(i, len);
        return n;
}

/* ---- /proc/<pid>/cgroup --------------------------------------------------------- */

START_TEST(test_paths_hybrid) {
        /* As on this machine: v1 controllers, cpu and cpuacct separate, plus "0::/". */
        const char *text = "9:name=systemd:/\n8:pids:/p/c1\n7:blkio:/\n4:memory:/process_api/abc/c1\n"
                           "3:cpuset:/\n2:cpuacct:/acct/c1\n1:cpu:/cpu/c1\n0::/\n";
        struct cgroup_paths p = {0};
        ck_assert_int_eq(cgroup_paths_parse(text, &p), 0);
        ck_assert_str_eq(p.memory, "/process_api/abc/c1");
        ck_assert_str_eq(p.pids, "/p/c1");
        ck_assert_str_eq(p.cpuacct, "/acct/c1");
        ck_assert_str_eq(p.cpu, "/cpu/c1");
        ck_assert_str_eq(p.unified, "/");
        cgroup_paths_done(&p);
        ck_assert_ptr_null(p.memory);
}
END_TEST

START_TEST(test_paths_v1_comounted) {
        const char *text = "11:cpu,cpuacct:/docker/x\n5:memory:/docker/x\n3:pids:/docker/x";  /* no final \n */
        struct cgroup_paths p = {0};
        ck_assert_int_eq(cgroup_paths_parse(text, &p), 0);
        ck_assert_str_eq(p.cpu, "/docker/x");
        ck_assert_str_eq(p.cpuacct, "/docker/x");
        ck_assert_str_eq(p.memory, "/docker/x");
        ck_assert_str_eq(p.pids, "/docker/x");
        ck_assert_ptr_null(p.unified);
        cgroup_paths_done(&p);
}
END_TEST

START_TEST(test_paths_v2) {
        struct cgroup_paths p = {0};
        ck_assert_int_eq(cgroup_paths_parse("0::/system.slice/ctr:with:colons.scope\n", &p), 0);
        ck_assert_str_eq(p.unified, "/system.slice/ctr:with:colons.scope");
        ck_assert_ptr_null(p.memory);
        ck_assert_ptr_null(p.cpu);
        cgroup_paths_done(&p);
}
END_TEST

START_TEST(test_paths_malformed) {
        struct cgroup_paths p = {0};
        ck_assert_int_eq(cgroup_paths_parse("4:memory\n", &p), -EINVAL);
        ck_assert_int_eq(cgroup_paths_parse("4:memory:relative\n", &p), -EINVAL);
        ck_assert_int_eq(cgroup_paths_parse("1::/x\n", &p), -EINVAL); /* only hierarchy 0 is unified */
        ck_assert_int_eq(cgroup_paths_parse(":memory:/x\n", &p), -EINVAL);
        ck_assert_ptr_null(p.memory); /* untouched on error */
        ck_assert_int_eq(cgroup_paths_parse("", &p), 0);
        ck_assert_ptr_null(p.unified);
}
END_TEST

START_TEST(test_paths_for_pid) {
        _cleanup_free_ char *root = make_tmpdir();
        _cleanup_free_ char *proc = fake_proc(root, 4242, "4:memory:/m\n0::/u\n");
        struct cgroup_paths p = {0};
        ck_assert_int_eq(cgroup_paths_for_pid(proc, 4242, &p), 0);
        ck_assert_str_eq(p.memory, "/m");
        ck_assert_str_eq(p.unified, "/u");
        cgroup_paths_done(&p);
        ck_assert_int_eq(cgroup_paths_for_pid(proc, 4243, &p), -ESRCH);
        ck_assert_int_eq(cgroup_paths_for_pid(proc, 0, &p), -EINVAL);
        /* The real file of this process parses too. */
        ck_assert_int_eq(cgroup_paths_for_pid(NULL, getpid(), &p), 0);
        ck_assert(p.memory || p.unified);
        cgroup_paths_done(&p);
        rm_rf(root);
}
END_TEST

START_TEST(test_detect) {
        _cleanup_free_ char *root = make_tmpdir();
        _cleanup_free_ char *v1 = path_join(root, "v1"), *v2 = path_join(root, "v2"), *none = path_join(root, "none");
        _cleanup_free_ char *v1mem = path_join(v1, "memory");
        mkdir_p(v1mem);
        mkdir_p(v2);
        mkdir_p(none);
        write_text(v2, "cgroup.controllers", "cpu memory pids\n");
        ck_assert_int_eq(cgroup_detect(v1), CGROUP_V1);
        ck_assert_int_eq(cgroup_detect(v2), CGROUP_V2);
        ck_assert_int_eq(cgroup_detect(none), -ENOENT);
        /* Hybrid: a unified tree below the root, memory as v1. */
        _cleanup_free_ char *v1unified = path_join(v1, "unified");
        mkdir_p(v1unified);
        write_text(v1unified, "cgroup.controllers", "");
        ck_assert_int_eq(cgroup_detect(v1), CGROUP_V1);
        /* A v2 child cgroup that happens to be called "memory" does not make it v1. */
        _cleanup_free_ char *v2mem = path_join(v2, "memory");
        mkdir_p(v2mem);
        ck_assert_int_eq(cgroup_detect(v2), CGROUP_V2);
        rm_rf(root);
}
END_TEST

/* ---- metrics ------------------------------------------------------------------ */

START_TEST(test_stats_v1_fake) {
        _cleanup_free_ char *root = make_tmpdir();
        _cleanup_free_ char *sys = path_join(root, "sys");
        _cleanup_free_ char *proc = fake_proc(root, 77, "8:pids:/c1\n4:memory:/nest/c1\n2:cpuacct:/c1\n1:cpu:/c1\n0::/\n");
        _cleanup_free_ char *mem = path_join(sys, "memory/nest/c1"), *acct = path_join(sys, "cpuacct/c1"),
                            *cpu = path_join(sys, "cpu/c1"), *pids = path_join(sys, "pids/c1");
        mkdir_p(mem);
        mkdir_p(acct);
        mkdir_p(cpu);
        mkdir_p(pids);
        write_text(mem, "memory.usage_in_bytes", "1048576\n");
        write_text(mem, "memory.limit_in_bytes", "16777216\n");
        write_text(mem, "memory.max_usage_in_bytes", "2097152\n");
        write_text(mem, "memory.failcnt", "3\n");
        write_text(mem, "memory.memsw.usage_in_bytes", "1050000\n");
        write_text(mem, "memory.memsw.limit_in_bytes", "9223372036854771712\n");
        write_text(mem, "memory.stat",
                   "cache 4096\nrss 8192\nrss_huge 0\nshmem 12\nmapped_file 1024\ndirty 5\nwriteback 6\n"
                   "pgpgin 100\npgpgout 50\npgfault 300\npgmajfault 2\ninactive_anon 7\nactive_anon 8\n"
                   "inactive_file 9\nactive_file 10\nunevictable 11\nhierarchical_memory_limit 16777216\n"
                   "hierarchical_memsw_limit 33554432\ntotal_cache 40960\ntotal_rss 81920\n"
                   "total_pgfault 3000\ntotal_unevictable 110\nsome_future_key 99\nbad_value abc\n");
        write_text(mem, "memory.oom_control", "oom_kill_disable 0\nunder_oom 1\noom_kill 4\n");
        write_text(acct, "cpuacct.usage", "5000000000\n");
        write_text(acct, "cpuacct.stat", "user 300\nsystem 200\n");
        write_text(acct, "cpuacct.usage_percpu", "3000000000 2000000000 \n");
        write_text(cpu, "cpu.stat", "nr_periods 10\nnr_throttled 4\nthrottled_time 123456\n");
        write_text(pids, "pids.current", "3\n");
        write_text(pids, "pids.max", "max\n");

        uint8_t *buf = NULL;
        size_t len = 0;
        const char *url = NULL;
        ck_assert_int_eq(cgroup_stats_collect(sys, proc, 77, &buf, &len, &url), 0);
        ck_assert_str_eq(url, "io.containerd.cgroups.v1.Metrics");

        /* containerd/cgroups stats/v1: pids = 2, cpu = 3, memory = 4, memory_oom_control = 9. */
        bool seen[64];
        ck_assert_uint_eq(top_level_fields(buf, len, seen), 4);
        ck_assert(seen[2] && seen[3] && seen[4] && seen[9]);

        Nanoshim__Cgroups__V1Metrics *m = nanoshim__cgroups__v1_metrics__unpack(NULL, len, buf);
        ck_assert_ptr_nonnull(m);
        ck_assert_ptr_nonnull(m->pids);
        ck_assert_uint_eq(m->pids->current, 3);
        ck_assert_uint_eq(m->pids->limit, 0); /* "max" on v1 is 0, as containerd reports it */
        ck_assert_ptr_nonnull(m->cpu);
        ck_assert_ptr_nonnull(m->cpu->usage);
        long hz = sysconf(_SC_CLK_TCK);
        ck_assert_uint_eq(m->cpu->usage->total, 5000000000ull);
        ck_assert_uint_eq(m->cpu->usage->user, 300 * (1000000000ull / (uint64_t)hz));
        ck_assert_uint_eq(m->cpu->usage->kernel, 200 * (1000000000ull / (uint64_t)hz));
        ck_assert_uint_eq(m->cpu->usage->n_per_cpu, 2);
        ck_assert_uint_eq(m->cpu->usage->per_cpu[0], 3000000000ull);
        ck_assert_uint_eq(m->cpu->usage->per_cpu[1], 2000000000ull);
        ck_assert_ptr_nonnull(m->cpu->throttling);
        ck_assert_uint_eq(m->cpu->throttling->periods, 10);
        ck_assert_uint_eq(m->cpu->throttling->throttled_periods, 4);
        ck_assert_uint_eq(m->cpu->throttling->throttled_time, 123456);
        Nanoshim__Cgroups__V1MemoryStat *ms = m->memory;
        ck_assert_ptr_nonnull(ms);
        ck_assert_uint_eq(ms->cache, 4096);
        ck_assert_uint_eq(ms->rss, 8192);
        ck_assert_uint_eq(ms->mapped_file, 1024);
        ck_assert_uint_eq(ms->dirty, 5);
        ck_assert_uint_eq(ms->writeback, 6);
        ck_assert_uint_eq(ms->pg_pg_in, 100);
        ck_assert_uint_eq(ms->pg_pg_out, 50);
        ck_assert_uint_eq(ms->pg_fault, 300);
        ck_assert_uint_eq(ms->pg_maj_fault, 2);
        ck_assert_uint_eq(ms->inactive_anon, 7);
        ck_assert_uint_eq(ms->active_anon, 8);
        ck_assert_uint_eq(ms->inactive_file, 9);
        ck_assert_uint_eq(ms->active_file, 10);
        ck_assert_uint_eq(ms->unevictable, 11);
        ck_assert_uint_eq(ms->hierarchical_memory_limit, 16777216);
        ck_assert_uint_eq(ms->hierarchical_swap_limit, 33554432);
        ck_assert_uint_eq(ms->total_cache, 40960);
        ck_assert_uint_eq(ms->total_rss, 81920);
        ck_assert_uint_eq(ms->total_pg_fault, 3000);
        ck_assert_uint_eq(ms->total_unevictable, 110);
        ck_assert_ptr_nonnull(ms->usage);
        ck_assert_uint_eq(ms->usage->usage, 1048576);
        ck_assert_uint_eq(ms->usage->limit, 16777216);
        ck_assert_uint_eq(ms->usage->max, 2097152);
        ck_assert_uint_eq(ms->usage->failcnt, 3);
        ck_assert_ptr_nonnull(ms->swap);
        ck_assert_uint_eq(ms->swap->usage, 1050000);
        ck_assert_uint_eq(ms->swap->limit, 9223372036854771712ull);
        ck_assert_ptr_null(ms->kernel);     /* no memory.kmem.* files: skipped */
        ck_assert_ptr_null(ms->kernel_tcp);
        ck_assert_ptr_nonnull(m->memory_oom_control);
        ck_assert_uint_eq(m->memory_oom_control->under_oom, 1);
        ck_assert_uint_eq(m->memory_oom_control->oom_kill, 4);
        nanoshim__cgroups__v1_metrics__free_unpacked(m, NULL);
        free(buf);

        /* A process that is gone. */
        buf = NULL;
        ck_assert_int_eq(cgroup_stats_collect(sys, proc, 78, &buf, &len, &url), -ESRCH);
        ck_assert_ptr_null(buf);
        rm_rf(root);
}
END_TEST

START_TEST(test_stats_v1_sparse) {
        /* Only a memory cgroup, with only usage: everything else is skipped, no error. */
        _cleanup_free_ char *root = make_tmpdir();
        _cleanup_free_ char *sys = path_join(root, "sys");
        _cleanup_free_ char *proc = fake_proc(root, 5, "4:memory:/c\n2:cpuacct:/gone\n");
        _cleanup_free_ char *mem = path_join(sys, "memory/c");
        mkdir_p(mem);
        write_text(mem, "memory.usage_in_bytes", "42\n");
        uint8_t *buf = NULL;
        size_t len = 0;
        const char *url = NULL;
        ck_assert_int_eq(cgroup_stats_collect(sys, proc, 5, &buf, &len, &url), 0);
        Nanoshim__Cgroups__V1Metrics *m = nanoshim__cgroups__v1_metrics__unpack(NULL, len, buf);
        ck_assert_ptr_nonnull(m);
        ck_assert_ptr_null(m->pids);
        ck_assert_ptr_null(m->cpu);
        ck_assert_ptr_null(m->memory_oom_control);
        ck_assert_ptr_nonnull(m->memory);
        ck_assert_ptr_nonnull(m->memory->usage);
        ck_assert_uint_eq(m->memory->usage->usage, 42);
        ck_assert_ptr_null(m->memory->swap);
        nanoshim__cgroups__v1_metrics__free_unpacked(m, NULL);
        free(buf);
        /* A path that tries to climb out of the mount is refused, not followed. */
        _cleanup_free_ char *proc2 = fake_proc(root, 6, "4:memory:/../../etc\n");
        ck_assert_int_eq(cgroup_stats_collect(sys, proc2, 6, &buf, &len, &url), 0);
        m = nanoshim__cgroups__v1_metrics__unpack(NULL, len, buf);
        ck_assert_ptr_nonnull(m);
        ck_assert_ptr_null(m->memory);
        nanoshim__cgroups__v1_metrics__free_unpacked(m, NULL);
        free(buf);
        rm_rf(root);
}
END_TEST

START_TEST(test_stats_v2_fake) {
        _cleanup_free_ char *root = make_tmpdir();
        _cleanup_free_ char *sys = path_join(root, "sys");
        _cleanup_free_ char *proc = fake_proc(root, 99, "0::/kubepods/c2\n");
        _cleanup_free_ char *cg = path_join(sys, "kubepods/c2");
        mkdir_p(cg);
        write_text(sys, "cgroup.controllers", "cpu io memory pids\n");
        write_text(cg, "pids.current", "7\n");
        write_text(cg, "pids.max", "max\n");
        write_text(cg, "cpu.stat", "usage_usec 900\nuser_usec 600\nsystem_usec 300\nnr_periods 5\n"
                                   "nr_throttled 2\nthrottled_usec 77\nnr_bursts 0\n");
        write_text(cg, "memory.current", "3145728\n");
        write_text(cg, "memory.max", "max\n");
        write_text(cg, "memory.swap.current", "0\n");
        write_text(cg, "memory.swap.max", "1048576\n");
        write_text(cg, "memory.stat", "anon 1000\nfile 2000\nkernel_stack 16384\nslab 500\nsock 0\nshmem 3\n"
                                      "file_mapped 4\nfile_dirty 5\nfile_writeback 6\nanon_thp 0\n"
                                      "inactive_anon 11\nactive_anon 12\ninactive_file 13\nactive_file 14\n"
                                      "unevictable 15\nslab_reclaimable 16\nslab_unreclaimable 17\n"
                                      "pgfault 18\npgmajfault 19\nworkingset_refault 20\npgscan 24\n"
                                      "thp_collapse_alloc 31\n");
        write_text(cg, "memory.events", "low 1\nhigh 2\nmax 3\noom 4\noom_kill 5\noom_group_kill 0\n");
        write_text(cg, "io.stat", "254:0 rbytes=4096 wbytes=2097152 rios=1 wios=32 dbytes=0 dios=0\n"
                                  "not a device line\n7:1 wbytes=9 odd=x\n");

        uint8_t *buf = NULL;
        size_t len = 0;
        const char *url = NULL;
        ck_assert_int_eq(cgroup_stats_collect(sys, proc, 99, &buf, &len, &url), 0);
        ck_assert_str_eq(url, "io.containerd.cgroups.v2.Metrics");

        /* containerd/cgroups v2/stats: pids = 1, cpu = 2, memory = 4, io = 6,
         * memory_events = 8. */
        bool seen[64];
        ck_assert_uint_eq(top_level_fields(buf, len, seen), 5);
        ck_assert(seen[1] && seen[2] && seen[4] && seen[6] && seen[8]);

        Nanoshim__Cgroups__V2Metrics *m = nanoshim__cgroups__v2_metrics__unpack(NULL, len, buf);
        ck_assert_ptr_nonnull(m);
        ck_assert_ptr_nonnull(m->pids);
        ck_assert_uint_eq(m->pids->current, 7);
        ck_assert_uint_eq(m->pids->limit, UINT64_MAX); /* v2 "max", as containerd reports it */
        ck_assert_ptr_nonnull(m->cpu);
        ck_assert_uint_eq(m->cpu->usage_usec, 900);
        ck_assert_uint_eq(m->cpu->user_usec, 600);
        ck_assert_uint_eq(m->cpu->system_usec, 300);
        ck_assert_uint_eq(m->cpu->nr_periods, 5);
        ck_assert_uint_eq(m->cpu->nr_throttled, 2);
        ck_assert_uint_eq(m->cpu->throttled_usec, 77);
        Nanoshim__Cgroups__V2MemoryStat *ms = m->memory;
        ck_assert_ptr_nonnull(ms);
        ck_assert_uint_eq(ms->usage, 3145728);
        ck_assert_uint_eq(ms->usage_limit, UINT64_MAX);
        ck_assert_uint_eq(ms->swap_usage, 0);
        ck_assert_uint_eq(ms->swap_limit, 1048576);
        ck_assert_uint_eq(ms->anon, 1000);
        ck_assert_uint_eq(ms->file, 2000);
        ck_assert_uint_eq(ms->kernel_stack, 16384);
        ck_assert_uint_eq(ms->slab, 500);
        ck_assert_uint_eq(ms->shmem, 3);
        ck_assert_uint_eq(ms->file_mapped, 4);
        ck_assert_uint_eq(ms->file_dirty, 5);
        ck_assert_uint_eq(ms->file_writeback, 6);
        ck_assert_uint_eq(ms->inactive_anon, 11);
        ck_assert_uint_eq(ms->active_file, 14);
        ck_assert_uint_eq(ms->unevictable, 15);
        ck_assert_uint_eq(ms->slab_reclaimable, 16);
        ck_assert_uint_eq(ms->slab_unreclaimable, 17);
        ck_assert_uint_eq(ms->pgfault, 18);
        ck_assert_uint_eq(ms->pgmajfault, 19);
        ck_assert_uint_eq(ms->workingset_refault, 20);
        ck_assert_uint_eq(ms->pgscan, 24);
        ck_assert_uint_eq(ms->thp_collapse_alloc, 31);
        ck_assert_ptr_nonnull(m->memory_events);
        ck_assert_uint_eq(m->memory_events->low, 1);
        ck_assert_uint_eq(m->memory_events->high, 2);
        ck_assert_uint_eq(m->memory_events->max, 3);
        ck_assert_uint_eq(m->memory_events->oom, 4);
        ck_assert_uint_eq(m->memory_events->oom_kill, 5);
        ck_assert_ptr_nonnull(m->io);
        ck_assert_uint_eq(m->io->n_usage, 2);
        ck_assert_uint_eq(m->io->usage[0]->major, 254);
        ck_assert_uint_eq(m->io->usage[0]->minor, 0);
        ck_assert_uint_eq(m->io->usage[0]->rbytes, 4096);
        ck_assert_uint_eq(m->io->usage[0]->wbytes, 2097152);
        ck_assert_uint_eq(m->io->usage[0]->rios, 1);
        ck_assert_uint_eq(m->io->usage[0]->wios, 32);
        ck_assert_uint_eq(m->io->usage[1]->major, 7);
        ck_assert_uint_eq(m->io->usage[1]->wbytes, 9);
        nanoshim__cgroups__v2_metrics__free_unpacked(m, NULL);
        free(buf);
        rm_rf(root);
}
END_TEST

/* This machine's own cgroups (v1 or v2): the collector works on the real cgroupfs. */
START_TEST(test_stats_real_self) {
        int v = cgroup_detect(NULL);
        if (v < 0)
                return; /* no cgroupfs here: nothing to read */
        uint8_t *buf = NULL;
        size_t len = 0;
        const char *url = NULL;
        ck_assert_int_eq(cgroup_stats_collect(NULL, NULL, getpid(), &buf, &len, &url), 0);
        if (v == CGROUP_V1) {
                ck_assert_str_eq(url, CGROUP_V1_METRICS_TYPE_URL);
                Nanoshim__Cgroups__V1Metrics *m = nanoshim__cgroups__v1_metrics__unpack(NULL, len, buf);
                ck_assert_ptr_nonnull(m);
                ck_assert_ptr_nonnull(m->memory);
                ck_assert_ptr_nonnull(m->memory->usage);
                ck_assert_uint_gt(m->memory->usage->usage, 0);
                ck_assert_ptr_nonnull(m->cpu);
                ck_assert_ptr_nonnull(m->cpu->usage);
                ck_assert_uint_gt(m->cpu->usage->total, 0);
                ck_assert_uint_gt(m->cpu->usage->n_per_cpu, 0);
                nanoshim__cgroups__v1_metrics__free_unpacked(m, NULL);
        } else {
                ck_assert_str_eq(url, CGROUP_V2_METRICS_TYPE_URL);
                Nanoshim__Cgroups__V2Metrics *m = nanoshim__cgroups__v2_metrics__unpack(NULL, len, buf);
                ck_assert_ptr_nonnull(m);
                nanoshim__cgroups__v2_metrics__free_unpacked(m, NULL);
        }
        free(buf);
}
END_TEST

/* ---- OOM watcher on fake trees ------------------------------------------------- */

struct oom_seen {
        unsigned calls;
};

static void on_test_oom(void *userdata) {
        struct oom_seen *s = userdata;
        s->calls++;
        ev_break(EV_DEFAULT, EVBREAK_ALL);
}

static void on_deadline(struct ev_loop *loop, ev_timer *t, int revents) {
        *(bool *)t->data = true;
        ev_break(loop, EVBREAK_ALL);
}

/* Run the default loop until done(userdata) or the deadline; false on the deadline. */
static bool run_until(bool (*done)(const void *userdata), const void *userdata, double seconds) {
        bool expired = false;
        ev_timer t;
        ev_timer_init(&t, on_deadline, seconds, 0);
        t.data = &expired;
        ev_timer_start(EV_DEFAULT, &t);
        while (!expired && !done(userdata))
                ev_run(EV_DEFAULT, EVRUN_ONCE);
        ev_timer_stop(EV_DEFAULT, &t);
        return !expired;
}

static bool seen_one(const void *userdata) {
        return ((const struct oom_seen *)userdata)->calls >= 1;
}

static bool seen_two(const void *userdata) {
        return ((const struct oom_seen *)userdata)->calls >= 2;
}

START_TEST(test_oom_v2_inotify) {
        _cleanup_free_ char *root = make_tmpdir();
        _cleanup_free_ char *sys = path_join(root, "sys");
        _cleanup_free_ char *proc = fake_proc(root, 31, "0::/ctr\n");
        _cleanup_free_ char *cg = path_join(sys, "ctr");
        mkdir_p(cg);
        write_text(sys, "cgroup.controllers", "memory\n");
        /* An OOM kill before the watch began is not reported. */
        write_text(cg, "memory.events", "low 0\nhigh 0\nmax 9\noom 1\noom_kill 1\n");

        struct oom_seen s = {0};
        struct cgroup_oom_watch *w = NULL;
        ck_assert_int_eq(cgroup_oom_watch_new_at(EV_DEFAULT, sys, proc, 31, on_test_oom, &s, &w), 0);
        ck_assert_ptr_nonnull(w);
        bool oom = true;
        ck_assert_int_eq(cgroup_oom_check_final(w, &oom), 0);
        ck_assert(!oom);

        /* A change that is not an OOM kill (the "oom" count alone) does not fire. */
        write_text(cg, "memory.events", "low 0\nhigh 0\nmax 10\noom 2\noom_kill 1\n");
        ev_run(EV_DEFAULT, EVRUN_NOWAIT); /* inotify queued the event during write() */
        ck_assert_uint_eq(s.calls, 0);

        write_text(cg, "memory.events", "low 0\nhigh 0\nmax 11\noom 3\noom_kill 2\n");
        ck_assert(run_until(seen_one, &s, 5));
        ck_assert_uint_eq(s.calls, 1);
        ck_assert_int_eq(cgroup_oom_check_final(w, &oom), 0);
        ck_assert(!oom); /* already reported */

        /* check_final sees a kill before the loop does; the later wake-up stays quiet. */
        write_text(cg, "memory.events", "low 0\nhigh 0\nmax 11\noom 4\noom_kill 3\n");
        ck_assert_int_eq(cgroup_oom_check_final(w, &oom), 0);
        ck_assert(oom);
        ev_run(EV_DEFAULT, EVRUN_NOWAIT);
        ck_assert_uint_eq(s.calls, 1);

        /* The next kill is reported once. */
        write_text(cg, "memory.events", "low 0\nhigh 0\nmax 12\noom 5\noom_kill 5\n");
        ck_assert(run_until(seen_two, &s, 5));
        ck_assert_uint_eq(s.calls, 2);

        w = cgroup_oom_watch_free(w);
        ck_assert_ptr_null(w);
        /* A cgroup without memory.events (memory controller not enabled) cannot be watched. */
        _cleanup_free_ char *proc2 = fake_proc(root, 32, "0::/\n");
        ck_assert_int_eq(cgroup_oom_watch_new_at(EV_DEFAULT, sys, proc2, 32, on_test_oom, &s, &w), -ENOENT);
        ck_assert_ptr_null(w);
        rm_rf(root);
}
END_TEST

START_TEST(test_oom_v1_fake_final) {
        _cleanup_free_ char *root = make_tmpdir();
        _cleanup_free_ char *sys = path_join(root, "sys");
        _cleanup_free_ char *proc = fake_proc(root, 41, "4:memory:/ctr\n");
        _cleanup_free_ char *cg = path_join(sys, "memory/ctr");
        mkdir_p(cg);
        write_text(cg, "memory.oom_control", "oom_kill_disable 0\nunder_oom 0\noom_kill 0\n");
        write_text(cg, "cgroup.event_control", "");

        struct oom_seen s = {0};
        struct cgroup_oom_watch *w = NULL;
        ck_assert_int_eq(cgroup_oom_watch_new_at(EV_DEFAULT, sys, proc, 41, on_test_oom, &s, &w), 0);
        /* The registration line is "<eventfd> <memory.oom_control fd>"; the eventfd stays
         * open in us, the control file is closed again (no fd at rest beyond the eventfd:
         * the kernel's registration keeps what it needs). */
        char path[PATH_MAX], line[PATH_MAX] = {0};
        snprintf(path, sizeof path, "%s/cgroup.event_control", cg);
        FILE *f = fopen(path, "re");
        ck_assert_ptr_nonnull(f);
        int efd = -1, ofd = -1;
        ck_assert_int_eq(fscanf(f, "%d %d", &efd, &ofd), 2);
        fclose(f);
        ck_assert_int_ge(fcntl(efd, F_GETFD), 0);
        ck_assert_int_ne(fcntl(efd, F_GETFD) & FD_CLOEXEC, 0);
        ck_assert_int_ne(fcntl(efd, F_GETFL) & O_NONBLOCK, 0);
        snprintf(path, sizeof path, "/proc/self/fd/%d", ofd);
        ck_assert(readlink(path, line, sizeof line - 1) < 0 || !strstr(line, "memory.oom_control"));

        bool oom = true;
        ck_assert_int_eq(cgroup_oom_check_final(w, &oom), 0);
        ck_assert(!oom);
        /* under_oom alone (oom_kill_disable set) is not a kill. */
        write_text(cg, "memory.oom_control", "oom_kill_disable 1\nunder_oom 1\noom_kill 0\n");
        ck_assert_int_eq(cgroup_oom_check_final(w, &oom), 0);
        ck_assert(!oom);
        write_text(cg, "memory.oom_control", "oom_kill_disable 0\nunder_oom 0\noom_kill 1\n");
        ck_assert_int_eq(cgroup_oom_check_final(w, &oom), 0);
        ck_assert(oom);
        ck_assert_int_eq(cgroup_oom_check_final(w, &oom), 0);
        ck_assert(!oom); /* reported once */
        ck_assert_uint_eq(s.calls, 0);
        cgroup_oom_watch_free(w);
        /* Freed: the eventfd is closed. */
        ck_assert_int_eq(fcntl(efd, F_GETFD), -1);

        /* Old kernel (no oom_kill line): still watchable, final check says no. */
        write_text(cg, "memory.oom_control", "oom_kill_disable 0\nunder_oom 0\n");
        ck_assert_int_eq(cgroup_oom_watch_new_at(EV_DEFAULT, sys, proc, 41, on_test_oom, &s, &w), 0);
        ck_assert_int_eq(cgroup_oom_check_final(w, &oom), 0);
        ck_assert(!oom);
        cgroup_oom_watch_free(w);
        rm_rf(root);
}
END_TEST

/* ---- a real OOM kill (root, cgroup v1 memory controller) -------------------------- */

/* Set in the runner process (unchecked fixture) so that its teardown can remove the
 * cgroup even when the forked test died half way. */
static char real_cg[PATH_MAX];

static void real_oom_setup(void) {
        real_cg[0] = 0;
        struct cgroup_paths p = {0};
        if (geteuid() != 0 || cgroup_detect(NULL) != CGROUP_V1 || cgroup_paths_for_pid(NULL, getpid(), &p) < 0)
                return;
        if (p.memory)
                snprintf(real_cg, sizeof real_cg, "/sys/fs/cgroup/memory%s%snanoshim-test-oom-%d", p.memory,
                         strcmp(p.memory, "/") == 0 ? "" : "/", (int)getpid());
        cgroup_paths_done(&p);
}

static void real_oom_teardown(void) {
        if (real_cg[0])
                (void)rmdir(real_cg); /* ENOENT when the test removed it */
}

struct real_oom {
        struct oom_seen oom; /* first: on_test_oom gets a pointer to it */
        int status;          /* -1 until reaped */
};

static void on_child_exit(pid_t pid, int wait_status, void *userdata) {
        struct real_oom *st = userdata;
        st->status = wait_status;
        ev_break(EV_DEFAULT, EVBREAK_ALL);
}

/* The exit and the OOM event may come in either order: wait for both. */
static bool oom_and_exit(const void *userdata) {
        const struct real_oom *st = userdata;
        return st->oom.calls >= 1 && st->status != -1;
}

START_TEST(test_oom_v1_real) {
        if (!real_cg[0]) {
                fprintf(stderr, "test_oom_v1_real: skipped (needs root and a v1 memory controller)\n");
                return;
        }
        ck_assert_msg(mkdir(real_cg, 0755) == 0, "mkdir %s: %s", real_cg, strerror(errno));
        write_text(real_cg, "memory.limit_in_bytes", "16777216");
        char path[PATH_MAX + 64];
        snprintf(path, sizeof path, "%s/memory.memsw.limit_in_bytes", real_cg);
        if (access(path, F_OK) == 0)
                write_text(real_cg, "memory.memsw.limit_in_bytes", "16777216");
        snprintf(path, sizeof path, "%s/memory.swappiness", real_cg);
        if (access(path, F_OK) == 0)
                write_text(real_cg, "memory.swappiness", "0");

        int ready[2], go[2];
        ck_assert_int_eq(pipe2(ready, O_CLOEXEC), 0);
        ck_assert_int_eq(pipe2(go, O_CLOEXEC), 0);
        struct reaper *r = NULL;
        ck_assert_int_eq(reaper_new(EV_DEFAULT, &r), 0);
        pid_t pid = fork();
        ck_assert_int_ge(pid, 0);
        if (pid == 0) {
                close(ready[0]);
                close(go[1]);
                char procs[PATH_MAX + 64];
                snprintf(procs, sizeof procs, "%s/cgroup.procs", real_cg);
                int fd = open(procs, O_WRONLY | O_CLOEXEC);
                if (fd < 0 || write(fd, "0", 1) != 1) /* "0": move the writer itself */
                        _exit(2);
                close(fd);
                char c = 1;
                if (write(ready[1], &c, 1) != 1)
                        _exit(3);
                /* EOF instead of "go" means the test died: leave quietly. */
                if (read(go[0], &c, 1) != 1)
                        _exit(4);
                size_t size = 64u << 20;
                char *mem = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
                if (mem == MAP_FAILED)
                        _exit(5);
                for (size_t i = 0; i < size; i += 4096)
                        mem[i] = 1;
                _exit(0);
        }
        close(ready[1]);
        close(go[0]);
        struct real_oom st = {.status = -1};
        ck_assert_int_eq(reaper_watch(r, pid, on_child_exit, &st), 0);
        char c;
        ck_assert_int_eq(read(ready[0], &c, 1), 1);

        struct cgroup_oom_watch *w = NULL;
        ck_assert_int_eq(cgroup_oom_watch_new(EV_DEFAULT, pid, on_test_oom, &st.oom, &w), 0);
        ck_assert_int_eq(write(go[1], &c, 1), 1);

        bool in_time = run_until(oom_and_exit, &st, 30);
        ck_assert_msg(st.status != -1, "the child did not exit");
        ck_assert_msg(in_time, "no OOM event (status %#x)", st.status);
        ck_assert_uint_eq(st.oom.calls, 1);
        int status = st.status;
        ck_assert_msg(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL, "child status %#x, want SIGKILL", status);
        bool oom = true;
        ck_assert_int_eq(cgroup_oom_check_final(w, &oom), 0);
        ck_assert(!oom); /* on_oom already reported it */

        w = cgroup_oom_watch_free(w);
        reaper_free(r);
        close(ready[0]);
        close(go[1]);
        /* The cgroup is empty once the child is reaped; the rmdir wakes no watcher now. */
        ck_assert_msg(rmdir(real_cg) == 0, "rmdir %s: %s", real_cg, strerror(errno));
}
END_TEST

int main(void) {
        Suite *s = suite_create("cgroup");
        TCase *tc = tcase_create("paths");
        tcase_set_timeout(tc, 30);
        tcase_add_unchecked_fixture(tc, tmp_root_setup, tmp_root_teardown);
        tcase_add_test(tc, test_paths_hybrid);
        tcase_add_test(tc, test_paths_v1_comounted);
        tcase_add_test(tc, test_paths_v2);
        tcase_add_test(tc, test_paths_malformed);
        tcase_add_test(tc, test_paths_for_pid);
        tcase_add_test(tc, test_detect);
        suite_add_tcase(s, tc);

        tc = tcase_create("stats");
        tcase_set_timeout(tc, 30);
        tcase_add_unchecked_fixture(tc, tmp_root_setup, tmp_root_teardown);
        tcase_add_test(tc, test_stats_v1_fake);
        tcase_add_test(tc, test_stats_v1_sparse);
        tcase_add_test(tc, test_stats_v2_fake);
        tcase_add_test(tc, test_stats_real_self);
        suite_add_tcase(s, tc);

        tc = tcase_create("oom");
        tcase_set_timeout(tc, 60);
        tcase_add_unchecked_fixture(tc, tmp_root_setup, tmp_root_teardown);
        tcase_add_unchecked_fixture(tc, real_oom_setup, real_oom_teardown);
        tcase_add_test(tc, test_oom_v2_inotify);
        tcase_add_test(tc, test_oom_v1_fake_final);
        tcase_add_test(tc, test_oom_v1_real);
        suite_add_tcase(s, tc);

        return run_suite(s);
}
