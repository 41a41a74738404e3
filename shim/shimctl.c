/* SPDX-License-Identifier: Apache-2.0 */
/* shimctl: drive a live nanoshim over its socket, one Task call per command, and
 * receive its events (`shimctl events` serves the Events/Forward a shim sends).
 *
 * Exit codes: 0 done; 1 the shim answered with an error; 2 bad usage; 3 no connection
 * to the socket. `wait` exits with the process's exit status instead. */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <math.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <ev.h>
#include <jansson.h>

#include "config.h"
#include "events.h"
#include "events.pb-c.h"
#include "file-util.h"
#include "ids.h"
#include "macro.h"
#include "runc-options.pb-c.h"
#include "task.pb-c.h"
#include "task-service.h"
#include "timeutil.h"
#include "ttrpc.h"

#define PROCESS_SPEC_TYPE "types.containerd.io/opencontainers/runtime-spec/1/Process"
#define RESOURCES_TYPE "types.containerd.io/opencontainers/runtime-spec/1/LinuxResources"
#define RUNC_OPTIONS_TYPE_URL "containerd.runc.v1.Options"
#define DEFAULT_TIMEOUT_S 30.0
#define JSON_FILE_MAX (1024 * 1024)
#define EXEC_DEFAULT_PATH "PATH=/usr/sbin:/usr/bin:/sbin:/bin"

enum {
        EXIT_OK = 0,
        EXIT_CALL_FAILED = 1,
        EXIT_USAGE = 2,
        EXIT_NO_CONNECTION = 3,
};

struct ctl {
        struct ev_loop *loop;
        const char *address;
        double timeout_s; /* < 0: the command's default */
        bool check_ids;
        bool timestamps;  /* -T: when each call was sent and answered, on stderr */
        const char *command;
        bool chained;     /* more commands follow (see "+" in main) */
};

/* ------------------------------------------------------------------------------------ */
/* usage and small helpers                                                              */

static void usage(FILE *f) {
        fputs("Usage: shimctl [-a SOCKET] [--timeout SECONDS] [-T] COMMAND [ARGS...]\n"
              "\n"
              "Drive a live nanoshim (containerd.task.v2.Task over ttrpc) from a shell.\n"
              "\n"
              "Global options:\n"
              "  -a, --address SOCKET   the shim's socket (default $NANOSHIM_SOCKET; unix:// accepted)\n"
              "      --timeout SECONDS  give up on the call after this long; 0 = never\n"
              "                         (default: never for wait, 30 otherwise)\n"
              "      --no-id-check      send ids as given, without checking them here first\n"
              "  -T, --timestamps       print on stderr when each call was sent and answered\n"
              "                         (\"shimctl: METHOD sent S.US answered S.US\", wall clock)\n"
              "  -h, --help             this text\n"
              "      --version          print the version\n"
              "\n"
              "Commands:\n"
              "  create ID --bundle DIR [--stdin P] [--stdout P] [--stderr P] [--terminal]\n"
              "         [--runtime-binary BIN] [--runtime-root DIR]        prints the init's pid\n"
              "  start ID [--exec EXEC]                                   prints the pid\n"
              "  state ID [--exec EXEC]                                   prints one JSON object\n"
              "  pids ID                                                  prints a JSON array\n"
              "  exec ID EXEC [--terminal] [--stdin P] [--stdout P] [--stderr P]\n"
              "       (--spec FILE | -- CMD [ARGS...])     FILE: an OCI process JSON; CMD runs with\n"
              "                                            cwd /, uid 0 and a default PATH\n"
              "  kill ID [--exec EXEC] [--signal N|NAME] [--all]          default signal: TERM\n"
              "  wait ID [--exec EXEC]             prints the exit status and exits with it\n"
              "  delete ID [--exec EXEC]           prints JSON {pid, exit_status, exited_at}\n"
              "  shutdown ID [--now]\n"
              "  connect ID                        prints JSON {shim_pid, task_pid, version}\n"
              "  close-io ID [--exec EXEC]         closes the process's stdin\n"
              "  resize ID WIDTH HEIGHT [--exec EXEC]\n"
              "  pause ID\n"
              "  resume ID\n"
              "  update ID --resources FILE        FILE: OCI LinuxResources JSON\n"
              "  stats ID                          prints the metrics' type_url and byte size\n"
              "  events --listen SOCKET [--count N] [--fail-first N] [--batch N]\n"
              "         serve containerd.services.events.ttrpc.v1.Events/Forward on SOCKET (its\n"
              "         directory is created 0700 if missing) and print each event as one JSON\n"
              "         line; exit after N events with --count; answer the first N Forwards\n"
              "         with UNAVAILABLE with --fail-first (to test a sender's retries); with\n"
              "         --batch, hold the answers until N Forwards wait at once (or 2 s went by:\n"
              "         said on stderr, as is a container with two events waiting at once)\n"
              "\n"
              "Chaining: commands separated by a lone '+' run in order in one process, e.g.\n"
              "  shimctl -a S kill c1 --signal KILL + wait c1 + delete c1 + shutdown c1\n"
              "The first command that fails ends the chain with its status; a wait before\n"
              "the last command prints the exit status and the chain goes on.\n"
              "\n"
              "Exit status: 0 success, 1 the shim returned an error, 2 usage error, 3 cannot\n"
              "connect to the socket; wait exits with the process's exit status.\n",
              f);
}

static int usage_error(const struct ctl *ctl, const char *fmt, ...) _printf_(2, 3);
static int usage_error(const struct ctl *ctl, const char *fmt, ...) {
        va_list ap;
        fprintf(stderr, "shimctl%s%s: ", ctl->command ? " " : "", ctl->command ? ctl->command : "");
        va_start(ap, fmt);
        vfprintf(stderr, fmt, ap);
        va_end(ap);
        fputs("\n(see shimctl --help)\n", stderr);
        return EXIT_USAGE;
}

static int parse_uint(const char *s, unsigned long max, unsigned long *ret) {
        if (!s || !*s || *s == '-' || *s == '+')
                return -EINVAL;
        char *end = NULL;
        errno = 0;
        unsigned long v = strtoul(s, &end, 10);
        if (errno != 0 || *end != 0 || v > max)
                return -EINVAL;
        *ret = v;
        return 0;
}

static int parse_signal(const char *s, int *ret) {
        unsigned long n;
        if (parse_uint(s, 64, &n) == 0) {
                if (n == 0)
                        return -EINVAL;
                *ret = (int)n;
                return 0;
        }
        const char *name = strncasecmp(s, "SIG", 3) == 0 ? s + 3 : s;
        for (int sig = 1; sig < NSIG && sig < 65; sig++) {
                const char *abbrev = sigabbrev_np(sig);
                if (abbrev && strcasecmp(abbrev, name) == 0) {
                        *ret = sig;
                        return 0;
                }
        }
        return -EINVAL;
}

/* An id that becomes a path or a name in the shim: checked here too, so that the
 * mistake is explained before anything is sent. */
static int check_id(const struct ctl *ctl, const char *what, const char *id) {
        if (!id)
                return usage_error(ctl, "missing %s", what);
        if (ctl->check_ids && !identifier_is_valid(id))
                return usage_error(ctl,
                                   "invalid %s \"%s\": 1 to %d characters, letters and digits separated by "
                                   "single '.', '_' or '-'",
                                   what, id, IDENTIFIER_MAX);
        return 0;
}

static int read_json_object_file(const struct ctl *ctl, const char *path, char **ret_text, size_t *ret_len) {
        _cleanup_free_ char *buf = NULL;
        size_t len = 0;
        int r = read_file_at(AT_FDCWD, path, JSON_FILE_MAX, &buf, &len);
        if (r < 0) {
                fprintf(stderr, "shimctl %s: cannot read %s: %s\n", ctl->command, path, strerror(-r));
                return EXIT_USAGE;
        }
        json_error_t jerr;
        json_t *j = json_loadb(buf, len, 0, &jerr);
        bool ok = j && json_is_object(j);
        json_decref(j);
        if (!ok) {
                fprintf(stderr, "shimctl %s: %s is not a JSON object%s%s\n", ctl->command, path, j ? "" : ": ",
                        j ? "" : jerr.text);
                return EXIT_USAGE;
        }
        *ret_text = TAKE_PTR(buf);
        *ret_len = len;
        return 0;
}

/* RFC 3339 with nanoseconds in UTC, or JSON null for "never" (unset or Go's zero time). */
static json_t *json_timestamp(const Nanoshim__Types__Timestamp *ts) {
        if (!ts || ts->seconds == GO_ZERO_TIME_SECONDS || (ts->seconds == 0 && ts->nanos == 0))
                return json_null();
        time_t t = (time_t)ts->seconds;
        struct tm tm;
        if (!gmtime_r(&t, &tm))
                return json_null();
        char date[64], buf[96];
        strftime(date, sizeof date, "%Y-%m-%dT%H:%M:%S", &tm);
        snprintf(buf, sizeof buf, "%s.%09dZ", date, ts->nanos >= 0 && ts->nanos < 1000000000 ? ts->nanos : 0);
        return json_string(buf);
}

static int print_json(json_t *j) {
        if (!j) {
                fputs("shimctl: out of memory\n", stderr);
                return EXIT_CALL_FAILED;
        }
        char *text = json_dumps(j, JSON_COMPACT | JSON_ENCODE_ANY);
        json_decref(j);
        if (!text) {
                fputs("shimctl: out of memory\n", stderr);
                return EXIT_CALL_FAILED;
        }
        puts(text);
        free(text);
        return fflush(stdout) == 0 ? EXIT_OK : EXIT_CALL_FAILED;
}

/* ------------------------------------------------------------------------------------ */
/* one call                                                                             */

struct reply {
        bool done;
        int code;
        char *message;
        uint8_t *data;
        size_t len;
};

static void on_reply(int code, const char *message, const uint8_t *resp, size_t resp_len, void *userdata) {
        struct reply *r = userdata;
        r->done = true;
        r->code = code;
        r->message = strdup(message ? message : "");
        if (code == TTRPC_OK && resp_len > 0) {
                r->data = malloc(resp_len);
                if (r->data) {
                        memcpy(r->data, resp, resp_len);
                        r->len = resp_len;
                } else
                        r->code = TTRPC_RESOURCE_EXHAUSTED;
        }
}

static const char *socket_path(const char *address) {
        return strncmp(address, "unix://", 7) == 0 ? address + 7 : address;
}

/* Sends req as `method` and waits for the answer. On success *ret_resp (if asked for)
 * is the decoded response. Returns the exit code, with the failure on stderr. */
static int ctl_call(const struct ctl *ctl, double default_timeout_s, const char *method, const ProtobufCMessage *req,
                    const ProtobufCMessageDescriptor *resp_desc, ProtobufCMessage **ret_resp) {
        struct ttrpc_client *client = NULL;
        int r = ttrpc_client_connect(ctl->loop, ctl->address, &client);
        if (r < 0) {
                fprintf(stderr, "shimctl: cannot connect to the shim at %s: %s%s\n", socket_path(ctl->address),
                        strerror(-r), r == -ENOENT || r == -ECONNREFUSED ? " (is the shim running?)" : "");
                return EXIT_NO_CONNECTION;
        }
        double timeout_s = ctl->timeout_s >= 0 ? ctl->timeout_s : default_timeout_s;
        int64_t timeout_ns = (int64_t)(timeout_s * 1e9);
        struct reply rep = {0};
        struct timespec sent = now_realtime();
        r = ttrpc_client_call(client, TASK_SERVICE_V2, method, req, timeout_ns, NULL, 0, on_reply, &rep);
        if (r < 0) {
                ttrpc_client_free(client);
                fprintf(stderr, "shimctl: cannot send %s to %s: %s\n", method, socket_path(ctl->address),
                        strerror(-r));
                return r == -ENOTCONN || r == -EPIPE ? EXIT_NO_CONNECTION : EXIT_CALL_FAILED;
        }
        while (!rep.done)
                ev_run(ctl->loop, EVRUN_ONCE);
        if (ctl->timestamps) {
                struct timespec answered = now_realtime();
                fprintf(stderr, "shimctl: %s sent %lld.%06ld answered %lld.%06ld\n", method, (long long)sent.tv_sec,
                        sent.tv_nsec / 1000, (long long)answered.tv_sec, answered.tv_nsec / 1000);
        }
        bool lost = rep.code == TTRPC_UNAVAILABLE && ttrpc_client_is_closed(client);
        ttrpc_client_free(client);

        _cleanup_free_ char *message = rep.message;
        _cleanup_free_ uint8_t *data = rep.data;
        if (lost) {
                fprintf(stderr, "shimctl: lost the connection to the shim at %s during %s (%s)\n",
                        socket_path(ctl->address), method, message ? message : "closed");
                return EXIT_NO_CONNECTION;
        }
        if (rep.code == TTRPC_DEADLINE_EXCEEDED && (!message || !*message || strstr(message, "ttrpc"))) {
                fprintf(stderr, "shimctl: %s: no answer within %g s (%s)\n", method, timeout_s,
                        ttrpc_code_to_string(rep.code));
                return EXIT_CALL_FAILED;
        }
        if (rep.code != TTRPC_OK) {
                fprintf(stderr, "shimctl: %s (%s)\n", message && *message ? message : "failed",
                        ttrpc_code_to_string(rep.code));
                return EXIT_CALL_FAILED;
        }
        if (!resp_desc)
                return EXIT_OK;
        ProtobufCMessage *m = protobuf_c_message_unpack(resp_desc, NULL, data ? rep.len : 0, data);
        if (!m) {
                fprintf(stderr, "shimctl: cannot decode the answer to %s\n", method);
                return EXIT_CALL_FAILED;
        }
        *ret_resp = m;
        return EXIT_OK;
}

/* ------------------------------------------------------------------------------------ */
/* command-line parsing of one command                                                  */

enum {
        OPT_BUNDLE = 0x100,
        OPT_STDIN,
        OPT_STDOUT,
        OPT_STDERR,
        OPT_TERMINAL,
        OPT_RUNTIME_BINARY,
        OPT_RUNTIME_ROOT,
        OPT_EXEC,
        OPT_SPEC,
        OPT_SIGNAL,
        OPT_ALL,
        OPT_NOW,
        OPT_RESOURCES,
        OPT_LISTEN,
        OPT_COUNT,
        OPT_FAIL_FIRST,
        OPT_BATCH,
};

struct cmd_opts {
        const char *bundle, *stdin_path, *stdout_path, *stderr_path, *runtime_binary, *runtime_root;
        const char *exec_id, *spec, *signal, *resources, *listen;
        const char *count, *fail_first, *batch;
        bool terminal, all, now;
        char **args; /* positional arguments (after the command name) */
        int n_args;
        bool dashdash; /* a `--` was given: args after `dashdash_at` are a command line */
        int dashdash_at;
};

/* Parses argv[0] = command name, then options from `allowed` (a string of OPT_ bits is
 * overkill: a list of long option names). Returns 0 or an exit code. */
static int parse_cmd(const struct ctl *ctl, int argc, char **argv, const char *const *allowed, struct cmd_opts *o) {
        static const struct option all_opts[] = {
                {"bundle", required_argument, NULL, OPT_BUNDLE},
                {"stdin", required_argument, NULL, OPT_STDIN},
                {"stdout", required_argument, NULL, OPT_STDOUT},
                {"stderr", required_argument, NULL, OPT_STDERR},
                {"terminal", no_argument, NULL, OPT_TERMINAL},
                {"runtime-binary", required_argument, NULL, OPT_RUNTIME_BINARY},
                {"runtime-root", required_argument, NULL, OPT_RUNTIME_ROOT},
                {"exec", required_argument, NULL, OPT_EXEC},
                {"spec", required_argument, NULL, OPT_SPEC},
                {"signal", required_argument, NULL, OPT_SIGNAL},
                {"all", no_argument, NULL, OPT_ALL},
                {"now", no_argument, NULL, OPT_NOW},
                {"resources", required_argument, NULL, OPT_RESOURCES},
                {"listen", required_argument, NULL, OPT_LISTEN},
                {"count", required_argument, NULL, OPT_COUNT},
                {"fail-first", required_argument, NULL, OPT_FAIL_FIRST},
                {"batch", required_argument, NULL, OPT_BATCH},
                {NULL, 0, NULL, 0},
        };
        struct option opts[ELEMENTSOF(all_opts)];
        size_t n = 0;
        for (size_t i = 0; all_opts[i].name; i++)
                for (const char *const *a = allowed; *a; a++)
                        if (strcmp(*a, all_opts[i].name) == 0)
                                opts[n++] = all_opts[i];
        opts[n] = (struct option){NULL, 0, NULL, 0};

        *o = (struct cmd_opts){0};
        /* The command line after `--` belongs to the container: find it before getopt
         * permutes anything. */
        int end = argc;
        for (int i = 1; i < argc; i++)
                if (strcmp(argv[i], "--") == 0) {
                        end = i;
                        o->dashdash = true;
                        break;
                }
        optind = 0; /* full re-initialisation of GNU getopt */
        opterr = 0;
        int c;
        while ((c = getopt_long(end, argv, ":", opts, NULL)) != -1) {
                switch (c) {
                case OPT_BUNDLE: o->bundle = optarg; break;
                case OPT_STDIN: o->stdin_path = optarg; break;
                case OPT_STDOUT: o->stdout_path = optarg; break;
                case OPT_STDERR: o->stderr_path = optarg; break;
                case OPT_TERMINAL: o->terminal = true; break;
                case OPT_RUNTIME_BINARY: o->runtime_binary = optarg; break;
                case OPT_RUNTIME_ROOT: o->runtime_root = optarg; break;
                case OPT_EXEC: o->exec_id = optarg; break;
                case OPT_SPEC: o->spec = optarg; break;
                case OPT_SIGNAL: o->signal = optarg; break;
                case OPT_ALL: o->all = true; break;
                case OPT_NOW: o->now = true; break;
                case OPT_RESOURCES: o->resources = optarg; break;
                case OPT_LISTEN: o->listen = optarg; break;
                case OPT_COUNT: o->count = optarg; break;
                case OPT_FAIL_FIRST: o->fail_first = optarg; break;
                case OPT_BATCH: o->batch = optarg; break;
                case ':':
                        return usage_error(ctl, "option '%s' needs a value", argv[optind - 1]);
                default:
                        return usage_error(ctl, "unknown option '%s'", argv[optind - 1]);
                }
        }
        /* getopt moved the positional arguments to [optind, end). */
        o->args = argv + optind;
        o->n_args = end - optind;
        o->dashdash_at = end + 1;
        return 0;
}

static int want_args(const struct ctl *ctl, const struct cmd_opts *o, int n, const char *names) {
        if (o->n_args < n)
                return usage_error(ctl, "missing arguments: expected %s", names);
        if (o->n_args > n)
                return usage_error(ctl, "unexpected argument '%s'", o->args[n]);
        return 0;
}

static int want_no_dashdash(const struct ctl *ctl, const struct cmd_opts *o) {
        return o->dashdash ? usage_error(ctl, "a command line after '--' is only for exec") : 0;
}

/* ------------------------------------------------------------------------------------ */
/* task commands                                                                        */

static int cmd_create(struct ctl *ctl, int argc, char **argv) {
        static const char *const allowed[] = {"bundle",   "stdin",          "stdout",       "stderr",
                                              "terminal", "runtime-binary", "runtime-root", NULL};
        struct cmd_opts o;
        int r = parse_cmd(ctl, argc, argv, allowed, &o);
        if (r == 0)
                r = want_args(ctl, &o, 1, "ID");
        if (r == 0)
                r = want_no_dashdash(ctl, &o);
        if (r == 0)
                r = check_id(ctl, "container id", o.args[0]);
        if (r != 0)
                return r;
        if (!o.bundle)
                return usage_error(ctl, "--bundle DIR is required");
        char bundle[PATH_MAX];
        if (!realpath(o.bundle, bundle)) {
                fprintf(stderr, "shimctl create: bundle %s: %s\n", o.bundle, strerror(errno));
                return EXIT_USAGE;
        }

        Nanoshim__Task__CreateTaskRequest req = NANOSHIM__TASK__CREATE_TASK_REQUEST__INIT;
        req.id = o.args[0];
        req.bundle = bundle;
        req.terminal = o.terminal;
        req.stdin = (char *)(o.stdin_path ? o.stdin_path : "");
        req.stdout = (char *)(o.stdout_path ? o.stdout_path : "");
        req.stderr = (char *)(o.stderr_path ? o.stderr_path : "");

        Nanoshim__Types__Any any = NANOSHIM__TYPES__ANY__INIT;
        _cleanup_free_ uint8_t *packed = NULL;
        if (o.runtime_binary || o.runtime_root) {
                Nanoshim__Runcopts__Options ro = NANOSHIM__RUNCOPTS__OPTIONS__INIT;
                ro.binary_name = (char *)(o.runtime_binary ? o.runtime_binary : "");
                ro.root = (char *)(o.runtime_root ? o.runtime_root : "");
                size_t len = nanoshim__runcopts__options__get_packed_size(&ro);
                packed = malloc(len ? len : 1);
                if (!packed)
                        return EXIT_CALL_FAILED;
                nanoshim__runcopts__options__pack(&ro, packed);
                any.type_url = (char *)RUNC_OPTIONS_TYPE_URL;
                any.value.data = packed;
                any.value.len = len;
                req.options = &any;
        }

        ProtobufCMessage *m = NULL;
        r = ctl_call(ctl, DEFAULT_TIMEOUT_S, "Create", &req.base, &nanoshim__task__create_task_response__descriptor,
                     &m);
        if (r != 0)
                return r;
        Nanoshim__Task__CreateTaskResponse *resp = (Nanoshim__Task__CreateTaskResponse *)m;
        printf("%u\n", resp->pid);
        protobuf_c_message_free_unpacked(m, NULL);
        return fflush(stdout) == 0 ? EXIT_OK : EXIT_CALL_FAILED;
}

/* Commands that take ID [--exec EXEC] and nothing else. */
static int parse_id_exec(struct ctl *ctl, int argc, char **argv, struct cmd_opts *o) {
        static const char *const allowed[] = {"exec", NULL};
        int r = parse_cmd(ctl, argc, argv, allowed, o);
        if (r == 0)
                r = want_args(ctl, o, 1, "ID");
        if (r == 0)
                r = want_no_dashdash(ctl, o);
        if (r == 0)
                r = check_id(ctl, "container id", o->args[0]);
        if (r == 0 && o->exec_id)
                r = check_id(ctl, "exec id", o->exec_id);
        return r;
}

static int parse_id_only(struct ctl *ctl, int argc, char **argv, struct cmd_opts *o) {
        static const char *const allowed[] = {NULL};
        int r = parse_cmd(ctl, argc, argv, allowed, o);
        if (r == 0)
                r = want_args(ctl, o, 1, "ID");
        if (r == 0)
                r = want_no_dashdash(ctl, o);
        if (r == 0)
                r = check_id(ctl, "container id", o->args[0]);
        return r;
}

static int cmd_start(struct ctl *ctl, int argc, char **argv) {
        struct cmd_opts o;
        int r = parse_id_exec(ctl, argc, argv, &o);
        if (r != 0)
                return r;
        Nanoshim__Task__StartRequest req = NANOSHIM__TASK__START_REQUEST__INIT;
        req.id = o.args[0];
        req.exec_id = (char *)(o.exec_id ? o.exec_id : "");
        ProtobufCMessage *m = NULL;
        r = ctl_call(ctl, DEFAULT_TIMEOUT_S, "Start", &req.base, &nanoshim__task__start_response__descriptor, &m);
        if (r != 0)
                return r;
        printf("%u\n", ((Nanoshim__Task__StartResponse *)m)->pid);
        protobuf_c_message_free_unpacked(m, NULL);
        return fflush(stdout) == 0 ? EXIT_OK : EXIT_CALL_FAILED;
}

static const char *status_to_string(Nanoshim__Types__Status s) {
        switch (s) {
        case NANOSHIM__TYPES__STATUS__CREATED: return "created";
        case NANOSHIM__TYPES__STATUS__RUNNING: return "running";
        case NANOSHIM__TYPES__STATUS__STOPPED: return "stopped";
        case NANOSHIM__TYPES__STATUS__PAUSED: return "paused";
        case NANOSHIM__TYPES__STATUS__PAUSING: return "pausing";
        default: return "unknown";
        }
}

static int cmd_state(struct ctl *ctl, int argc, char **argv) {
        struct cmd_opts o;
        int r = parse_id_exec(ctl, argc, argv, &o);
        if (r != 0)
                return r;
        Nanoshim__Task__StateRequest req = NANOSHIM__TASK__STATE_REQUEST__INIT;
        req.id = o.args[0];
        req.exec_id = (char *)(o.exec_id ? o.exec_id : "");
        ProtobufCMessage *m = NULL;
        r = ctl_call(ctl, DEFAULT_TIMEOUT_S, "State", &req.base, &nanoshim__task__state_response__descriptor, &m);
        if (r != 0)
                return r;
        Nanoshim__Task__StateResponse *s = (Nanoshim__Task__StateResponse *)m;
        json_t *j = json_pack("{s:s, s:s, s:s, s:I, s:s, s:s, s:s, s:s, s:b, s:I, s:o}", "id", s->id, "exec_id",
                              s->exec_id, "bundle", s->bundle, "pid", (json_int_t)s->pid, "status",
                              status_to_string(s->status), "stdin", s->stdin, "stdout", s->stdout, "stderr",
                              s->stderr, "terminal", (int)s->terminal, "exit_status", (json_int_t)s->exit_status,
                              "exited_at", json_timestamp(s->exited_at));
        protobuf_c_message_free_unpacked(m, NULL);
        return print_json(j);
}

static int cmd_pids(struct ctl *ctl, int argc, char **argv) {
        struct cmd_opts o;
        int r = parse_id_only(ctl, argc, argv, &o);
        if (r != 0)
                return r;
        Nanoshim__Task__PidsRequest req = NANOSHIM__TASK__PIDS_REQUEST__INIT;
        req.id = o.args[0];
        ProtobufCMessage *m = NULL;
        r = ctl_call(ctl, DEFAULT_TIMEOUT_S, "Pids", &req.base, &nanoshim__task__pids_response__descriptor, &m);
        if (r != 0)
                return r;
        Nanoshim__Task__PidsResponse *resp = (Nanoshim__Task__PidsResponse *)m;
        json_t *arr = json_array();
        for (size_t i = 0; arr && i < resp->n_processes; i++) {
                const Nanoshim__Types__ProcessInfo *pi = resp->processes[i];
                json_t *e = json_pack("{s:I}", "pid", (json_int_t)pi->pid);
                /* An exec's entry says which exec it is (containerd.runc.v1.ProcessDetails). */
                if (e && pi->info && pi->info->type_url && strstr(pi->info->type_url, "ProcessDetails")) {
                        Nanoshim__Runcopts__ProcessDetails *d =
                                nanoshim__runcopts__process_details__unpack(NULL, pi->info->value.len,
                                                                            pi->info->value.data);
                        if (d && d->exec_id && *d->exec_id)
                                json_object_set_new(e, "exec_id", json_string(d->exec_id));
                        if (d)
                                nanoshim__runcopts__process_details__free_unpacked(d, NULL);
                }
                json_array_append_new(arr, e);
        }
        protobuf_c_message_free_unpacked(m, NULL);
        return print_json(arr);
}

/* The process JSON for `exec ID EXEC -- cmd args...`. */
static char *exec_process_json(char **args, int n, bool terminal) {
        json_t *argv = json_array();
        for (int i = 0; argv && i < n; i++)
                json_array_append_new(argv, json_string(args[i]));
        json_t *p = json_pack("{s:b, s:{s:i, s:i}, s:o, s:[s], s:s}", "terminal", (int)terminal, "user", "uid", 0,
                              "gid", 0, "args", argv, "env", EXEC_DEFAULT_PATH, "cwd", "/");
        if (!p)
                return NULL;
        char *text = json_dumps(p, JSON_COMPACT);
        json_decref(p);
        return text;
}

static int cmd_exec(struct ctl *ctl, int argc, char **argv) {
        static const char *const allowed[] = {"terminal", "stdin", "stdout", "stderr", "spec", NULL};
        struct cmd_opts o;
        int r = parse_cmd(ctl, argc, argv, allowed, &o);
        if (r == 0)
                r = want_args(ctl, &o, 2, "ID EXEC");
        if (r == 0)
                r = check_id(ctl, "container id", o.args[0]);
        if (r == 0)
                r = check_id(ctl, "exec id", o.args[1]);
        if (r != 0)
                return r;
        int n_cmd = o.dashdash ? argc - o.dashdash_at : 0;
        bool has_cmd = n_cmd > 0;
        if ((o.spec != NULL) == has_cmd)
                return usage_error(ctl, "give either --spec FILE or -- CMD [ARGS...]");

        _cleanup_free_ char *spec = NULL;
        size_t spec_len = 0;
        if (o.spec) {
                r = read_json_object_file(ctl, o.spec, &spec, &spec_len);
                if (r != 0)
                        return r;
        } else {
                spec = exec_process_json(argv + o.dashdash_at, n_cmd, o.terminal);
                if (!spec)
                        return EXIT_CALL_FAILED;
                spec_len = strlen(spec);
        }
        Nanoshim__Types__Any any = NANOSHIM__TYPES__ANY__INIT;
        any.type_url = (char *)PROCESS_SPEC_TYPE;
        any.value.data = (uint8_t *)spec;
        any.value.len = spec_len;
        Nanoshim__Task__ExecProcessRequest req = NANOSHIM__TASK__EXEC_PROCESS_REQUEST__INIT;
        req.id = o.args[0];
        req.exec_id = o.args[1];
        req.terminal = o.terminal;
        req.stdin = (char *)(o.stdin_path ? o.stdin_path : "");
        req.stdout = (char *)(o.stdout_path ? o.stdout_path : "");
        req.stderr = (char *)(o.stderr_path ? o.stderr_path : "");
        req.spec = &any;
        return ctl_call(ctl, DEFAULT_TIMEOUT_S, "Exec", &req.base, NULL, NULL);
}

static int cmd_kill(struct ctl *ctl, int argc, char **argv) {
        static const char *const allowed[] = {"exec", "signal", "all", NULL};
        struct cmd_opts o;
        int r = parse_cmd(ctl, argc, argv, allowed, &o);
        if (r == 0)
                r = want_args(ctl, &o, 1, "ID");
        if (r == 0)
                r = want_no_dashdash(ctl, &o);
        if (r == 0)
                r = check_id(ctl, "container id", o.args[0]);
        if (r == 0 && o.exec_id)
                r = check_id(ctl, "exec id", o.exec_id);
        if (r != 0)
                return r;
        int sig = SIGTERM;
        if (o.signal && parse_signal(o.signal, &sig) < 0)
                return usage_error(ctl, "unknown signal '%s' (a number 1-64 or a name like TERM, SIGKILL)",
                                   o.signal);
        Nanoshim__Task__KillRequest req = NANOSHIM__TASK__KILL_REQUEST__INIT;
        req.id = o.args[0];
        req.exec_id = (char *)(o.exec_id ? o.exec_id : "");
        req.signal = (uint32_t)sig;
        req.all = o.all;
        return ctl_call(ctl, DEFAULT_TIMEOUT_S, "Kill", &req.base, NULL, NULL);
}

static int cmd_wait(struct ctl *ctl, int argc, char **argv) {
        struct cmd_opts o;
        int r = parse_id_exec(ctl, argc, argv, &o);
        if (r != 0)
                return r;
        Nanoshim__Task__WaitRequest req = NANOSHIM__TASK__WAIT_REQUEST__INIT;
        req.id = o.args[0];
        req.exec_id = (char *)(o.exec_id ? o.exec_id : "");
        ProtobufCMessage *m = NULL;
        r = ctl_call(ctl, 0, "Wait", &req.base, &nanoshim__task__wait_response__descriptor, &m);
        if (r != 0)
                return r;
        uint32_t status = ((Nanoshim__Task__WaitResponse *)m)->exit_status;
        protobuf_c_message_free_unpacked(m, NULL);
        printf("%u\n", status);
        if (fflush(stdout) != 0)
                return EXIT_CALL_FAILED;
        if (ctl->chained)
                return EXIT_OK; /* printed; the chain goes on */
        return status > 255 ? 255 : (int)status;
}

static int cmd_delete(struct ctl *ctl, int argc, char **argv) {
        struct cmd_opts o;
        int r = parse_id_exec(ctl, argc, argv, &o);
        if (r != 0)
                return r;
        Nanoshim__Task__DeleteRequest req = NANOSHIM__TASK__DELETE_REQUEST__INIT;
        req.id = o.args[0];
        req.exec_id = (char *)(o.exec_id ? o.exec_id : "");
        ProtobufCMessage *m = NULL;
        r = ctl_call(ctl, DEFAULT_TIMEOUT_S, "Delete", &req.base, &nanoshim__task__delete_response__descriptor, &m);
        if (r != 0)
                return r;
        Nanoshim__Task__DeleteResponse *d = (Nanoshim__Task__DeleteResponse *)m;
        json_t *j = json_pack("{s:I, s:I, s:o}", "pid", (json_int_t)d->pid, "exit_status", (json_int_t)d->exit_status,
                              "exited_at", json_timestamp(d->exited_at));
        protobuf_c_message_free_unpacked(m, NULL);
        return print_json(j);
}

static int cmd_shutdown(struct ctl *ctl, int argc, char **argv) {
        static const char *const allowed[] = {"now", NULL};
        struct cmd_opts o;
        int r = parse_cmd(ctl, argc, argv, allowed, &o);
        if (r == 0)
                r = want_args(ctl, &o, 1, "ID");
        if (r == 0)
                r = want_no_dashdash(ctl, &o);
        if (r == 0)
                r = check_id(ctl, "container id", o.args[0]);
        if (r != 0)
                return r;
        Nanoshim__Task__ShutdownRequest req = NANOSHIM__TASK__SHUTDOWN_REQUEST__INIT;
        req.id = o.args[0];
        req.now = o.now;
        return ctl_call(ctl, DEFAULT_TIMEOUT_S, "Shutdown", &req.base, NULL, NULL);
}

static int cmd_connect(struct ctl *ctl, int argc, char **argv) {
        struct cmd_opts o;
        int r = parse_id_only(ctl, argc, argv, &o);
        if (r != 0)
                return r;
        Nanoshim__Task__ConnectRequest req = NANOSHIM__TASK__CONNECT_REQUEST__INIT;
        req.id = o.args[0];
        ProtobufCMessage *m = NULL;
        r = ctl_call(ctl, DEFAULT_TIMEOUT_S, "Connect", &req.base, &nanoshim__task__connect_response__descriptor, &m);
        if (r != 0)
                return r;
        Nanoshim__Task__ConnectResponse *c = (Nanoshim__Task__ConnectResponse *)m;
        json_t *j = json_pack("{s:I, s:I, s:s}", "shim_pid", (json_int_t)c->shim_pid, "task_pid",
                              (json_int_t)c->task_pid, "version", c->version ? c->version : "");
        protobuf_c_message_free_unpacked(m, NULL);
        return print_json(j);
}

static int cmd_close_io(struct ctl *ctl, int argc, char **argv) {
        struct cmd_opts o;
        int r = parse_id_exec(ctl, argc, argv, &o);
        if (r != 0)
                return r;
        Nanoshim__Task__CloseIORequest req = NANOSHIM__TASK__CLOSE_IOREQUEST__INIT;
        req.id = o.args[0];
        req.exec_id = (char *)(o.exec_id ? o.exec_id : "");
        req.stdin = true;
        return ctl_call(ctl, DEFAULT_TIMEOUT_S, "CloseIO", &req.base, NULL, NULL);
}

static int cmd_resize(struct ctl *ctl, int argc, char **argv) {
        static const char *const allowed[] = {"exec", NULL};
        struct cmd_opts o;
        int r = parse_cmd(ctl, argc, argv, allowed, &o);
        if (r == 0)
                r = want_args(ctl, &o, 3, "ID WIDTH HEIGHT");
        if (r == 0)
                r = want_no_dashdash(ctl, &o);
        if (r == 0)
                r = check_id(ctl, "container id", o.args[0]);
        if (r == 0 && o.exec_id)
                r = check_id(ctl, "exec id", o.exec_id);
        if (r != 0)
                return r;
        unsigned long w, h;
        if (parse_uint(o.args[1], UINT16_MAX, &w) < 0 || parse_uint(o.args[2], UINT16_MAX, &h) < 0)
                return usage_error(ctl, "WIDTH and HEIGHT must be numbers from 0 to 65535");
        Nanoshim__Task__ResizePtyRequest req = NANOSHIM__TASK__RESIZE_PTY_REQUEST__INIT;
        req.id = o.args[0];
        req.exec_id = (char *)(o.exec_id ? o.exec_id : "");
        req.width = (uint32_t)w;
        req.height = (uint32_t)h;
        return ctl_call(ctl, DEFAULT_TIMEOUT_S, "ResizePty", &req.base, NULL, NULL);
}

static int cmd_pause(struct ctl *ctl, int argc, char **argv) {
        struct cmd_opts o;
        int r = parse_id_only(ctl, argc, argv, &o);
        if (r != 0)
                return r;
        Nanoshim__Task__PauseRequest req = NANOSHIM__TASK__PAUSE_REQUEST__INIT;
        req.id = o.args[0];
        return ctl_call(ctl, DEFAULT_TIMEOUT_S, "Pause", &req.base, NULL, NULL);
}

static int cmd_resume(struct ctl *ctl, int argc, char **argv) {
        struct cmd_opts o;
        int r = parse_id_only(ctl, argc, argv, &o);
        if (r != 0)
                return r;
        Nanoshim__Task__ResumeRequest req = NANOSHIM__TASK__RESUME_REQUEST__INIT;
        req.id = o.args[0];
        return ctl_call(ctl, DEFAULT_TIMEOUT_S, "Resume", &req.base, NULL, NULL);
}

static int cmd_update(struct ctl *ctl, int argc, char **argv) {
        static const char *const allowed[] = {"resources", NULL};
        struct cmd_opts o;
        int r = parse_cmd(ctl, argc, argv, allowed, &o);
        if (r == 0)
                r = want_args(ctl, &o, 1, "ID");
        if (r == 0)
                r = want_no_dashdash(ctl, &o);
        if (r == 0)
                r = check_id(ctl, "container id", o.args[0]);
        if (r != 0)
                return r;
        if (!o.resources)
                return usage_error(ctl, "--resources FILE is required");
        _cleanup_free_ char *json = NULL;
        size_t len = 0;
        r = read_json_object_file(ctl, o.resources, &json, &len);
        if (r != 0)
                return r;
        Nanoshim__Types__Any any = NANOSHIM__TYPES__ANY__INIT;
        any.type_url = (char *)RESOURCES_TYPE;
        any.value.data = (uint8_t *)json;
        any.value.len = len;
        Nanoshim__Task__UpdateTaskRequest req = NANOSHIM__TASK__UPDATE_TASK_REQUEST__INIT;
        req.id = o.args[0];
        req.resources = &any;
        return ctl_call(ctl, DEFAULT_TIMEOUT_S, "Update", &req.base, NULL, NULL);
}

static int cmd_stats(struct ctl *ctl, int argc, char **argv) {
        struct cmd_opts o;
        int r = parse_id_only(ctl, argc, argv, &o);
        if (r != 0)
                return r;
        Nanoshim__Task__StatsRequest req = NANOSHIM__TASK__STATS_REQUEST__INIT;
        req.id = o.args[0];
        ProtobufCMessage *m = NULL;
        r = ctl_call(ctl, DEFAULT_TIMEOUT_S, "Stats", &req.base, &nanoshim__task__stats_response__descriptor, &m);
        if (r != 0)
                return r;
        Nanoshim__Task__StatsResponse *s = (Nanoshim__Task__StatsResponse *)m;
        printf("%s %zu\n", s->stats && s->stats->type_url ? s->stats->type_url : "",
               s->stats ? s->stats->value.len : (size_t)0);
        protobuf_c_message_free_unpacked(m, NULL);
        return fflush(stdout) == 0 ? EXIT_OK : EXIT_CALL_FAILED;
}

/* ------------------------------------------------------------------------------------ */
/* events receiver                                                                      */

#define RECEIVER_BATCH_MAX 64
#define RECEIVER_BATCH_WAIT_S 2.0

struct held_forward {
        struct ttrpc_call *call;
        char *container_id;
        char *text; /* the line to print once answered */
};

struct receiver {
        struct ev_loop *loop;
        struct ttrpc_server *server;
        unsigned long count;      /* 0 = forever */
        unsigned long fail_first; /* Forwards still to refuse */
        unsigned long batch;      /* answers held until this many wait (0: at once) */
        struct held_forward held[RECEIVER_BATCH_MAX];
        size_t n_held;
        ev_timer batch_timer;
        unsigned long received;
        int exit_code;
        ev_signal sig_int, sig_term;
};

static json_t *message_to_json(const ProtobufCMessage *m);

static json_t *field_to_json(const ProtobufCFieldDescriptor *f, const void *p) {
        switch (f->type) {
        case PROTOBUF_C_TYPE_INT32:
        case PROTOBUF_C_TYPE_SINT32:
        case PROTOBUF_C_TYPE_SFIXED32:
        case PROTOBUF_C_TYPE_ENUM:
                return json_integer(*(const int32_t *)p);
        case PROTOBUF_C_TYPE_UINT32:
        case PROTOBUF_C_TYPE_FIXED32:
                return json_integer(*(const uint32_t *)p);
        case PROTOBUF_C_TYPE_INT64:
        case PROTOBUF_C_TYPE_SINT64:
        case PROTOBUF_C_TYPE_SFIXED64:
                return json_integer(*(const int64_t *)p);
        case PROTOBUF_C_TYPE_UINT64:
        case PROTOBUF_C_TYPE_FIXED64:
                return json_integer((json_int_t) * (const uint64_t *)p);
        case PROTOBUF_C_TYPE_FLOAT:
                return json_real(*(const float *)p);
        case PROTOBUF_C_TYPE_DOUBLE:
                return json_real(*(const double *)p);
        case PROTOBUF_C_TYPE_BOOL:
                return json_boolean(*(const protobuf_c_boolean *)p);
        case PROTOBUF_C_TYPE_STRING: {
                const char *s = *(char *const *)p;
                return json_string(s ? s : "");
        }
        case PROTOBUF_C_TYPE_BYTES:
                return json_integer((json_int_t)((const ProtobufCBinaryData *)p)->len);
        case PROTOBUF_C_TYPE_MESSAGE: {
                const ProtobufCMessage *sub = *(const ProtobufCMessage *const *)p;
                if (f->descriptor == &nanoshim__types__timestamp__descriptor)
                        return json_timestamp((const Nanoshim__Types__Timestamp *)sub);
                return sub ? message_to_json(sub) : json_null();
        }
        }
        return json_null();
}

/* Every field by its proto name; Timestamps as RFC 3339, bytes as their length. */
static json_t *message_to_json(const ProtobufCMessage *m) {
        json_t *o = json_object();
        for (unsigned i = 0; o && i < m->descriptor->n_fields; i++) {
                const ProtobufCFieldDescriptor *f = &m->descriptor->fields[i];
                const char *base = (const char *)m;
                if (f->label == PROTOBUF_C_LABEL_REPEATED) {
                        size_t n = *(const size_t *)(base + f->quantifier_offset);
                        const char *arr = *(const char *const *)(base + f->offset);
                        size_t elem = f->type == PROTOBUF_C_TYPE_STRING || f->type == PROTOBUF_C_TYPE_MESSAGE
                                              ? sizeof(void *)
                                      : f->type == PROTOBUF_C_TYPE_BYTES ? sizeof(ProtobufCBinaryData)
                                      : f->type == PROTOBUF_C_TYPE_INT64 || f->type == PROTOBUF_C_TYPE_SINT64 ||
                                                      f->type == PROTOBUF_C_TYPE_SFIXED64 ||
                                                      f->type == PROTOBUF_C_TYPE_UINT64 ||
                                                      f->type == PROTOBUF_C_TYPE_FIXED64 ||
                                                      f->type == PROTOBUF_C_TYPE_DOUBLE
                                              ? 8
                                              : 4;
                        json_t *a = json_array();
                        for (size_t k = 0; a && k < n; k++)
                                json_array_append_new(a, field_to_json(f, arr + k * elem));
                        json_object_set_new(o, f->name, a ? a : json_null());
                } else
                        json_object_set_new(o, f->name, field_to_json(f, base + f->offset));
        }
        return o;
}

struct event_type {
        const char *name;
        const ProtobufCMessageDescriptor *descriptor;
};

static const struct event_type event_types[] = {
        {"containerd.events.TaskCreate", &nanoshim__events__task_create__descriptor},
        {"containerd.events.TaskStart", &nanoshim__events__task_start__descriptor},
        {"containerd.events.TaskExit", &nanoshim__events__task_exit__descriptor},
        {"containerd.events.TaskDelete", &nanoshim__events__task_delete__descriptor},
        {"containerd.events.TaskExecAdded", &nanoshim__events__task_exec_added__descriptor},
        {"containerd.events.TaskExecStarted", &nanoshim__events__task_exec_started__descriptor},
        {"containerd.events.TaskOOM", &nanoshim__events__task_oom__descriptor},
        {"containerd.events.TaskPaused", &nanoshim__events__task_paused__descriptor},
        {"containerd.events.TaskResumed", &nanoshim__events__task_resumed__descriptor},
        {"containerd.events.TaskCheckpointed", &nanoshim__events__task_checkpointed__descriptor},
};

/* The event's fields, decoded by its type (a type_url may carry a "host/" prefix). */
static json_t *event_to_json(const Nanoshim__Types__Any *any) {
        if (!any || !any->type_url)
                return json_null();
        const char *slash = strrchr(any->type_url, '/');
        const char *name = slash ? slash + 1 : any->type_url;
        for (size_t i = 0; i < ELEMENTSOF(event_types); i++) {
                if (strcmp(name, event_types[i].name) != 0)
                        continue;
                ProtobufCMessage *m =
                        protobuf_c_message_unpack(event_types[i].descriptor, NULL, any->value.len, any->value.data);
                if (!m)
                        return json_null();
                json_t *j = message_to_json(m);
                protobuf_c_message_free_unpacked(m, NULL);
                return j;
        }
        return json_null();
}

/* Prints the event's line and acknowledges it (takes text). Acknowledged is only what
 * reached stdout: the sender keeps what could not be printed. */
static void answer_forward(struct receiver *rc, struct ttrpc_call *call, char *text) {
        bool printed = puts(text) >= 0 && fflush(stdout) == 0;
        free(text);
        if (!printed) {
                ttrpc_call_reply_error(call, TTRPC_INTERNAL, "shimctl events: cannot print the event");
                return;
        }
        ttrpc_call_reply(call, NULL);
        rc->received++;
        if (rc->count > 0 && rc->received >= rc->count)
                ev_break(rc->loop, EVBREAK_ALL);
}

/* --batch: the held Forwards answered, in the order they came. */
static void answer_held(struct receiver *rc) {
        ev_timer_stop(rc->loop, &rc->batch_timer);
        size_t n = rc->n_held;
        rc->n_held = 0;
        for (size_t i = 0; i < n; i++) {
                free(rc->held[i].container_id);
                answer_forward(rc, rc->held[i].call, rc->held[i].text);
        }
}

static void on_forward(struct ttrpc_call *call, void *userdata) {
        struct receiver *rc = userdata;
        if (!call->service || strcmp(call->service, EVENTS_SERVICE) != 0) {
                ttrpc_call_reply_unknown_service(call);
                return;
        }
        if (!call->method || strcmp(call->method, "Forward") != 0) {
                ttrpc_call_reply_unknown_method(call);
                return;
        }
        if (rc->fail_first > 0) {
                rc->fail_first--;
                ttrpc_call_reply_error(call, TTRPC_UNAVAILABLE, "shimctl events: refusing on purpose (%lu more)",
                                       rc->fail_first);
                return;
        }
        Nanoshim__Events__ForwardRequest *req =
                nanoshim__events__forward_request__unpack(NULL, call->payload_len, call->payload);
        if (!req || !req->envelope) {
                ttrpc_call_reply_error(call, TTRPC_INVALID_ARGUMENT, "cannot decode the Forward request");
                if (req)
                        nanoshim__events__forward_request__free_unpacked(req, NULL);
                return;
        }
        const Nanoshim__Events__Envelope *e = req->envelope;
        json_t *event = event_to_json(e->event);
        const char *cid = json_string_value(json_object_get(event, "container_id"));
        _cleanup_free_ char *container_id = strdup(cid ? cid : "");
        json_t *j = json_pack("{s:s, s:s, s:o, s:s, s:O}", "topic", e->topic ? e->topic : "", "namespace",
                              e->namespace_ ? e->namespace_ : "", "timestamp", json_timestamp(e->timestamp),
                              "type_url", e->event && e->event->type_url ? e->event->type_url : "", "event", event);
        json_decref(event);
        nanoshim__events__forward_request__free_unpacked(req, NULL);
        char *text = j ? json_dumps(j, JSON_COMPACT) : NULL;
        json_decref(j);
        if (!text || !container_id) {
                free(text);
                ttrpc_call_reply_error(call, TTRPC_INTERNAL, "shimctl events: out of memory");
                return;
        }
        if (rc->batch == 0) {
                answer_forward(rc, call, text);
                return;
        }
        for (size_t i = 0; i < rc->n_held; i++)
                if (strcmp(rc->held[i].container_id, container_id) == 0)
                        fprintf(stderr, "shimctl events: two events of container %s wait at once\n", container_id);
        rc->held[rc->n_held++] = (struct held_forward){call, TAKE_PTR(container_id), text};
        if (rc->n_held >= rc->batch || rc->n_held == RECEIVER_BATCH_MAX)
                answer_held(rc);
        else if (!ev_is_active(&rc->batch_timer))
                ev_timer_start(rc->loop, &rc->batch_timer);
}

static void on_batch_timeout(struct ev_loop *loop, ev_timer *w, int revents) {
        struct receiver *rc = w->data;
        fprintf(stderr, "shimctl events: only %zu Forward(s) waited at once (--batch %lu)\n", rc->n_held, rc->batch);
        answer_held(rc);
}

static void on_receiver_signal(struct ev_loop *loop, ev_signal *w, int revents) {
        struct receiver *rc = w->data;
        rc->exit_code = 128 + w->signum;
        ev_break(loop, EVBREAK_ALL);
}

static int mkdir_parents_private(const char *path) {
        _cleanup_free_ char *dir = strdup(path);
        if (!dir)
                return -ENOMEM;
        char *slash = strrchr(dir, '/');
        if (!slash || slash == dir)
                return 0;
        *slash = 0;
        for (char *p = dir + 1; *p; p++)
                if (*p == '/') {
                        *p = 0;
                        if (mkdir(dir, 0755) < 0 && errno != EEXIST)
                                return -errno;
                        *p = '/';
                }
        if (mkdir(dir, 0700) < 0 && errno != EEXIST)
                return -errno;
        return 0;
}

static int listen_unix(const char *path, int *ret_fd) {
        struct sockaddr_un sa = {.sun_family = AF_UNIX};
        if (strlen(path) >= sizeof sa.sun_path)
                return -ENAMETOOLONG;
        strcpy(sa.sun_path, path);
        int r = mkdir_parents_private(path);
        if (r < 0)
                return r;
        _cleanup_close_ int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
        if (fd < 0)
                return -errno;
        if (bind(fd, (struct sockaddr *)&sa, sizeof sa) < 0) {
                if (errno != EADDRINUSE)
                        return -errno;
                /* A receiver that died left its socket: take it over if nobody answers. */
                struct stat st;
                _cleanup_close_ int probe = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
                if (probe < 0)
                        return -errno;
                if (lstat(path, &st) < 0 || !S_ISSOCK(st.st_mode))
                        return -EADDRINUSE;
                if (connect(probe, (struct sockaddr *)&sa, sizeof sa) == 0)
                        return -EADDRINUSE;
                if (unlink(path) < 0 || bind(fd, (struct sockaddr *)&sa, sizeof sa) < 0)
                        return -errno;
        }
        if (listen(fd, SOMAXCONN) < 0) {
                int e = errno;
                unlink(path);
                return -e;
        }
        *ret_fd = take_fd(&fd);
        return 0;
}

static int cmd_events(struct ctl *ctl, int argc, char **argv) {
        static const char *const allowed[] = {"listen", "count", "fail-first", "batch", NULL};
        struct cmd_opts o;
        int r = parse_cmd(ctl, argc, argv, allowed, &o);
        if (r == 0)
                r = want_args(ctl, &o, 0, "");
        if (r == 0)
                r = want_no_dashdash(ctl, &o);
        if (r != 0)
                return r;
        if (!o.listen)
                return usage_error(ctl, "--listen SOCKET_PATH is required");
        struct receiver rc = {.loop = ctl->loop};
        if (o.count && parse_uint(o.count, ULONG_MAX, &rc.count) < 0)
                return usage_error(ctl, "--count needs a number, got '%s'", o.count);
        if (o.fail_first && parse_uint(o.fail_first, ULONG_MAX, &rc.fail_first) < 0)
                return usage_error(ctl, "--fail-first needs a number, got '%s'", o.fail_first);
        if (o.batch && (parse_uint(o.batch, RECEIVER_BATCH_MAX, &rc.batch) < 0 || rc.batch == 0))
                return usage_error(ctl, "--batch needs a number from 1 to %d, got '%s'", RECEIVER_BATCH_MAX, o.batch);
        ev_timer_init(&rc.batch_timer, on_batch_timeout, RECEIVER_BATCH_WAIT_S, 0);
        rc.batch_timer.data = &rc;
        const char *path = socket_path(o.listen);

        int fd = -1;
        r = listen_unix(path, &fd);
        if (r < 0) {
                fprintf(stderr, "shimctl events: cannot listen on %s: %s\n", path, strerror(-r));
                return EXIT_NO_CONNECTION;
        }
        r = ttrpc_server_new(ctl->loop, fd, on_forward, NULL, &rc, &rc.server);
        if (r < 0) {
                unlink(path);
                fprintf(stderr, "shimctl events: cannot serve on %s: %s\n", path, strerror(-r));
                return EXIT_CALL_FAILED;
        }
        signal(SIGPIPE, SIG_IGN);
        ev_signal_init(&rc.sig_int, on_receiver_signal, SIGINT);
        rc.sig_int.data = &rc;
        ev_signal_start(ctl->loop, &rc.sig_int);
        ev_signal_init(&rc.sig_term, on_receiver_signal, SIGTERM);
        rc.sig_term.data = &rc;
        ev_signal_start(ctl->loop, &rc.sig_term);

        if (rc.count == 0 || rc.received < rc.count)
                ev_run(ctl->loop, 0);

        ev_signal_stop(ctl->loop, &rc.sig_int);
        ev_signal_stop(ctl->loop, &rc.sig_term);
        ev_timer_stop(ctl->loop, &rc.batch_timer);
        for (size_t i = 0; i < rc.n_held; i++) { /* (never answered: the sender keeps them) */
                free(rc.held[i].container_id);
                free(rc.held[i].text);
        }
        unlink(path);
        /* The last acknowledgement was written when it was made (small, empty socket
         * buffer); closing now cannot take it back. */
        rc.server = ttrpc_server_free(rc.server);
        return rc.exit_code;
}

/* ------------------------------------------------------------------------------------ */
/* main                                                                                 */

struct command {
        const char *name;
        int (*fn)(struct ctl *ctl, int argc, char **argv);
        bool needs_address;
};

static const struct command commands[] = {
        {"create", cmd_create, true},     {"start", cmd_start, true},       {"state", cmd_state, true},
        {"pids", cmd_pids, true},         {"exec", cmd_exec, true},         {"kill", cmd_kill, true},
        {"wait", cmd_wait, true},         {"delete", cmd_delete, true},     {"shutdown", cmd_shutdown, true},
        {"connect", cmd_connect, true},   {"close-io", cmd_close_io, true}, {"resize", cmd_resize, true},
        {"pause", cmd_pause, true},       {"resume", cmd_resume, true},     {"update", cmd_update, true},
        {"stats", cmd_stats, true},       {"events", cmd_events, false},
};

enum { OPT_TIMEOUT = 0x200, OPT_VERSION, OPT_NO_ID_CHECK };

static int run_command(struct ctl *ctl, int argc, char **argv) {
        for (size_t i = 0; i < ELEMENTSOF(commands); i++) {
                if (strcmp(argv[0], commands[i].name) != 0)
                        continue;
                ctl->command = commands[i].name;
                if (commands[i].needs_address && (!ctl->address || !*ctl->address))
                        return usage_error(ctl, "no shim socket: give -a SOCKET or set NANOSHIM_SOCKET");
                return commands[i].fn(ctl, argc, argv);
        }
        return usage_error(ctl, "unknown command '%s'", argv[0]);
}

int main(int argc, char **argv) {
        static const struct option opts[] = {
                {"address", required_argument, NULL, 'a'},
                {"timeout", required_argument, NULL, OPT_TIMEOUT},
                {"no-id-check", no_argument, NULL, OPT_NO_ID_CHECK},
                {"timestamps", no_argument, NULL, 'T'},
                {"help", no_argument, NULL, 'h'},
                {"version", no_argument, NULL, OPT_VERSION},
                {NULL, 0, NULL, 0},
        };
        struct ctl ctl = {.timeout_s = -1, .check_ids = true, .address = getenv("NANOSHIM_SOCKET")};
        opterr = 0;
        int c;
        /* '+': options stop at the command; the command parses its own. */
        while ((c = getopt_long(argc, argv, "+:a:hT", opts, NULL)) != -1) {
                switch (c) {
                case 'a':
                        ctl.address = optarg;
                        break;
                case OPT_TIMEOUT: {
                        char *end = NULL;
                        errno = 0;
                        double t = strtod(optarg, &end);
                        if (errno != 0 || !end || *end || end == optarg || !isfinite(t) || t < 0 || t > 1e9)
                                return usage_error(&ctl, "--timeout needs a number of seconds >= 0, got '%s'", optarg);
                        ctl.timeout_s = t;
                        break;
                }
                case OPT_NO_ID_CHECK:
                        ctl.check_ids = false;
                        break;
                case 'T':
                        ctl.timestamps = true;
                        break;
                case 'h':
                        usage(stdout);
                        return EXIT_OK;
                case OPT_VERSION:
                        printf("shimctl (nanoshim) %s\n", NANOSHIM_VERSION);
                        return EXIT_OK;
                case ':':
                        return usage_error(&ctl, "option '%s' needs a value", argv[optind - 1]);
                default:
                        return usage_error(&ctl, "unknown option '%s'", argv[optind - 1]);
                }
        }
        if (optind >= argc)
                return usage_error(&ctl, "no command given");
        ctl.loop = EV_DEFAULT;
        if (!ctl.loop) {
                fputs("shimctl: cannot initialise the event loop\n", stderr);
                return EXIT_CALL_FAILED;
        }
        /* Commands chained with a lone "+" run in order in this one process (a script
         * driving a shim pays one start-up, not one per call); the first that fails ends
         * the chain with its status. A wait in the middle prints its status and goes on;
         * the chain's status is the last command's. */
        int first = optind, status = EXIT_OK;
        while (first < argc) {
                int end = first;
                while (end < argc && strcmp(argv[end], "+") != 0)
                        end++;
                if (end == first)
                        return usage_error(&ctl, "a command must come before '+'");
                ctl.chained = end < argc;
                char *sep = ctl.chained ? argv[end] : NULL;
                argv[end < argc ? end : argc] = NULL; /* the command sees its own argv only */
                status = run_command(&ctl, end - first, argv + first);
                if (sep)
                        argv[end] = sep;
                if (status != EXIT_OK || !ctl.chained)
                        return status;
                first = end + 1;
                if (first >= argc)
                        return usage_error(&ctl, "a command must follow '+'");
        }
        return status;
}
