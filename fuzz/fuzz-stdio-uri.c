/* SPDX-License-Identifier: Apache-2.0 */
/* libFuzzer target: stdio URI parsing (the stdin/stdout/stderr strings of Create and
 * Exec). The input, cut at its first NUL, is the URI. */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "stdio-relay.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        char *uri = malloc(size + 1);
        FUZZ_ASSERT(uri);
        memcpy(uri, data, size);
        uri[size] = 0;

        struct stdio_uri u;
        char *err = NULL;
        int r = stdio_uri_parse(uri, &u, &err);
        if (r < 0) {
                FUZZ_ASSERT(r == -EINVAL || r == -ENOMEM);
                free(err);
                free(uri);
                return 0;
        }
        FUZZ_ASSERT(!err);
        if (u.scheme == STDIO_NONE)
                FUZZ_ASSERT(!*uri && !u.path && !u.args);
        else {
                FUZZ_ASSERT(u.path && u.path[0] == '/');
                FUZZ_ASSERT(!strstr(u.path, "/../"));
        }
        if (u.scheme != STDIO_BINARY)
                FUZZ_ASSERT(u.n_args == 0);
        FUZZ_ASSERT(u.n_args == 0 || (u.args && !u.args[u.n_args]));
        for (size_t i = 0; i < u.n_args; i++)
                FUZZ_ASSERT(u.args[i]);
        stdio_uri_done(&u);
        free(uri);
        return 0;
}
