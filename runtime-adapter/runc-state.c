/* SPDX-License-Identifier: Apache-2.0 */
/* What `runc delete` does for a stopped container, done without running runc.
 *
 * For a container whose init has exited in its own PID namespace, runc's delete (runc
 * 1.x, libcontainer's destroy()) removes the container's cgroups (rmdir, cgroupfs
 * driver), its state directory (<root>/<id>, holding state.json), and runs poststop
 * hooks. That is a dozen system calls, behind a Go start-up that costs 5-10 ms on every
 * container's teardown. Here the same is done in place, but only where this code knows
 * the whole state: anything it does not recognise leaves everything untouched and the
 * caller runs the runtime's own delete. */
#include "runtime.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jansson.h>

#include "file-util.h"
#include "ids.h"
#include "log.h"
#include "macro.h"
#include "spec.h"

#define RUNC_STATE_MAX (1u << 20)
#define RUNC_STATE_MAX_CGROUPS 64

/* Not done here, nothing touched: *ret_reason says why, the runtime's delete must run. */
#define REFUSE(...) (error_setf(ret_reason, __VA_ARGS__), -EOPNOTSUPP)
/* Done in part: the runtime's delete must finish. */
#define FAILED(e, ...) (error_setf(ret_reason, __VA_ARGS__), -(e))

/* The state directory must hold state.json and nothing else (runc leaves exec.fifo there
 * until the container is started, for one). */
static int state_dir_known(int dfd, char **ret_reason) {
        int fd = fcntl(dfd, F_DUPFD_CLOEXEC, 3);
        DIR *d = fd < 0 ? NULL : fdopendir(fd);
        if (!d) {
                int e = errno;
                if (fd >= 0)
                        close(fd);
                return REFUSE("cannot list the state directory: %s", strerror(e));
        }
        int r = 0;
        bool has_state = false;
        struct dirent *de;
        errno = 0;
        while ((de = readdir(d))) {
                if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
                        continue;
                if (strcmp(de->d_name, "state.json") == 0) {
                        has_state = true;
                        continue;
                }
                r = REFUSE("the state directory also holds \"%.64s\"", de->d_name);
                break;
        }
        if (r == 0 && errno != 0)
                r = REFUSE("cannot list the state directory: %s", strerror(errno));
        closedir(d);
        if (r == 0 && !has_state)
                r = REFUSE("no state.json");
        return r;
}

/* The hooks of kind ("poststart", "poststop") in runc's state.json ("Hooks" in the
 * config runc keeps; "hooks" accepted too). */
static size_t hooks_count(const json_t *config, const char *kind) {
        const json_t *hooks = json_object_get(config, "Hooks");
        if (!hooks)
                hooks = json_object_get(config, "hooks");
        return json_array_size(json_object_get(hooks, kind));
}

static bool json_false_or_absent(const json_t *o, const char *key) {
        const json_t *v = json_object_get(o, key);
        return !v || json_is_false(v) || json_is_null(v);
}

/* runc signals every process of the cgroup first unless the container has a PID
 * namespace of its own (NEWPID without a path): only that case is done here. */
static bool private_pid_namespace(const json_t *config) {
        const json_t *nss = json_object_get(config, "namespaces");
        size_t i;
        const json_t *ns;
        json_array_foreach(nss, i, ns) {
                const char *type = json_string_value(json_object_get(ns, "type"));
                const char *path = json_string_value(json_object_get(ns, "path"));
                if (type && strcmp(type, "NEWPID") == 0)
                        return !path || !*path;
        }
        return false;
}

/* Checks state.json against what we know; fills paths (borrowed from j) with the
 * cgroup directories to remove. */
static int state_known(const json_t *j, const char *cgroup_prefix, const char **paths, size_t *ret_n,
                       char **ret_reason) {
        if (!json_false_or_absent(j, "rootless"))
                return REFUSE("rootless container");
        const json_t *rdt = json_object_get(j, "intel_rdt_path");
        if (rdt && !json_is_null(rdt) && !(json_is_string(rdt) && json_string_length(rdt) == 0))
                return REFUSE("Intel RDT in use");
        const json_t *config = json_object_get(j, "config");
        const json_t *cg = json_object_get(config, "cgroups");
        if (!json_is_object(config) || !json_is_object(cg))
                return REFUSE("state.json has no cgroup configuration");
        if (!json_false_or_absent(cg, "Systemd") || !json_false_or_absent(cg, "systemd"))
                return REFUSE("systemd cgroup driver");
        if (hooks_count(config, "poststop") > 0)
                return REFUSE("poststop hooks");
        if (!private_pid_namespace(config))
                return REFUSE("no PID namespace of its own");

        const json_t *cp = json_object_get(j, "cgroup_paths");
        if (cp && !json_is_object(cp) && !json_is_null(cp))
                return REFUSE("cgroup_paths is not an object");
        size_t n = 0, plen = strlen(cgroup_prefix);
        const char *key;
        const json_t *v;
        json_object_foreach((json_t *)cp, key, v) {
                const char *p = json_string_value(v);
                /* Only directories below the cgroup mount, named without any "..". */
                if (!p || !path_is_normal_absolute(p, PATH_MAX - 1) || strncmp(p, cgroup_prefix, plen) != 0 ||
                    p[plen] == '\0')
                        return REFUSE("unexpected cgroup path for \"%.32s\"", key);
                if (n == RUNC_STATE_MAX_CGROUPS)
                        return REFUSE("more than %d cgroup paths", RUNC_STATE_MAX_CGROUPS);
                paths[n++] = p;
        }
        *ret_n = n;
        return 0;
}

/* <root>/<id>, the state directory of id (its fd; *ret_rfd: root's), or -EOPNOTSUPP. */
static int state_dir_open(const char *root, const char *id, int *ret_rfd, char **ret_reason) {
        if (!root || !identifier_is_valid(id))
                return REFUSE("invalid arguments");
        int rfd = open(root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (rfd < 0)
                return REFUSE("cannot open %s: %s", root, strerror(errno));
        int dfd = openat(rfd, id, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (dfd < 0) {
                int e = errno;
                close(rfd);
                return REFUSE("no state directory %s/%s: %s", root, id, strerror(e));
        }
        *ret_rfd = rfd;
        return dfd;
}

/* Opens <root>/<id> (into *ret_rfd, *ret_dfd) and loads its state.json, which must be
 * about id with init_pid as its init. */
static int state_load(const char *root, const char *id, pid_t init_pid, int *ret_rfd, int *ret_dfd, json_t **ret,
                      char **ret_reason) {
        if (init_pid <= 0)
                return REFUSE("invalid arguments");
        _cleanup_close_ int rfd = -1;
        _cleanup_close_ int dfd = state_dir_open(root, id, &rfd, ret_reason);
        if (dfd < 0)
                return dfd;
        _cleanup_free_ char *buf = NULL;
        size_t len = 0;
        int r = read_file_at(dfd, "state.json", RUNC_STATE_MAX, &buf, &len);
        if (r < 0)
                return REFUSE("cannot read state.json: %s", strerror(-r));
        _cleanup_free_ char *err = NULL;
        json_t *j = spec_json_load(buf, len, "state.json", &err);
        if (!j)
                return REFUSE("%s", err ? err : "out of memory");
        const char *sid = json_string_value(json_object_get(j, "id"));
        const json_t *pid = json_object_get(j, "init_process_pid");
        if (!sid || strcmp(sid, id) != 0)
                r = REFUSE("state.json is not about \"%s\"", id);
        else if (!json_is_integer(pid) || json_integer_value(pid) != (json_int_t)init_pid)
                r = REFUSE("state.json names another init than pid %d", (int)init_pid);
        if (r < 0) {
                json_decref(j);
                return r;
        }
        *ret_rfd = rfd;
        *ret_dfd = dfd;
        rfd = dfd = -1;
        *ret = j;
        return 0;
}

int runc_state_remove(const char *root, const char *id, pid_t init_pid, const char *cgroup_prefix,
                      char **ret_reason) {
        if (!cgroup_prefix || cgroup_prefix[0] != '/')
                return REFUSE("invalid arguments");
        _cleanup_close_ int rfd = -1, dfd = -1;
        json_t *j = NULL;
        int r = state_load(root, id, init_pid, &rfd, &dfd, &j, ret_reason);
        if (r < 0)
                return r;
        r = state_dir_known(dfd, ret_reason);
        const char *paths[RUNC_STATE_MAX_CGROUPS];
        size_t n = 0;
        if (r == 0)
                r = state_known(j, cgroup_prefix, paths, &n, ret_reason);
        /* From here on, only what runc's delete would do, in its order. A cgroup that
         * cannot be removed (still busy, or with sub-cgroups) stops here with the state
         * file in place: the runtime's delete finds it and finishes, retrying. */
        for (size_t i = 0; r == 0 && i < n; i++)
                if (rmdir(paths[i]) < 0 && errno != ENOENT) {
                        int e = errno;
                        r = FAILED(e, "cannot remove the cgroup %s: %s", paths[i], strerror(e));
                }
        json_decref(j);
        if (r < 0)
                return r;
        if (unlinkat(dfd, "state.json", 0) < 0 && errno != ENOENT) {
                int e = errno;
                return FAILED(e, "cannot remove %s/%s/state.json: %s", root, id, strerror(e));
        }
        if (unlinkat(rfd, id, AT_REMOVEDIR) < 0 && errno != ENOENT) {
                int e = errno;
                return FAILED(e, "cannot remove %s/%s: %s", root, id, strerror(e));
        }
        return 0;
}

/* `runc start` of a created container (runc 1.x, libcontainer's Exec()) opens
 * <root>/<id>/exec.fifo for reading: `runc init`, blocked in opening its write end,
 * writes one byte and execs the container's process; start reads it, removes the fifo
 * (from then on runc says "running") and, since runc 1.2, runs the poststart hooks
 * (the caller has none: it read the bundle's config). */
int runc_exec_fifo_open(const char *root, const char *id, char **ret_reason) {
        _cleanup_close_ int rfd = -1;
        _cleanup_close_ int dfd = state_dir_open(root, id, &rfd, ret_reason);
        if (dfd < 0)
                return dfd;
        int fd = openat(dfd, "exec.fifo", O_RDONLY | O_NONBLOCK | O_NOFOLLOW | O_CLOEXEC);
        if (fd < 0)
                return REFUSE("cannot open %s/%s/exec.fifo: %s", root, id, strerror(errno));
        struct stat st;
        if (fstat(fd, &st) < 0 || !S_ISFIFO(st.st_mode)) {
                close(fd);
                return REFUSE("%s/%s/exec.fifo is not a fifo", root, id);
        }
        return fd;
}

int runc_exec_fifo_read(int fd, const char *root, const char *id, char **ret_error) {
        char b[16];
        ssize_t n = read(fd, b, sizeof b);
        if (n < 0 && errno == EAGAIN)
                return -EAGAIN;
        if (n < 0)
                return error_setf(ret_error, "reading the exec fifo: %s", strerror(errno)), -EIO;
        if (n == 0)
                return error_setf(ret_error, "container process is already dead"), -ESRCH; /* runc's words */
        _cleanup_close_ int rfd = -1;
        _cleanup_close_ int dfd = state_dir_open(root, id, &rfd, ret_error);
        if (dfd < 0)
                return -EIO;
        if (unlinkat(dfd, "exec.fifo", 0) < 0 && errno != ENOENT)
                return error_setf(ret_error, "cannot remove %s/%s/exec.fifo: %s", root, id, strerror(errno)), -EIO;
        return 0;
}
