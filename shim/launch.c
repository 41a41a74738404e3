/* SPDX-License-Identifier: Apache-2.0 */
/* The three ways the binary runs: containerd's `start` and `delete` actions, and the
 * long-lived daemon. */
#include "launch.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <spawn.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <jansson.h>

#include "cgroup.h"
#include "fd-util.h"
#include "go-buildinfo.h"
#include "file-util.h"
#include "ids.h"
#include "log.h"
#include "macro.h"
#include "mount.h"
#include "reaper.h"
#include "runtime-options.h"
#include "runtime.h"
#include "sha256.h"
#include "container.h"
#include "shim.h"
#include "task-service.h"
#include "spec.h"
#include "standalone.h"
#include "task.pb-c.h"
#include "timeutil.h"

#define SOCKET_DIR "/run/containerd/s"
#define SOCKET_PATH_MAX 106
#define GROUP_ANNOTATION "io.containerd.runc.v2.group"
#define SANDBOX_ANNOTATION "io.kubernetes.cri.sandbox-id"

/* ------------------------------------------------------------------------------------ */
/* socket naming                                                                        */

/* Go's path.Join + Clean for absolute or relative slash paths. */
static char *path_join_clean(const char *const *parts, size_t n) {
        size_t total = 1;
        for (size_t i = 0; i < n; i++)
                total += strlen(parts[i]) + 1;
        _cleanup_free_ char *joined = malloc(total);
        if (!joined)
                return NULL;
        joined[0] = 0;
        for (size_t i = 0; i < n; i++) {
                if (!*parts[i])
                        continue;
                if (*joined)
                        strcat(joined, "/");
                strcat(joined, parts[i]);
        }
        bool abs = joined[0] == '/';
        char *out = malloc(total + 1);
        if (!out)
                return NULL;
        size_t o = 0;
        if (abs)
                out[o++] = '/';
        char *save = NULL;
        for (char *tok = strtok_r(joined, "/", &save); tok; tok = strtok_r(NULL, "/", &save)) {
                if (strcmp(tok, ".") == 0)
                        continue;
                if (strcmp(tok, "..") == 0) {
                        size_t floor = abs ? 1 : 0;
                        if (o > floor) {
                                while (o > floor && out[o - 1] != '/')
                                        o--;
                                if (o > floor)
                                        o--;
                                continue;
                        }
                        if (abs)
                                continue;
                }
                if (o > (abs ? 1u : 0u))
                        out[o++] = '/';
                size_t l = strlen(tok);
                memcpy(out + o, tok, l);
                o += l;
        }
        if (o == 0)
                out[o++] = '.';
        out[o] = 0;
        return out;
}

int launch_socket_path(const char *address, const char *ns, const char *group, char **ret) {
        const char *parts[] = {address ? address : "", ns, group};
        _cleanup_free_ char *key = path_join_clean(parts, 3);
        if (!key)
                return -ENOMEM;
        char hex[2 * SHA256_DIGEST_SIZE + 1];
        sha256_hex(key, strlen(key), hex);
        char *p = NULL;
        if (asprintf(&p, SOCKET_DIR "/%s", hex) < 0)
                return -ENOMEM;
        *ret = p;
        return 0;
}

/* Whether config.json's text may hold a group annotation at all. `start` is on
 * containerd's critical path, and parsing and validating a whole config (~0.26 ms here
 * for Docker's 10 KB) for one value that is mostly absent is most of its own work. A
 * key spelled with \u escapes still goes to the parse. */
static bool may_have_group(const char *text, size_t len) {
        return memmem(text, len, GROUP_ANNOTATION, strlen(GROUP_ANNOTATION)) ||
               memmem(text, len, SANDBOX_ANNOTATION, strlen(SANDBOX_ANNOTATION)) || memmem(text, len, "\\u", 2);
}

/* The grouping key: the pod (sandbox) a container belongs to, else its own id (also
 * when config.json cannot be read or parsed: Create reports that). */
static int group_key(const char *bundle, const char *id, char **ret) {
        struct oci_config cfg;
        _cleanup_free_ char *err = NULL, *path = NULL, *text = NULL;
        size_t len = 0;
        if (asprintf(&path, "%s/config.json", bundle) < 0)
                return -ENOMEM;
        const char *g = NULL;
        int r = read_file_at(AT_FDCWD, path, SPEC_MAX_FILE_SIZE, &text, &len);
        if (r == 0)
                r = may_have_group(text, len) ? oci_config_parse(text, len, &cfg, &err) : -ENODATA;
        if (r == 0) {
                g = oci_config_annotation(&cfg, GROUP_ANNOTATION);
                if (!g)
                        g = oci_config_annotation(&cfg, SANDBOX_ANNOTATION);
        }
        if (g && !identifier_is_valid(g))
                g = NULL; /* a hostile annotation must not shape our paths */
        *ret = strdup(g ? g : id);
        if (r == 0)
                oci_config_done(&cfg);
        return *ret ? 0 : -ENOMEM;
}

/* ------------------------------------------------------------------------------------ */
/* start                                                                                */

static int socket_connectable(const char *path) {
        _cleanup_close_ int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
        if (fd < 0)
                return -errno;
        struct sockaddr_un sa = {.sun_family = AF_UNIX};
        strncpy(sa.sun_path, path, sizeof sa.sun_path - 1);
        if (connect(fd, (struct sockaddr *)&sa, sizeof sa) == 0)
                return 1;
        if (errno != EINPROGRESS && errno != EAGAIN)
                return 0;
        struct pollfd p = {.fd = fd, .events = POLLOUT};
        if (poll(&p, 1, 100) <= 0)
                return 0;
        int err = 0;
        socklen_t l = sizeof err;
        getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &l);
        return err == 0 ? 1 : 0;
}

int launch_listen(const char *path, bool *ret_existing, int *ret_fd) {
        if (strlen(path) > SOCKET_PATH_MAX)
                return -ENAMETOOLONG;
        _cleanup_free_ char *dir = strdup(path);
        if (!dir)
                return -ENOMEM;
        char *slash = strrchr(dir, '/');
        if (slash && slash != dir) {
                *slash = 0;
                /* mkdir -p, each new level private */
                for (char *p = dir + 1; *p; p++)
                        if (*p == '/') {
                                *p = 0;
                                if (mkdir(dir, 0711) < 0 && errno != EEXIST)
                                        return -errno;
                                *p = '/';
                        }
                if (mkdir(dir, 0700) < 0 && errno != EEXIST)
                        return -errno;
                struct stat st;
                if (lstat(dir, &st) < 0)
                        return -errno;
                if (!S_ISDIR(st.st_mode))
                        return -ENOTDIR;
                if ((st.st_mode & 0077) && chmod(dir, 0700) < 0)
                        return -errno;
        }
        /* The starts of one group race here (a pod's containers start in parallel), and
         * a socket bound but not yet listening refuses a connection just as a dead
         * shim's does: a second start took it for stale, unlinked it and bound its own,
         * and the first failed ("No such file or directory") or served a path that was
         * no longer its own. Bind to listen, and the stale check, are done under the
         * directory's lock (advisory, among our own starts). */
        _cleanup_close_ int lockfd = open(slash && slash != dir ? dir : (slash ? "/" : "."),
                                          O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (lockfd < 0)
                return -errno;
        while (flock(lockfd, LOCK_EX) < 0)
                if (errno != EINTR)
                        return -errno;
        for (int attempt = 0; attempt < 2; attempt++) {
                _cleanup_close_ int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
                if (fd < 0)
                        return -errno;
                struct sockaddr_un sa = {.sun_family = AF_UNIX};
                strncpy(sa.sun_path, path, sizeof sa.sun_path - 1);
                mode_t old = umask(0177);
                int br = bind(fd, (struct sockaddr *)&sa, sizeof sa);
                int berr = errno;
                umask(old);
                if (br < 0) {
                        if (berr != EADDRINUSE || attempt > 0)
                                return -berr;
                        if (socket_connectable(path) > 0) {
                                *ret_existing = true;
                                *ret_fd = -1;
                                return 0;
                        }
                        /* A shim that died without cleaning up left its socket: replace it. */
                        struct stat st;
                        if (lstat(path, &st) == 0 && !S_ISSOCK(st.st_mode))
                                return -EEXIST;
                        unlink(path);
                        continue;
                }
                if (chmod(path, 0600) < 0 || listen(fd, SOMAXCONN) < 0) {
                        int e = errno;
                        unlink(path);
                        return -e;
                }
                *ret_existing = false;
                *ret_fd = take_fd(&fd);
                return 0;
        }
        return -EADDRINUSE;
}

static int write_address_file(const char *bundle, const char *address) {
        _cleanup_close_ int dfd = open(bundle, O_DIRECTORY | O_CLOEXEC | O_RDONLY);
        if (dfd < 0)
                return -errno;
        /* no fsync: after a host crash there is no shim to find */
        return write_file_replace_at(dfd, "address", address, strlen(address), 0644);
}

/* The daemon runs without malloc's per-thread cache: its chunks (up to 7 of each small
 * size) are free memory that malloc_trim() cannot give back, about 15 KiB of private
 * heap per shim, for no speed that a mostly idle daemon would notice. glibc reads its
 * tunables from the environment at process start only, so the daemon gets this one
 * appended to GLIBC_TUNABLES (daemon_environ()) and takes it off again at once
 * (daemon_env_restore()), before it runs anything. */
#define DAEMON_TUNABLES "glibc.malloc.tcache_count=0"

/* The daemon's environment: ours with DAEMON_TUNABLES appended to GLIBC_TUNABLES. The
 * array borrows our strings but its GLIBC_TUNABLES entry, *ret_own (to free). */
static char **daemon_environ(char **ret_own) {
        size_t n = 0;
        for (char **e = environ; *e; e++)
                n++;
        char **env = calloc(n + 2, sizeof *env);
        const char *old = getenv("GLIBC_TUNABLES");
        char *tun = NULL;
        if (!env || asprintf(&tun, "GLIBC_TUNABLES=%s%s" DAEMON_TUNABLES, old ? old : "", old && *old ? ":" : "") < 0) {
                free(env);
                return NULL;
        }
        size_t k = 0;
        for (char **e = environ; *e; e++)
                if (strncmp(*e, "GLIBC_TUNABLES=", 15) != 0)
                        env[k++] = *e;
        env[k++] = tun;
        env[k] = NULL;
        *ret_own = tun;
        return env;
}

static void daemon_env_restore(void) {
        const char *v = getenv("GLIBC_TUNABLES");
        size_t n = v ? strlen(v) : 0, t = strlen(DAEMON_TUNABLES);
        if (n < t || strcmp(v + n - t, DAEMON_TUNABLES) != 0)
                return;
        if (n == t) {
                unsetenv("GLIBC_TUNABLES");
                return;
        }
        _cleanup_free_ char *old = strndup(v, n - t - (v[n - t - 1] == ':'));
        if (old)
                setenv("GLIBC_TUNABLES", old, 1);
}

/* Spawn the daemon: own session, stdio on /dev/null (containerd reads start's output
 * until every writer closed it), the listening socket as fd 3, nothing else. With
 * posix_spawn(), whose child shares our memory until it execs (glibc: CLONE_VFORK):
 * it runs at once, while we wait, and the daemon is up sooner than a forked child that
 * waited for a CPU until we had printed our answer and exited (0.7 ms on 2 busy cores,
 * with containerd's Create already on its way to the socket). */
static int spawn_daemon(const struct shim_args *a, const char *bundle, const char *socket_path, int listen_fd,
                        pid_t *ret_pid) {
        char self[PATH_MAX];
        ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
        if (n < 0)
                return -errno;
        self[n] = 0;
        const char *argv[24];
        size_t k = 0;
        argv[k++] = self;
        argv[k++] = "-namespace";
        argv[k++] = a->namespace;
        argv[k++] = "-id";
        argv[k++] = a->id;
        if (a->address) {
                argv[k++] = "-address";
                argv[k++] = a->address;
        }
        argv[k++] = "-socket";
        argv[k++] = socket_path;
        argv[k++] = "-listen-fd";
        argv[k++] = "3";
        if (a->runtime) {
                argv[k++] = "-runtime";
                argv[k++] = a->runtime;
        }
        if (a->runtime_root) {
                argv[k++] = "-runtime-root";
                argv[k++] = a->runtime_root;
        }
        if (a->debug)
                argv[k++] = "-debug";
        argv[k] = NULL;

        /* the sources of the dup2s above fd 3, so that no dup2 overwrites another's */
        _cleanup_close_ int devnull = open("/dev/null", O_RDWR | O_CLOEXEC);
        _cleanup_close_ int lfd = fcntl(listen_fd, F_DUPFD_CLOEXEC, 4);
        _cleanup_close_ int nfd = devnull >= 0 ? fcntl(devnull, F_DUPFD_CLOEXEC, 4) : -1;
        if (lfd < 0 || nfd < 0)
                return -errno;
        _cleanup_free_ char *own = NULL;
        _cleanup_free_ char **env = daemon_environ(&own);
        if (!env)
                return -ENOMEM;
        posix_spawn_file_actions_t fa;
        posix_spawnattr_t at;
        sigset_t none;
        sigemptyset(&none);
        int r = posix_spawn_file_actions_init(&fa);
        if (r != 0)
                return -r;
        r = posix_spawnattr_init(&at);
        if (r != 0) {
                posix_spawn_file_actions_destroy(&fa);
                return -r;
        }
        r = posix_spawnattr_setflags(&at, POSIX_SPAWN_SETSID | POSIX_SPAWN_SETSIGMASK);
        if (r == 0)
                r = posix_spawnattr_setsigmask(&at, &none);
        if (r == 0)
                r = posix_spawn_file_actions_addchdir_np(&fa, bundle);
        for (int fd = 0; r == 0 && fd < 3; fd++)
                r = posix_spawn_file_actions_adddup2(&fa, nfd, fd);
        if (r == 0)
                r = posix_spawn_file_actions_adddup2(&fa, lfd, 3);
        if (r == 0)
                r = posix_spawn_file_actions_addclosefrom_np(&fa, 4);
        pid_t pid = 0;
        if (r == 0)
                r = posix_spawn(&pid, self, &fa, &at, (char *const *)argv, env);
        posix_spawn_file_actions_destroy(&fa);
        posix_spawnattr_destroy(&at);
        if (r != 0)
                return -r;
        *ret_pid = pid;
        return 0;
}

/* As runc-v2 does with a new daemon: oom_score_adj one above containerd's (the shim
 * goes before containerd, after its containers), and the ShimCgroup of the options,
 * if any. Options of a type we do not know are no reason to fail here (Create tells). */
static int place_daemon(pid_t pid, const uint8_t *opts, size_t len) {
        char path[64];
        _cleanup_free_ char *score = NULL;
        snprintf(path, sizeof path, "/proc/%d/oom_score_adj", (int)getppid());
        if (read_file_at(AT_FDCWD, path, 32, &score, NULL) == 0) {
                int adj = atoi(score) + 1;
                char text[16];
                int n = snprintf(text, sizeof text, "%d", MIN(adj, 1000));
                snprintf(path, sizeof path, "/proc/%d/oom_score_adj", (int)pid);
                _cleanup_close_ int sfd = open(path, O_WRONLY | O_CLOEXEC);
                if (sfd < 0 || write(sfd, text, (size_t)n) != n)
                        fprintf(stderr, "warning: cannot set the shim's oom_score_adj\n"); /* not fatal */
        }
        if (len == 0)
                return 0;
        Nanoshim__Types__Any *any = nanoshim__types__any__unpack(NULL, len, opts);
        if (!any)
                return 0;
        struct runtime_options o;
        _cleanup_free_ char *err = NULL;
        int r = 0;
        if (runtime_options_decode(any->type_url, any->value.data, any->value.len, &o, &err) == 0) {
                if (o.shim_cgroup) {
                        r = cgroup_join(NULL, o.shim_cgroup, pid);
                        if (r < 0)
                                fprintf(stderr, "cannot move the shim into cgroup %s: %s\n", o.shim_cgroup,
                                        strerror(-r));
                }
                runtime_options_done(&o);
        }
        nanoshim__types__any__free_unpacked(any, NULL);
        return r;
}

/* containerd's opt plugin puts /opt/containerd/lib in front of LD_LIBRARY_PATH with a
 * colon, also when the variable was unset: "/opt/containerd/lib:", whose empty entry is
 * the current directory. Every dynamically linked runtime we start (runc, and runc
 * init, which re-executes it) then looks for its libraries in the bundle, where it
 * runs, before the system's directories: ~60 failed opens per runc process, and root
 * loading whatever libc.so.6 a bundle directory held. Only absolute entries stay; an
 * LD_LIBRARY_PATH left empty goes. runc-v2 passes it on as it came. */
void launch_clean_library_path(void) {
        const char *v = getenv("LD_LIBRARY_PATH");
        if (!v)
                return;
        size_t n = strlen(v), k = 0;
        _cleanup_free_ char *out = malloc(n + 1);
        if (!out)
                return;
        for (const char *p = v;;) {
                const char *e = strchrnul(p, ':');
                if (*p == '/') {
                        if (k > 0)
                                out[k++] = ':';
                        memcpy(out + k, p, (size_t)(e - p));
                        k += (size_t)(e - p);
                }
                if (!*e)
                        break;
                p = e + 1;
        }
        out[k] = 0;
        if (k == 0)
                unsetenv("LD_LIBRARY_PATH");
        else if (k != n)
                setenv("LD_LIBRARY_PATH", out, 1);
}

/* Which answer `start` gives. containerd 1.6 takes the output as a bare address. 1.7 and
 * 2.x parse bootstrap JSON {"version","address","protocol"}: 1.7 refuses a version above
 * 2, 2.x takes 3 and then calls containerd.task.v3.Task (its own runc shim answers 3).
 * 1.7 and 2.x both set MAX_SHIM_VERSION=2 (the shim binary API, the ".v2" of the runtime
 * name, not the task API) and nothing else in the call tells them apart, so ask the
 * binary containerd names with -publish-binary, itself (go-buildinfo.c). Whatever cannot
 * be read falls back to version 2, which 1.7 and 2.x both accept. */
int launch_bootstrap_version(const char *publish_binary) {
        if (!getenv("MAX_SHIM_VERSION"))
                return 0; /* containerd 1.6: a bare address */
        return publish_binary && containerd_binary_major(publish_binary) >= 2 ? 3 : 2;
}

/* What `start` prints: the address, or bootstrap JSON for VERSION >= 2. */
static int print_start_answer(const char *address, int version) {
        if (version > 0) {
                json_t *j = json_pack("{s:i,s:s,s:s}", "version", version, "address", address, "protocol", "ttrpc");
                char *text = j ? json_dumps(j, JSON_COMPACT) : NULL;
                json_decref(j);
                if (!text)
                        return -ENOMEM;
                fputs(text, stdout);
                free(text);
        } else
                fputs(address, stdout);
        return fflush(stdout) == 0 ? 0 : -EIO;
}

int launch_start(const struct shim_args *a) {
        char cwd[PATH_MAX];
        const char *bundle = a->bundle;
        if (!bundle) {
                if (!getcwd(cwd, sizeof cwd)) {
                        fprintf(stderr, "cannot get the working directory: %s\n", strerror(errno));
                        return -errno;
                }
                bundle = cwd;
        }
        if (!identifier_is_valid(a->id)) {
                fprintf(stderr, "invalid or missing container id (-id) \"%s\"\n", a->id ? a->id : "");
                return -EINVAL;
        }
        if (!identifier_is_valid(a->namespace)) {
                fprintf(stderr, "invalid namespace \"%s\"\n", a->namespace);
                return -EINVAL;
        }
        /* containerd writes the task options to stdin (an Any); read all of it so that
         * it never blocks, keep what fits. */
        uint8_t opts_buf[65536], sink[512];
        size_t opts_len = 0;
        for (;;) {
                bool full = opts_len == sizeof opts_buf;
                ssize_t n = full ? read(STDIN_FILENO, sink, sizeof sink)
                                 : read(STDIN_FILENO, opts_buf + opts_len, sizeof opts_buf - opts_len);
                if (n < 0 && errno == EINTR)
                        continue;
                if (n <= 0)
                        break;
                if (!full)
                        opts_len += (size_t)n;
        }

        _cleanup_free_ char *group = NULL, *path = NULL, *address = NULL;
        int r = group_key(bundle, a->id, &group);
        if (r == 0)
                r = launch_socket_path(a->address, a->namespace, group, &path);
        if (r < 0) {
                fprintf(stderr, "cannot name the shim socket: %s\n", strerror(-r));
                return r;
        }
        if (asprintf(&address, "unix://%s", path) < 0)
                return -ENOMEM;
        bool existing = false;
        _cleanup_close_ int fd = -1;
        r = launch_listen(path, &existing, &fd);
        if (r < 0) {
                fprintf(stderr, "cannot listen on %s: %s\n", path, strerror(-r));
                return r;
        }
        r = write_address_file(bundle, address);
        if (r < 0) {
                fprintf(stderr, "cannot write %s/address: %s\n", bundle, strerror(-r));
                if (!existing)
                        unlink(path);
                return r;
        }
        if (!existing) {
                pid_t pid = 0;
                r = spawn_daemon(a, bundle, path, fd, &pid);
                if (r < 0)
                        fprintf(stderr, "cannot start the shim daemon: %s\n", strerror(-r));
                else
                        r = place_daemon(pid, opts_buf, opts_len); /* says why itself */
                if (r < 0) {
                        if (pid > 0)
                                kill(pid, SIGKILL);
                        unlink(path);
                        return r;
                }
        }
        return print_start_answer(address, launch_bootstrap_version(a->publish_binary));
}

/* ------------------------------------------------------------------------------------ */
/* delete                                                                               */

struct delete_state {
        bool done;
};

static void on_force_deleted(const struct runtime_result *res, void *userdata) {
        struct delete_state *d = userdata;
        if (res->exit_status != 0 && res->error && !runtime_error_not_exist(res->error))
                fprintf(stderr, "runtime delete: %s\n", res->error);
        d->done = true;
        ev_break(EV_DEFAULT, EVBREAK_ALL);
}

/* The runtime binary and root the daemon used, from the options it saved. */
static void load_runtime_choice(const char *bundle, char **binary, char **root) {
        _cleanup_free_ char *path = NULL, *buf = NULL;
        if (asprintf(&path, "%s/options.json", bundle) < 0)
                return;
        size_t len;
        if (read_file_at(AT_FDCWD, path, 64 * 1024, &buf, &len) < 0)
                return;
        json_t *j = json_loadb(buf, len, 0, NULL);
        if (!json_is_object(j)) {
                json_decref(j);
                return;
        }
        const char *b = json_string_value(json_object_get(j, "binary_name"));
        const char *r = json_string_value(json_object_get(j, "root"));
        if (b && *b) {
                free(*binary);
                *binary = strdup(b);
        }
        if (r && *r) {
                free(*root);
                *root = strdup(r);
        }
        json_decref(j);
}

int launch_delete(const struct shim_args *a) {
        char cwd[PATH_MAX];
        const char *bundle = a->bundle;
        if (!bundle) {
                if (!getcwd(cwd, sizeof cwd))
                        return -errno;
                bundle = cwd;
        }
        if (!identifier_is_valid(a->id) || !identifier_is_valid(a->namespace)) {
                fprintf(stderr, "invalid container id or namespace\n");
                return -EINVAL;
        }
        _cleanup_free_ char *binary = strdup(a->runtime ? a->runtime : "runc");
        _cleanup_free_ char *root = NULL;
        if (a->runtime_root)
                root = strdup(a->runtime_root);
        else if (asprintf(&root, "/run/containerd/runc/%s", a->namespace) < 0)
                root = NULL;
        if (!binary || !root)
                return -ENOMEM;
        load_runtime_choice(bundle, &binary, &root);
        _cleanup_free_ char *log_path = NULL, *rootfs = NULL, *pidfile = NULL;
        if (asprintf(&log_path, "%s/log.json", bundle) < 0 || asprintf(&rootfs, "%s/rootfs", bundle) < 0 ||
            asprintf(&pidfile, "%s/init.pid", bundle) < 0)
                return -ENOMEM;

        struct ev_loop *loop = EV_DEFAULT;
        struct reaper *reaper = NULL;
        struct runtime *rt = NULL;
        struct delete_state d = {0};
        struct runtime_config cfg = {.binary = binary, .root = root, .log_path = log_path};
        /* containerd runs this after every shim, also one that deleted its container
         * and exited cleanly: the runtime is only started (a Go start-up for runc) when
         * it still has state for the container (runc and crun: a directory <root>/<id>). */
        _cleanup_free_ char *state_dir = NULL;
        struct stat sst;
        bool has_state = asprintf(&state_dir, "%s/%s", root, a->id) < 0 || lstat(state_dir, &sst) == 0 ||
                         errno != ENOENT;
        int r = 0;
        if (has_state) {
                r = reaper_new(loop, &reaper);
                if (r == 0)
                        r = runtime_new(loop, reaper, &cfg, &rt);
                if (r == 0)
                        r = runtime_delete(rt, a->id, true, on_force_deleted, &d);
                if (r == 0)
                        while (!d.done)
                                ev_run(loop, EVRUN_ONCE);
                else
                        fprintf(stderr, "cannot run the runtime's delete: %s\n", strerror(-r));
                runtime_free(rt);
                reaper_free(reaper);
        }

        r = unmount_all(rootfs);
        if (r < 0)
                fprintf(stderr, "cannot unmount %s: %s\n", rootfs, strerror(-r));

        pid_t pid = 0;
        (void)read_pid_file_at(AT_FDCWD, pidfile, &pid);

        /* The daemon is gone (that is why we run): remove its socket unless another
         * container of the group still has a live shim on it. */
        _cleanup_free_ char *group = NULL, *path = NULL;
        if (group_key(bundle, a->id, &group) == 0 && launch_socket_path(a->address, a->namespace, group, &path) == 0 &&
            socket_connectable(path) <= 0)
                unlink(path);

        /* The exit the daemon recorded before it died, if any; else 137 (containerd's
         * convention for "killed, status unknown") and now. */
        int status = 128 + SIGKILL;
        struct timespec when = now_realtime();
        _cleanup_free_ char *rec = NULL, *rec_path = NULL;
        if (asprintf(&rec_path, "%s/init.exit", bundle) > 0 && read_file_at(AT_FDCWD, rec_path, 128, &rec, NULL) == 0) {
                const char *p = rec;
                uint64_t st, sec, nsec, oom;
                if (scan_u64(&p, 10, 255, &st) == 0 && scan_u64(&p, 10, INT64_MAX, &sec) == 0 &&
                    scan_u64(&p, 10, 999999999, &nsec) == 0 && scan_u64(&p, 10, INT_MAX, &oom) == 0) {
                        status = (int)st;
                        when.tv_sec = (time_t)sec;
                        when.tv_nsec = (long)nsec;
                }
        }
        Nanoshim__Task__DeleteResponse resp = NANOSHIM__TASK__DELETE_RESPONSE__INIT;
        Nanoshim__Types__Timestamp ts;
        timestamp_set(&ts, &when);
        resp.pid = (uint32_t)pid;
        resp.exit_status = (uint32_t)status;
        resp.exited_at = &ts;
        uint8_t buf[64];
        size_t len = nanoshim__task__delete_response__pack(&resp, buf);
        return loop_write(STDOUT_FILENO, buf, len);
}

/* ------------------------------------------------------------------------------------ */
/* daemon                                                                               */

struct launch_outcome {
        struct shim *shim;
        const char *final_path;
        bool failed;
};

/* A launch whose Create (with `start`: runtime `run --detach`) failed leaves nothing to
 * supervise: the shim exits with an error (the runtime's message is in its log).
 * Otherwise the socket takes its real name. */
static void on_launched(int status, void *ud) {
        struct launch_outcome *o = ud;
        struct shim *s = o->shim;
        if (status < 0 && container_count(s) == 0) {
                o->failed = true;
                shim_exit(s);
                return;
        }
        char *final = strdup(o->final_path);
        if (!final || rename(s->socket_path, final) < 0) {
                log_error_errno(final ? -errno : -ENOMEM, "cannot move the socket to %s: %m", o->final_path);
                free(final);
                return;
        }
        free(s->socket_path);
        s->socket_path = final;
        log_info("launched: serving %s", final);
}

int launch_daemon(const struct shim_args *a) {
        daemon_env_restore(); /* what we run inherits the environment containerd gave us */
        /* containerd's log FIFO in the bundle becomes our stderr. Opened non-blocking:
         * a reader that goes away costs log lines, never the shim. */
        int logfd = open("log", O_WRONLY | O_NONBLOCK | O_CLOEXEC | O_NOFOLLOW);
        if (logfd >= 0) {
                struct stat st;
                if (fstat(logfd, &st) == 0 && S_ISFIFO(st.st_mode) && dup2(logfd, STDERR_FILENO) >= 0) {
                        /* dup2 clears FD_CLOEXEC on fd 2: runtimes we spawn get their own stdio. */
                }
                close(logfd);
        }
        fd_set_nonblock(STDERR_FILENO, true);
        log_setup(STDERR_FILENO, a->debug ? LOG_LEVEL_DEBUG : LOG_LEVEL_INFO, identifier_is_valid(a->id) ? a->id : NULL);

        if (!identifier_is_valid(a->namespace))
                return log_error_errno(-EINVAL, "invalid namespace \"%s\"", a->namespace);

        struct standalone_launch sl = {0};
        _cleanup_free_ char *bundle = NULL, *launching = NULL;
        const char *serve_path = a->socket;
        if (a->launch && !a->socket)
                return log_error_errno(-EINVAL, "-launch needs -socket PATH");
        if (a->listen_fd < 0 && a->socket && strlen(a->socket) + strlen(".launching") <= SOCKET_PATH_MAX) {
                /* We bind it ourselves: under a temporary name, renamed into place once we
                 * listen (with -launch: once the container is created and started), so
                 * that the path appearing means a connect will be answered. */
                if (asprintf(&launching, "%s.launching", a->socket) < 0)
                        return log_error_errno(-ENOMEM, "out of memory");
                serve_path = launching;
        }
        if (a->launch) {
                bundle = realpath(a->bundle ? a->bundle : ".", NULL);
                if (!bundle)
                        return log_error_errno(-errno, "bundle %s: %m", a->bundle ? a->bundle : ".");
                _cleanup_free_ char *err = NULL;
                int r = standalone_load(bundle, a->id, &sl, &err);
                if (r < 0) {
                        log_error("%s", err ? err : strerror(-r));
                        return r;
                }
        }

        int listen_fd = a->listen_fd;
        if (listen_fd < 0) {
                if (!a->socket)
                        return log_error_errno(-EINVAL, "no socket to serve: give -socket PATH");
                bool existing = false;
                if (socket_connectable(a->socket) > 0)
                        return log_error_errno(-EADDRINUSE, "a shim already serves %s", a->socket);
                int r = launch_listen(serve_path, &existing, &listen_fd);
                if (r < 0)
                        return log_error_errno(r, "cannot listen on %s: %m", serve_path);
                if (existing)
                        return log_error_errno(-EADDRINUSE, "a shim already serves %s", serve_path);
                if (!a->launch && serve_path != a->socket) {
                        if (rename(serve_path, a->socket) < 0) {
                                r = -errno;
                                unlink(serve_path);
                                return log_error_errno(r, "cannot move the socket to %s: %m", a->socket);
                        }
                        serve_path = a->socket;
                }
        } else {
                fd_set_cloexec(listen_fd, true);
        }
        int keep[] = {listen_fd};
        close_all_fds_except(keep, 1);
        /* A node holds a shim per container, and each fd at rest is kernel memory held
         * for the container's whole life. stdin is /dev/null, never read: every child
         * gets its 0-2 set explicitly. Like an inetd "wait" service, the listening
         * socket takes its place (its close puts /dev/null back: close_keep_std). */
        int rm = fd_move_to_stdin(listen_fd);
        if (rm < 0)
                return log_error_errno(rm, "cannot move the listening socket to stdin: %m");
        listen_fd = STDIN_FILENO;

        const char *events = a->events_address     ? a->events_address
                             : sl.events_address ? sl.events_address
                                                 : getenv("TTRPC_ADDRESS");
        struct shim_config cfg = {
                .namespace = a->namespace,
                .events_address = events,
                .socket_path = serve_path,
                .listen_fd = listen_fd,
                .runtime_binary = a->runtime,
                .runtime_root = a->runtime_root,
                .debug = a->debug,
                .dispatch = task_service_dispatch,
                .forget_all = container_forget_all,
        };
        struct shim *s = NULL;
        int r = shim_new(EV_DEFAULT, &cfg, &s);
        if (r < 0) {
                standalone_done(&sl);
                return log_error_errno(r, "cannot start the shim: %m");
        }
        log_info("serving %s (namespace %s, events to %s)", a->socket ? a->socket : "inherited socket", a->namespace,
                 events && *events ? events : "nowhere");
        struct launch_outcome outcome = {.shim = s, .final_path = a->socket};
        if (a->launch) {
                r = standalone_run(EV_DEFAULT, serve_path, bundle, &sl, on_launched, &outcome);
                if (r < 0) {
                        log_error_errno(r, "cannot launch the container: %m");
                        outcome.failed = true;
                        shim_exit(s);
                }
        }
        standalone_done(&sl);
        ev_run(EV_DEFAULT, 0);
        r = shim_finish(s);
        return outcome.failed ? -EIO : r;
}
