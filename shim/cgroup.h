/* SPDX-License-Identifier: Apache-2.0 */
/* A container's cgroup, seen from the shim: metrics for the Task Stats RPC and the
 * OOM-kill watcher behind /tasks/oom.
 *
 * Every function that looks at the system takes the cgroupfs mount point
 * (sysfs_root, NULL = "/sys/fs/cgroup") and the procfs mount point (proc_root,
 * NULL = "/proc"), so tests can point them at fake trees. Files that do not exist
 * (a controller not mounted, an old kernel) are skipped, never an error. */
#pragma once

#include <ev.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

enum cgroup_version {
        CGROUP_V1 = 1, /* legacy or hybrid: the memory controller is mounted as v1 */
        CGROUP_V2 = 2, /* unified: cgroup.controllers at the root */
};

#define CGROUP_V1_METRICS_TYPE_URL "io.containerd.cgroups.v1.Metrics"
#define CGROUP_V2_METRICS_TYPE_URL "io.containerd.cgroups.v2.Metrics"

/* CGROUP_V1 or CGROUP_V2, or -ENOENT when sysfs_root holds no cgroup hierarchy. */
int cgroup_detect(const char *sysfs_root);

/* A process's cgroups, from /proc/<pid>/cgroup. Paths are as the file gives them
 * ("/a/b", relative to the controller's mount); NULL when absent. */
struct cgroup_paths {
        char *memory, *cpu, *cpuacct, *pids; /* v1 controllers ("cpu,cpuacct" sets both) */
        char *unified;                       /* the "0::" line */
};

/* Parse the text of a /proc/<pid>/cgroup file. -EINVAL on a malformed line. */
int cgroup_paths_parse(const char *text, struct cgroup_paths *ret);
/* Read and parse <proc_root>/<pid>/cgroup; -ESRCH when the process is gone. */
int cgroup_paths_for_pid(const char *proc_root, pid_t pid, struct cgroup_paths *ret);
void cgroup_paths_done(struct cgroup_paths *p);

/* The packed metrics of pid's cgroup(s): nanoshim.cgroups.V1Metrics (wire-identical
 * to io.containerd.cgroups.v1.Metrics) or V2Metrics, and the matching type URL (a
 * static string). *ret_buf is malloc'ed (free() it; it may be NULL when len is 0).
 * -ESRCH when the process is gone. */
int cgroup_stats_collect(const char *sysfs_root, const char *proc_root, pid_t pid, uint8_t **ret_buf,
                         size_t *ret_len, const char **ret_type_url);

/* OOM-kill watcher on a libev loop, for the memory cgroup pid is in now.
 * v1: eventfd registered for memory.oom_control in cgroup.event_control; v2: inotify
 * IN_MODIFY on memory.events. Either way the kernel's oom_kill counter is re-read and
 * on_oom runs (from the loop) once per observed increase, so the wake-up that cgroup
 * removal causes is not taken for an OOM. On v1 kernels without the counter (< 4.13),
 * every event while the cgroup still exists counts as an OOM. */
typedef void (*cgroup_oom_fn)(void *userdata);
struct cgroup_oom_watch;

int cgroup_oom_watch_new(struct ev_loop *loop, pid_t pid, cgroup_oom_fn on_oom, void *userdata,
                         struct cgroup_oom_watch **ret);
int cgroup_oom_watch_new_at(struct ev_loop *loop, const char *sysfs_root, const char *proc_root, pid_t pid,
                            cgroup_oom_fn on_oom, void *userdata, struct cgroup_oom_watch **ret);
/* Re-read the counter now (call when the container exits, before runc delete
 * removes the cgroup): *ret_oom is true if an OOM kill happened that on_oom has not
 * reported yet; it is then counted as reported (on_oom will not run for it). */
int cgroup_oom_check_final(struct cgroup_oom_watch *w, bool *ret_oom);
/* Stops the watcher and closes its fds. Takes NULL, returns NULL. */
struct cgroup_oom_watch *cgroup_oom_watch_free(struct cgroup_oom_watch *w);

/* Move pid into the cgroup at `path` (relative to each hierarchy's root, e.g.
 * "/podruntime/shim", as runc-v2's ShimCgroup): on v2 <root>/<path>/cgroup.procs; on
 * v1/hybrid every mounted hierarchy under <root> in which <path> exists. -ENOENT if it
 * exists in none, -EINVAL for a path with "." or ".." components. */
int cgroup_join(const char *sysfs_root, const char *path, pid_t pid);
