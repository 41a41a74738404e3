/* SPDX-License-Identifier: Apache-2.0 */
/* containerd-shim-nanoshim-v2: argv -> one of start, delete, daemon. */
#include <stdio.h>
#include <stdlib.h>

#include "cli.h"
#include "config.h"
#include "launch.h"

int main(int argc, char **argv) {
        struct shim_args args;
        if (cli_parse(argc, argv, &args) < 0) {
                cli_usage(argv[0], true);
                return 2;
        }
        launch_clean_library_path(); /* for every runtime and binary we start */
        switch (args.action) {
        case ACTION_HELP:
                cli_usage(argv[0], false);
                return 0;
        case ACTION_VERSION:
                printf("containerd-shim-nanoshim-v2 version %s\n", NANOSHIM_VERSION);
                return 0;
        case ACTION_START:
                return launch_start(&args) < 0 ? EXIT_FAILURE : EXIT_SUCCESS;
        case ACTION_DELETE:
                return launch_delete(&args) < 0 ? EXIT_FAILURE : EXIT_SUCCESS;
        case ACTION_DAEMON:
        default:
                return launch_daemon(&args) < 0 ? EXIT_FAILURE : EXIT_SUCCESS;
        }
}
