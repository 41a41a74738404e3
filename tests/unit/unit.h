/* SPDX-License-Identifier: Apache-2.0 */
/* Shared by the check unit test programs. */
#pragma once

#include <check.h>
#include <stdlib.h>

/* Run every test of the suite (each in its own forked process); the exit status for meson. */
static inline int run_suite(Suite *s) {
        SRunner *sr = srunner_create(s);
        srunner_run_all(sr, CK_NORMAL);
        int failed = srunner_ntests_failed(sr);
        srunner_free(sr);
        return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
