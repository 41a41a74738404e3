/* SPDX-License-Identifier: Apache-2.0 */
/* Unit tests of the daemon's pure parts: argv parsing, socket naming, sha256, runtime
 * options, mount options, the process state machine. */
#include <check.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>

#include "cli.h"
#include "launch.h"
#include "mount.h"
#include "container-internal.h" /* the state machine of struct process */
#include "runc-options.pb-c.h"
#include "runtime-options.h"
#include "sha256.h"
#include "macro.h"
#include "standalone.h"
#include "unit.h"

START_TEST(test_sha256_vectors) {
        char hex[65];
        sha256_hex("", 0, hex);
        ck_assert_str_eq(hex, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
        sha256_hex("abc", 3, hex);
        ck_assert_str_eq(hex, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
        const char *two = "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq"; /* 56 bytes: padding spills */
        sha256_hex(two, strlen(two), hex);
        ck_assert_str_eq(hex, "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
}
END_TEST

/* The reference's observed example: -address /tmp/ctrd/c.sock, ns default, id s1. */
START_TEST(test_socket_path_matches_runc_v2) {
        char *p = NULL;
        ck_assert_int_eq(launch_socket_path("/tmp/ctrd/c.sock", "default", "s1", &p), 0);
        ck_assert_str_eq(p, "/run/containerd/s/da4d91788d54acdb3e8821dc84ae6131e55bc571d50c82055fe18711dc2adb43");
        free(p);
        /* Path cleaning: duplicate slashes and a trailing slash do not change the name. */
        ck_assert_int_eq(launch_socket_path("/tmp//ctrd/c.sock/", "default", "s1", &p), 0);
        ck_assert_str_eq(p, "/run/containerd/s/da4d91788d54acdb3e8821dc84ae6131e55bc571d50c82055fe18711dc2adb43");
        free(p);
}
END_TEST

/* LD_LIBRARY_PATH keeps only absolute entries (an empty one is the current directory). */
START_TEST(test_clean_library_path) {
        static const struct {
                const char *in, *out; /* out NULL: unset */
        } cases[] = {
                {"/opt/containerd/lib:", "/opt/containerd/lib"},
                {"/opt/containerd/lib", "/opt/containerd/lib"},
                {":/a", "/a"},
                {"/a::/b", "/a:/b"},
                {"/a:lib:./x:/b", "/a:/b"},
                {":", NULL},
                {"", NULL},
                {"rel", NULL},
        };
        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                ck_assert_int_eq(setenv("LD_LIBRARY_PATH", cases[i].in, 1), 0);
                launch_clean_library_path();
                const char *v = getenv("LD_LIBRARY_PATH");
                if (cases[i].out)
                        ck_assert_msg(v && strcmp(v, cases[i].out) == 0, "'%s' -> '%s'", cases[i].in, v ? v : "(unset)");
                else
                        ck_assert_msg(!v, "'%s' -> '%s', not unset", cases[i].in, v);
        }
        unsetenv("LD_LIBRARY_PATH");
        launch_clean_library_path(); /* unset stays unset */
        ck_assert_ptr_null(getenv("LD_LIBRARY_PATH"));
}
END_TEST

START_TEST(test_cli_go_flag_spellings) {
        char *argv1[] = {"shim", "-namespace", "ns1", "--address", "/a.sock", "-id=c1", "--bundle=/b", "-debug",
                         "start", NULL};
        struct shim_args a;
        ck_assert_int_eq(cli_parse(9, argv1, &a), 0);
        ck_assert_int_eq(a.action, ACTION_START);
        ck_assert_str_eq(a.namespace, "ns1");
        ck_assert_str_eq(a.address, "/a.sock");
        ck_assert_str_eq(a.id, "c1");
        ck_assert_str_eq(a.bundle, "/b");
        ck_assert(a.debug);
        char *argv2[] = {"shim", "-id", "x", "-publish-binary", "/usr/bin/containerd", "delete", NULL};
        ck_assert_int_eq(cli_parse(6, argv2, &a), 0);
        ck_assert_int_eq(a.action, ACTION_DELETE);
        ck_assert(!a.debug);
        char *argv3[] = {"shim", "-id", "x", NULL};
        ck_assert_int_eq(cli_parse(3, argv3, &a), 0);
        ck_assert_int_eq(a.action, ACTION_DAEMON);
        char *bad1[] = {"shim", "-nosuchflag", "x", NULL};
        ck_assert_int_eq(cli_parse(3, bad1, &a), -EINVAL);
        char *bad2[] = {"shim", "-id", NULL};
        ck_assert_int_eq(cli_parse(2, bad2, &a), -EINVAL);
        char *bad3[] = {"shim", "frobnicate", NULL};
        ck_assert_int_eq(cli_parse(2, bad3, &a), -EINVAL);
        char *bad4[] = {"shim", "-listen-fd", "1", NULL};
        ck_assert_int_eq(cli_parse(3, bad4, &a), -EINVAL);
}
END_TEST

START_TEST(test_runtime_options_toml) {
        const char *t = "# nanoshim runtime config\n[options]\nBinaryName = \"/usr/bin/crun\"\nRoot = \"/run/x\" # c\n"
                        "SystemdCgroup = true\nIoUid = 1000\nNoPivotRoot = false\nCriuPath = \"/opt/criu\"\n"
                        "CriuImagePath = \"/img\"\nCriuWorkPath = \"/work\"\n";
        struct runtime_options o;
        char *err = NULL;
        ck_assert_int_eq(runtime_options_parse_toml(t, strlen(t), &o, &err), 0);
        ck_assert_str_eq(o.binary_name, "/usr/bin/crun");
        ck_assert_str_eq(o.root, "/run/x");
        ck_assert(o.systemd_cgroup);
        ck_assert_uint_eq(o.io_uid, 1000);
        ck_assert_str_eq(o.criu_path, "/opt/criu");
        ck_assert_str_eq(o.criu_image_path, "/img");
        ck_assert_str_eq(o.criu_work_path, "/work");
        runtime_options_done(&o);
        const char *bad[] = {"Frob = 1\n", "BinaryName = crun\n", "SystemdCgroup = yes\n", "IoUid = -1\n",
                             "IoUid = 99999999999\n", "just words\n", "Root = \"unterminated\n"};
        for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
                err = NULL;
                ck_assert_int_eq(runtime_options_parse_toml(bad[i], strlen(bad[i]), &o, &err), -EINVAL);
                ck_assert_ptr_nonnull(err);
                ck_assert_ptr_nonnull(strstr(err, "line 1"));
                free(err);
        }
}
END_TEST

START_TEST(test_runtime_options_any) {
        Nanoshim__Runcopts__Options m = NANOSHIM__RUNCOPTS__OPTIONS__INIT;
        m.binary_name = "crun";
        m.root = "/run/r";
        m.io_gid = 7;
        m.criu_path = "/opt/criu";
        m.criu_image_path = "/img";
        m.criu_work_path = "/work";
        uint8_t buf[128];
        size_t len = nanoshim__runcopts__options__pack(&m, buf);
        struct runtime_options o;
        char *err = NULL;
        ck_assert_int_eq(runtime_options_decode(RUNC_OPTIONS_TYPE, buf, len, &o, &err), 0);
        ck_assert_str_eq(o.binary_name, "crun");
        ck_assert_str_eq(o.root, "/run/r");
        ck_assert_uint_eq(o.io_gid, 7);
        ck_assert_str_eq(o.criu_path, "/opt/criu");
        ck_assert_str_eq(o.criu_image_path, "/img");
        ck_assert_str_eq(o.criu_work_path, "/work");
        runtime_options_done(&o);
        ck_assert_int_eq(runtime_options_decode("example.com/Other", buf, len, &o, &err), -EINVAL);
        ck_assert_ptr_nonnull(strstr(err, "unsupported runtime options type \"example.com/Other\""));
        free(err);
        err = NULL;
        uint8_t garbage[] = {0xff, 0xff, 0xff};
        ck_assert_int_eq(runtime_options_decode(RUNC_OPTIONS_TYPE, garbage, sizeof garbage, &o, &err), -EINVAL);
        free(err);
        err = NULL;
        /* runtimeoptions.v1.Options naming a missing file: a clear error. */
        Nanoshim__Runcopts__RuntimeOptions ro = NANOSHIM__RUNCOPTS__RUNTIME_OPTIONS__INIT;
        ro.config_path = "/nonexistent/nanoshim.toml";
        len = nanoshim__runcopts__runtime_options__pack(&ro, buf);
        ck_assert_int_eq(runtime_options_decode(RUNTIME_OPTIONS_TYPE, buf, len, &o, &err), -EINVAL);
        ck_assert_ptr_nonnull(strstr(err, "/nonexistent/nanoshim.toml"));
        free(err);
}
END_TEST

START_TEST(test_mount_options) {
        /* loop mounts are refused before anything is mounted, and nothing leaks (ASan) */
        char *loop_opts[] = {"loop", "ro"};
        struct mount_spec loop_mount = {"ext4", "/nonexistent/img", loop_opts, 2};
        char *err = NULL;
        ck_assert_int_eq(mount_all(&loop_mount, 1, "/nonexistent/target", &err), -EOPNOTSUPP);
        ck_assert_ptr_nonnull(strstr(err, "bad options"));
        free(err);
        char *opts[] = {"ro", "nosuid", "index=off", "lowerdir=/a:/b", "rbind", "rprivate"};
        struct mount_flags f;
        ck_assert_int_eq(mount_parse_options(opts, 6, &f), 0);
        ck_assert(f.flags & MS_RDONLY);
        ck_assert(f.flags & MS_NOSUID);
        ck_assert(f.flags & MS_BIND);
        ck_assert(f.flags & MS_REC);
        ck_assert(f.propagation & MS_PRIVATE);
        ck_assert_str_eq(f.data, "index=off,lowerdir=/a:/b");
        free(f.data);
        char *rw[] = {"ro", "rw"};
        ck_assert_int_eq(mount_parse_options(rw, 2, &f), 0);
        ck_assert(!(f.flags & MS_RDONLY));
        free(f.data);
        /* data larger than a page is refused rather than truncated */
        char *big = malloc(5000);
        memset(big, 'x', 4999);
        big[4999] = 0;
        char *bigopts[] = {big};
        ck_assert_int_eq(mount_parse_options(bigopts, 1, &f), -E2BIG);
        free(big);
}
END_TEST

START_TEST(test_state_machine) {
        ck_assert(process_can_transition(PROCESS_CREATED, PROCESS_RUNNING));
        ck_assert(process_can_transition(PROCESS_CREATED, PROCESS_STOPPED));
        ck_assert(process_can_transition(PROCESS_CREATED, PROCESS_DELETED));
        ck_assert(process_can_transition(PROCESS_RUNNING, PROCESS_PAUSED));
        ck_assert(process_can_transition(PROCESS_PAUSED, PROCESS_RUNNING));
        ck_assert(process_can_transition(PROCESS_PAUSED, PROCESS_STOPPED));
        ck_assert(process_can_transition(PROCESS_STOPPED, PROCESS_DELETED));
        ck_assert(!process_can_transition(PROCESS_STOPPED, PROCESS_RUNNING));
        ck_assert(!process_can_transition(PROCESS_RUNNING, PROCESS_DELETED));
        ck_assert(!process_can_transition(PROCESS_RUNNING, PROCESS_CREATED));
        ck_assert(!process_can_transition(PROCESS_DELETED, PROCESS_DELETED));
        ck_assert(!process_can_transition(_PROCESS_STATE_MAX, PROCESS_RUNNING));
        struct process *p = process_new(NULL, "c1", true);
        ck_assert_int_eq(process_transition(p, PROCESS_RUNNING), 0);
        ck_assert_int_eq(process_transition(p, PROCESS_CREATED), -EINVAL);
        ck_assert_int_eq(p->state, PROCESS_RUNNING);
        process_free(p);
}
END_TEST

START_TEST(test_standalone_parse) {
        struct standalone_launch l;
        char *err = NULL;
        const char *full = "{\"id\":\"c1\",\"stdin\":\"/f/in\",\"stdout\":\"/f/out\",\"stderr\":\"file:///f/err\","
                           "\"terminal\":true,\"runtime\":\"crun\",\"runtime_root\":\"/run/crun\",\"systemd_cgroup\":true,"
                           "\"no_pivot_root\":true,\"no_new_keyring\":true,\"events_address\":\"/run/m/ev.sock\","
                           "\"start\":false}";
        ck_assert_int_eq(standalone_parse(full, strlen(full), "ignored", &l, &err), 0);
        ck_assert_str_eq(l.id, "c1");
        ck_assert_str_eq(l.stdin_path, "/f/in");
        ck_assert_str_eq(l.stderr_path, "file:///f/err");
        ck_assert(l.terminal && l.systemd_cgroup && l.no_pivot_root && l.no_new_keyring && !l.start);
        ck_assert_str_eq(l.runtime, "crun");
        ck_assert_str_eq(l.runtime_root, "/run/crun");
        ck_assert_str_eq(l.events_address, "/run/m/ev.sock");
        standalone_done(&l);
        ck_assert_int_eq(standalone_parse("{}", 2, "from-flag", &l, &err), 0);
        ck_assert_str_eq(l.id, "from-flag");
        ck_assert(l.start); /* the default */
        ck_assert_ptr_null(l.stdout_path);
        standalone_done(&l);
        struct {
                const char *json, *message_part;
        } bad[] = {
                {"{}", "id \"\" is missing"},
                {"{\"id\":\"../x\"}", "not a valid container id"},
                {"{\"id\":\"c1\",\"termnal\":true}", "unknown key \"termnal\""},
                {"{\"id\":\"c1\",\"terminal\":\"yes\"}", "terminal must be true or false"},
                {"{\"id\":\"c1\",\"stdout\":3}", "stdout must be a string"},
                {"{\"id\":\"c1\",\"id\":\"c2\"}", "invalid JSON"},
                {"[]", "must be a JSON object"},
                {"{\"id\":", "invalid JSON"},
        };
        for (size_t i = 0; i < ELEMENTSOF(bad); i++) {
                err = NULL;
                ck_assert_int_eq(standalone_parse(bad[i].json, strlen(bad[i].json), i == 0 ? NULL : "d", &l, &err), -EINVAL);
                ck_assert_msg(err && strstr(err, bad[i].message_part), "%s: %s", bad[i].json, err ? err : "(null)");
                free(err);
        }
        char *huge = calloc(1, STANDALONE_MAX_SIZE + 2);
        memset(huge, ' ', STANDALONE_MAX_SIZE + 1);
        err = NULL;
        ck_assert_int_eq(standalone_parse(huge, STANDALONE_MAX_SIZE + 1, "d", &l, &err), -EINVAL);
        ck_assert_ptr_nonnull(strstr(err, "larger than"));
        free(err);
        free(huge);
}
END_TEST

int main(void) {
        Suite *s = suite_create("shim");
        TCase *tc = tcase_create("shim");
        tcase_set_timeout(tc, 30);
        tcase_add_test(tc, test_sha256_vectors);
        tcase_add_test(tc, test_socket_path_matches_runc_v2);
        tcase_add_test(tc, test_clean_library_path);
        tcase_add_test(tc, test_cli_go_flag_spellings);
        tcase_add_test(tc, test_runtime_options_toml);
        tcase_add_test(tc, test_runtime_options_any);
        tcase_add_test(tc, test_mount_options);
        tcase_add_test(tc, test_state_machine);
        tcase_add_test(tc, test_standalone_parse);
        suite_add_tcase(s, tc);
        return run_suite(s);
}
