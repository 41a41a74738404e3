/* SPDX-License-Identifier: Apache-2.0 */
/* Unit tests for OCI spec parsing (config.json, process.json / exec specs): valid
 * inputs land in the structs, every malformed one gets -EINVAL and a message naming
 * the field. */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "macro.h"
#include "spec.h"
#include "unit.h"

START_TEST(test_process_full) {
        const char *json = "{\"terminal\":true,\"consoleSize\":{\"height\":40,\"width\":100},"
                           "\"user\":{\"uid\":1000,\"gid\":100,\"additionalGids\":[5,6]},"
                           "\"args\":[\"sh\",\"-c\",\"echo hi\"],\"env\":[\"PATH=/bin\",\"A=b\"],"
                           "\"cwd\":\"/work\",\"rlimits\":[{\"type\":\"RLIMIT_NOFILE\",\"hard\":1024,\"soft\":512}],"
                           "\"noNewPrivileges\":true,\"capabilities\":{\"bounding\":[]},\"unknownField\":[1,2]}";
        struct oci_process p;
        char *err = NULL;
        ck_assert_int_eq(oci_process_parse(json, strlen(json), &p, &err), 0);
        ck_assert_ptr_null(err);
        ck_assert(p.terminal);
        ck_assert_uint_eq(p.console_height, 40);
        ck_assert_uint_eq(p.console_width, 100);
        ck_assert_uint_eq(p.uid, 1000);
        ck_assert_uint_eq(p.gid, 100);
        ck_assert_uint_eq(p.n_additional_gids, 2);
        ck_assert_uint_eq(p.additional_gids[1], 6);
        ck_assert_uint_eq(p.n_args, 3);
        ck_assert_str_eq(p.args[2], "echo hi");
        ck_assert_ptr_null(p.args[3]);
        ck_assert_uint_eq(p.n_env, 2);
        ck_assert_str_eq(p.env[1], "A=b");
        ck_assert_ptr_null(p.env[2]);
        ck_assert_str_eq(p.cwd, "/work");
        ck_assert_uint_eq(p.n_rlimits, 1);
        ck_assert_str_eq(p.rlimits[0].type, "RLIMIT_NOFILE");
        ck_assert_uint_eq(p.rlimits[0].hard, 1024);
        ck_assert_uint_eq(p.rlimits[0].soft, 512);
        ck_assert(p.no_new_privileges);
        oci_process_done(&p);
}
END_TEST

START_TEST(test_process_minimal) {
        const char *json = "{\"args\":[\"true\"],\"cwd\":\"/\",\"user\":{\"uid\":0,\"gid\":0}}";
        struct oci_process p;
        char *err = NULL;
        ck_assert_int_eq(oci_process_parse(json, strlen(json), &p, &err), 0);
        ck_assert(!p.terminal);
        ck_assert_uint_eq(p.n_env, 0);
        ck_assert_ptr_nonnull(p.env);
        ck_assert_ptr_null(p.env[0]);
        ck_assert_uint_eq(p.n_rlimits, 0);
        ck_assert_uint_eq(p.console_width, 0);
        oci_process_done(&p);
}
END_TEST

struct bad_case {
        const char *json;
        const char *message_part; /* expected in the error */
};

/* The parser's answer r, err for c: a refusal whose message names what c expects. */
static void expect_refusal(const struct bad_case *c, int r, char *err) {
        ck_assert_msg(r == -EINVAL, "accepted: %s", c->json);
        ck_assert_msg(err && strstr(err, c->message_part), "for %s: error \"%s\" lacks \"%s\"", c->json,
                      err ? err : "(null)", c->message_part);
        free(err);
}

static void expect_process_error(const struct bad_case *c) {
        struct oci_process p;
        char *err = NULL;
        int r = oci_process_parse(c->json, strlen(c->json), &p, &err);
        expect_refusal(c, r, err);
}

static void expect_config_error(const struct bad_case *c) {
        struct oci_config cfg;
        char *err = NULL;
        int r = oci_config_parse(c->json, strlen(c->json), &cfg, &err);
        expect_refusal(c, r, err);
}

START_TEST(test_process_invalid) {
        const struct bad_case cases[] = {
                {"", "invalid JSON"},
                {"{\"args\":[\"sh\"],\"cwd\":\"/\"", "invalid JSON"},
                {"[\"sh\"]", "must be a JSON object"},
                {"\"sh\"", "process: invalid JSON"},
                {"{\"cwd\":\"/\"}", "process.args"},
                {"{\"args\":[],\"cwd\":\"/\"}", "process.args"},
                {"{\"args\":\"sh\",\"cwd\":\"/\"}", "process.args"},
                {"{\"args\":[\"sh\",3],\"cwd\":\"/\"}", "process.args[1]"},
                {"{\"args\":[\"sh\\u0000x\"],\"cwd\":\"/\"}", "is not allowed"},
                {"{\"args\":[\"sh\"],\"cwd\":\"relative\"}", "process.cwd"},
                {"{\"args\":[\"sh\"]}", "process.cwd"},
                {"{\"args\":[\"sh\"],\"cwd\":7}", "process.cwd"},
                {"{\"args\":[\"sh\"],\"cwd\":\"/\",\"env\":[1]}", "process.env[0]"},
                {"{\"args\":[\"sh\"],\"cwd\":\"/\",\"env\":{}}", "process.env"},
                {"{\"args\":[\"sh\"],\"cwd\":\"/\",\"user\":[]}", "process.user"},
                {"{\"args\":[\"sh\"],\"cwd\":\"/\",\"user\":{\"uid\":-1,\"gid\":0}}", "process.user.uid"},
                {"{\"args\":[\"sh\"],\"cwd\":\"/\",\"user\":{\"uid\":4294967296,\"gid\":0}}", "process.user.uid"},
                {"{\"args\":[\"sh\"],\"cwd\":\"/\",\"user\":{\"uid\":\"0\",\"gid\":0}}", "process.user.uid"},
                {"{\"args\":[\"sh\"],\"cwd\":\"/\",\"user\":{\"uid\":0,\"gid\":1e3}}", "process.user.gid"},
                {"{\"args\":[\"sh\"],\"cwd\":\"/\",\"user\":{\"uid\":0,\"gid\":0,\"additionalGids\":[\"a\"]}}",
                 "process.user.additionalGids"},
                {"{\"args\":[\"sh\"],\"cwd\":\"/\",\"rlimits\":{}}", "process.rlimits"},
                {"{\"args\":[\"sh\"],\"cwd\":\"/\",\"rlimits\":[{\"type\":\"NOFILE\",\"hard\":1,\"soft\":1}]}",
                 "process.rlimits[0]"},
                {"{\"args\":[\"sh\"],\"cwd\":\"/\",\"rlimits\":[{\"type\":\"RLIMIT_NOFILE\",\"hard\":-1,\"soft\":1}]}",
                 "process.rlimits[0]"},
                {"{\"args\":[\"sh\"],\"cwd\":\"/\",\"terminal\":\"yes\"}", "process.terminal"},
                {"{\"args\":[\"sh\"],\"cwd\":\"/\",\"consoleSize\":[80,24]}", "process.consoleSize"},
                {"{\"args\":[\"sh\"],\"cwd\":\"/\",\"consoleSize\":{\"height\":24}}", "process.consoleSize.width"},
        };
        for (size_t i = 0; i < ELEMENTSOF(cases); i++)
                expect_process_error(&cases[i]);
}
END_TEST

/* Nesting and size limits are enforced before the JSON library sees the text. */
START_TEST(test_limits) {
        size_t depth = 10000;
        char *deep = malloc(2 * depth + 64);
        size_t k = 0;
        k += (size_t)sprintf(deep, "{\"args\":[\"sh\"],\"cwd\":\"/\",\"x\":");
        for (size_t i = 0; i < depth; i++)
                deep[k++] = '[';
        for (size_t i = 0; i < depth; i++)
                deep[k++] = ']';
        deep[k++] = '}';
        deep[k] = 0;
        const struct bad_case c = {deep, "nested deeper than"};
        expect_process_error(&c);
        free(deep);

        /* 64 levels are fine, 65 are not */
        char ok[512], bad[512];
        k = (size_t)sprintf(ok, "{\"args\":[\"sh\"],\"cwd\":\"/\",\"x\":");
        for (int i = 0; i < 63; i++)
                ok[k++] = '[';
        for (int i = 0; i < 63; i++)
                ok[k++] = ']';
        ok[k++] = '}';
        ok[k] = 0;
        struct oci_process p;
        char *err = NULL;
        ck_assert_int_eq(oci_process_parse(ok, strlen(ok), &p, &err), 0);
        oci_process_done(&p);
        strcpy(bad, ok);
        memmove(bad + 30, bad + 29, strlen(bad + 29) + 1);
        bad[29] = '[';
        size_t l = strlen(bad);
        memmove(bad + l - 1, bad + l - 2, 3);
        bad[l - 1] = ']';
        const struct bad_case c2 = {bad, "nested deeper than"};
        expect_process_error(&c2);

        /* Brackets inside strings do not count. */
        char str[512];
        k = (size_t)sprintf(str, "{\"args\":[\"");
        for (int i = 0; i < 200; i++)
                str[k++] = '[';
        k += (size_t)sprintf(str + k, "\"],\"cwd\":\"/\"}");
        ck_assert_int_eq(oci_process_parse(str, k, &p, &err), 0);
        oci_process_done(&p);

        size_t big = SPEC_MAX_FILE_SIZE + 1;
        char *huge = malloc(big);
        memset(huge, ' ', big);
        huge[0] = '{';
        huge[big - 1] = '}';
        struct oci_config cfg;
        ck_assert_int_eq(oci_config_parse(huge, big, &cfg, &err), -EINVAL);
        ck_assert_ptr_nonnull(strstr(err, "larger than"));
        free(err);
        free(huge);
}
END_TEST

START_TEST(test_config_valid) {
        const char *json =
                "{\"ociVersion\":\"1.0.2\",\"root\":{\"path\":\"rootfs\",\"readonly\":true},\"hostname\":\"box\","
                "\"process\":{\"args\":[\"sleep\",\"1\"],\"cwd\":\"/\",\"user\":{\"uid\":0,\"gid\":0}},"
                "\"linux\":{\"namespaces\":[{\"type\":\"mount\"},{\"type\":\"pid\"},"
                "{\"type\":\"network\",\"path\":\"/proc/1/ns/net\"}],\"cgroupsPath\":\"/nanoshim/c1\"},"
                "\"annotations\":{\"io.containerd.runc.v2.group\":\"pod1\",\"other\":\"x\"},\"mounts\":[]}";
        struct oci_config c;
        char *err = NULL;
        ck_assert_int_eq(oci_config_parse(json, strlen(json), &c, &err), 0);
        ck_assert_str_eq(c.root_path, "rootfs");
        ck_assert(c.root_readonly);
        ck_assert_str_eq(c.hostname, "box");
        ck_assert(c.has_process);
        ck_assert_str_eq(c.process.args[0], "sleep");
        ck_assert(c.private_pid_namespace);
        ck_assert_str_eq(c.cgroups_path, "/nanoshim/c1");
        ck_assert_str_eq(oci_config_annotation(&c, "io.containerd.runc.v2.group"), "pod1");
        ck_assert_ptr_null(oci_config_annotation(&c, "absent"));
        oci_config_done(&c);

        /* A pid namespace joined by path is not private; no process is fine (containerd
         * may create without one only for exec-only specs, but the parser allows it). */
        const char *joined = "{\"root\":{\"path\":\"/abs/rootfs\"},\"linux\":{\"namespaces\":[{\"type\":\"pid\","
                             "\"path\":\"/proc/42/ns/pid\"}]}}";
        ck_assert_int_eq(oci_config_parse(joined, strlen(joined), &c, &err), 0);
        ck_assert(!c.private_pid_namespace);
        ck_assert(!c.has_process);
        ck_assert_ptr_null(c.cgroups_path);
        ck_assert(!c.has_poststop_hooks);
        oci_config_done(&c);

        const char *hooks = "{\"hooks\":{\"prestart\":[],\"poststop\":[{\"path\":\"/bin/true\"}]}}";
        ck_assert_int_eq(oci_config_parse(hooks, strlen(hooks), &c, &err), 0);
        ck_assert(c.has_poststop_hooks);
        ck_assert(!c.has_poststart_hooks);
        oci_config_done(&c);
        const char *start = "{\"hooks\":{\"poststart\":[{\"path\":\"/bin/true\"}],\"poststop\":null}}";
        ck_assert_int_eq(oci_config_parse(start, strlen(start), &c, &err), 0);
        ck_assert(c.has_poststart_hooks);
        ck_assert(!c.has_poststop_hooks);
        oci_config_done(&c);
        const char *no_post = "{\"hooks\":{\"poststop\":[]}}";
        ck_assert_int_eq(oci_config_parse(no_post, strlen(no_post), &c, &err), 0);
        ck_assert(!c.has_poststop_hooks);
        oci_config_done(&c);
}
END_TEST

START_TEST(test_config_invalid) {
        const struct bad_case cases[] = {
                {"{\"root\":{\"path\":\"\"}}", "root.path"},
                {"{\"root\":{\"path\":5}}", "root.path"},
                {"{\"root\":\"rootfs\"}", "root.path"},
                {"{\"root\":{\"path\":\"r\",\"readonly\":1}}", "root.readonly"},
                {"{\"hostname\":[]}", "hostname"},
                {"{\"process\":[]}", "process"},
                {"{\"process\":{\"args\":[\"sh\"],\"cwd\":\"x\"}}", "process.cwd"},
                {"{\"linux\":[]}", "linux"},
                {"{\"linux\":{\"namespaces\":{}}}", "linux.namespaces"},
                {"{\"linux\":{\"namespaces\":[{\"type\":1}]}}", "linux.namespaces[0]"},
                {"{\"linux\":{\"namespaces\":[{\"type\":\"pid\",\"path\":false}]}}", "linux.namespaces[0]"},
                {"{\"linux\":{\"cgroupsPath\":1}}", "linux.cgroupsPath"},
                {"{\"annotations\":[]}", "annotations"},
                {"{\"hooks\":[]}", "hooks"},
                {"{\"hooks\":{\"poststop\":{}}}", "hooks"},
                {"{\"hooks\":{\"poststart\":\"/bin/true\"}}", "hooks"},
                {"{\"annotations\":{\"a\":1}}", "annotations.a"},
                {"{\"root\":{\"path\":\"r\"},\"root\":{\"path\":\"s\"}}", "invalid JSON"}, /* duplicate key */
        };
        for (size_t i = 0; i < ELEMENTSOF(cases); i++)
                expect_config_error(&cases[i]);
}
END_TEST

/* Loading from a directory: a missing file and a planted symlink are clear errors. */
START_TEST(test_load) {
        char dir[] = "/tmp/test-spec-XXXXXX";
        ck_assert_ptr_nonnull(mkdtemp(dir));
        int dfd = open(dir, O_DIRECTORY | O_CLOEXEC);
        ck_assert_int_ge(dfd, 0);
        struct oci_config c;
        struct oci_process p;
        char *err = NULL;
        ck_assert_int_eq(oci_config_load(dfd, "config.json", &c, &err), -ENOENT);
        ck_assert_ptr_nonnull(strstr(err, "cannot read config.json"));
        free(err);
        err = NULL;
        const char *proc = "{\"args\":[\"true\"],\"cwd\":\"/\"}";
        int fd = openat(dfd, "real.json", O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
        ck_assert_int_eq(write(fd, proc, strlen(proc)), (ssize_t)strlen(proc));
        close(fd);
        ck_assert_int_eq(oci_process_load(dfd, "real.json", &p, &err), 0);
        oci_process_done(&p);
        ck_assert_int_eq(symlinkat("real.json", dfd, "process.json"), 0);
        ck_assert_int_eq(oci_process_load(dfd, "process.json", &p, &err), -ELOOP);
        ck_assert_ptr_nonnull(strstr(err, "cannot read process.json"));
        free(err);
        unlinkat(dfd, "process.json", 0);
        unlinkat(dfd, "real.json", 0);
        close(dfd);
        rmdir(dir);
}
END_TEST

int main(void) {
        Suite *s = suite_create("spec");
        TCase *tc = tcase_create("spec");
        tcase_set_timeout(tc, 60);
        tcase_add_test(tc, test_process_full);
        tcase_add_test(tc, test_process_minimal);
        tcase_add_test(tc, test_process_invalid);
        tcase_add_test(tc, test_limits);
        tcase_add_test(tc, test_config_valid);
        tcase_add_test(tc, test_config_invalid);
        tcase_add_test(tc, test_load);
        suite_add_tcase(s, tc);
        return run_suite(s);
}
