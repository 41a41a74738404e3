/* SPDX-License-Identifier: Apache-2.0 */
#include "cli.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "file-util.h"

void cli_usage(const char *prog, bool to_stderr) {
        fprintf(to_stderr ? stderr : stdout,
                "Usage: %s [flags] [start|delete]\n"
                "\n"
                "nanoshim: a containerd runtime v2 shim (io.containerd.nanoshim.v2).\n"
                "containerd runs `start` to launch the shim daemon and `delete` to clean up after it.\n"
                "Without an action the daemon runs in the foreground (standalone use: -socket PATH).\n"
                "\n"
                "Flags (Go style: -flag value, --flag value, -flag=value):\n"
                "  -namespace NS        containerd namespace (default \"default\")\n"
                "  -address PATH        containerd's gRPC socket (input of the socket-name hash)\n"
                "  -publish-binary PATH containerd binary (start: tells 2.x from 1.7; events go over ttrpc)\n"
                "  -id ID               container id\n"
                "  -bundle DIR          bundle directory (default: the working directory)\n"
                "  -socket PATH         daemon: serve the task API on this unix socket\n"
                "  -runtime BIN         OCI runtime binary (default \"runc\"; crun works too)\n"
                "  -runtime-root DIR    runtime --root (default /run/containerd/runc/<namespace>)\n"
                "  -events-address PATH where events are sent (default $TTRPC_ADDRESS)\n"
                "  -launch              daemon: create and start the container of -bundle as its\n"
                "                       process.json says (standalone managers; needs -socket)\n"
                "  -debug               verbose log\n"
                "  -v, -version         print the version\n"
                "  -h, -help            this text\n",
                prog);
}

struct flag {
        const char *name;
        const char **str;
        bool *boolean;
};

int cli_parse(int argc, char **argv, struct shim_args *ret) {
        struct shim_args a = {.action = ACTION_DAEMON, .namespace = "default", .listen_fd = -1};
        bool version = false, help = false;
        const char *listen_fd = NULL;
        const struct flag flags[] = {
                {"namespace", &a.namespace, NULL},
                {"address", &a.address, NULL},
                {"publish-binary", &a.publish_binary, NULL},
                {"id", &a.id, NULL},
                {"bundle", &a.bundle, NULL},
                {"socket", &a.socket, NULL},
                {"listen-fd", &listen_fd, NULL},
                {"runtime", &a.runtime, NULL},
                {"runtime-root", &a.runtime_root, NULL},
                {"events-address", &a.events_address, NULL},
                {"debug", NULL, &a.debug},
                {"launch", NULL, &a.launch},
                {"v", NULL, &version},
                {"version", NULL, &version},
                {"h", NULL, &help},
                {"help", NULL, &help},
        };
        int i = 1;
        for (; i < argc; i++) {
                const char *arg = argv[i];
                if (arg[0] != '-' || arg[1] == 0)
                        break; /* the action */
                if (strcmp(arg, "--") == 0) {
                        i++;
                        break;
                }
                const char *name = arg + (arg[1] == '-' ? 2 : 1);
                const char *eq = strchr(name, '=');
                size_t nlen = eq ? (size_t)(eq - name) : strlen(name);
                const struct flag *f = NULL;
                for (size_t k = 0; k < sizeof flags / sizeof flags[0]; k++)
                        if (strlen(flags[k].name) == nlen && strncmp(flags[k].name, name, nlen) == 0)
                                f = &flags[k];
                if (!f) {
                        fprintf(stderr, "flag provided but not defined: -%.*s\n", (int)nlen, name);
                        return -EINVAL;
                }
                if (f->boolean) {
                        if (eq && strcmp(eq + 1, "true") != 0 && strcmp(eq + 1, "false") != 0 &&
                            strcmp(eq + 1, "1") != 0 && strcmp(eq + 1, "0") != 0) {
                                fprintf(stderr, "invalid boolean value \"%s\" for -%.*s\n", eq + 1, (int)nlen, name);
                                return -EINVAL;
                        }
                        *f->boolean = !eq || strcmp(eq + 1, "true") == 0 || strcmp(eq + 1, "1") == 0;
                        continue;
                }
                if (eq)
                        *f->str = eq + 1;
                else if (i + 1 < argc)
                        *f->str = argv[++i];
                else {
                        fprintf(stderr, "flag needs an argument: -%.*s\n", (int)nlen, name);
                        return -EINVAL;
                }
        }
        if (i < argc) {
                if (strcmp(argv[i], "start") == 0)
                        a.action = ACTION_START;
                else if (strcmp(argv[i], "delete") == 0)
                        a.action = ACTION_DELETE;
                else {
                        fprintf(stderr, "unknown action \"%s\" (expected start or delete)\n", argv[i]);
                        return -EINVAL;
                }
                if (i + 1 < argc) {
                        fprintf(stderr, "unexpected argument \"%s\" after the action\n", argv[i + 1]);
                        return -EINVAL;
                }
        }
        if (listen_fd) {
                pid_t fd;
                if (parse_pid(listen_fd, &fd) < 0 || fd < 3) {
                        fprintf(stderr, "invalid -listen-fd \"%s\"\n", listen_fd);
                        return -EINVAL;
                }
                a.listen_fd = fd;
        }
        if (help)
                a.action = ACTION_HELP;
        else if (version)
                a.action = ACTION_VERSION;
        *ret = a;
        return 0;
}
