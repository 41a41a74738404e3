/* SPDX-License-Identifier: Apache-2.0 */
/* What `start` answers each containerd (launch_bootstrap_version) and the Go build
 * information it reads to tell them apart. Apart from test-shim.c: <elf.h> and libev's
 * <ev.h> both define EV_NONE. */
#include <check.h>
#include <elf.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "go-buildinfo.h"
#include "launch.h"
#include "macro.h"
#include "unit.h"

/* A minimal 64-bit ELF file holding one section .go.buildinfo with INFO; returns its path. */
static char *write_go_elf(const char *info) {
        static const char names[] = "\0.shstrtab\0.go.buildinfo";
        size_t info_len = strlen(info), data_off = sizeof(Elf64_Ehdr);
        Elf64_Ehdr eh = {.e_type = ET_EXEC, .e_machine = EM_X86_64, .e_version = EV_CURRENT,
                         .e_ehsize = sizeof eh, .e_shentsize = sizeof(Elf64_Shdr), .e_shnum = 3, .e_shstrndx = 1};
        memcpy(eh.e_ident, ELFMAG, SELFMAG);
        eh.e_ident[EI_CLASS] = ELFCLASS64;
        eh.e_ident[EI_DATA] = ELFDATA2LSB;
        eh.e_shoff = data_off + sizeof names + info_len;
        Elf64_Shdr sh[3] = {
                {0},
                {.sh_name = 1, .sh_type = SHT_STRTAB, .sh_offset = data_off, .sh_size = sizeof names},
                {.sh_name = 11, .sh_type = SHT_PROGBITS, .sh_offset = data_off + sizeof names, .sh_size = info_len},
        };
        char *path = strdup("/tmp/nanoshim-elf-XXXXXX");
        int fd = mkstemp(path);
        ck_assert_int_ge(fd, 0);
        ck_assert(write(fd, &eh, sizeof eh) == sizeof eh && write(fd, names, sizeof names) == sizeof names &&
                  write(fd, info, info_len) == (ssize_t)info_len && write(fd, sh, sizeof sh) == sizeof sh);
        close(fd);
        return path;
}

/* containerd 1.6 (no $MAX_SHIM_VERSION) gets a bare address; 1.7 and 2.x set it and are
 * told apart by the module their binary was built from. */
START_TEST(test_bootstrap_version_per_containerd) {
        static const char head[] = "\xff Go buildinf:\x08\x02";
        struct {
                const char *modinfo;
                int major, bootstrap;
        } cases[] = {
                {"path\tgithub.com/containerd/containerd/v2/cmd/containerd\nmod\tgithub.com/containerd/containerd/v2\t(devel)", 2, 3},
                {"path\tgithub.com/containerd/containerd/cmd/containerd\nmod\tgithub.com/containerd/containerd\t(devel)\n"
                 "dep\tgithub.com/containerd/containerd/api\tv1.8.0", 1, 2},
                {"path\tgithub.com/containerd/containerd/v10/cmd/containerd", 10, 3},
                {"path\tgithub.com/example/other/cmd/other", 0, 2},
        };
        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                char info[512];
                snprintf(info, sizeof info, "%s%s", head, cases[i].modinfo);
                char *path = write_go_elf(info);
                ck_assert_int_eq(containerd_binary_major(path), cases[i].major);
                setenv("MAX_SHIM_VERSION", "2", 1);
                ck_assert_int_eq(launch_bootstrap_version(path), cases[i].bootstrap);
                unsetenv("MAX_SHIM_VERSION");
                ck_assert_int_eq(launch_bootstrap_version(path), 0);
                unlink(path);
                free(path);
        }
        /* not ELF, missing, no path: version 2, which 1.7 and 2.x both take */
        setenv("MAX_SHIM_VERSION", "2", 1);
        ck_assert_int_eq(containerd_binary_major("/proc/self/status"), 0);
        ck_assert_int_eq(launch_bootstrap_version("/nonexistent/containerd"), 2);
        ck_assert_int_eq(launch_bootstrap_version(NULL), 2);
        unsetenv("MAX_SHIM_VERSION");
}
END_TEST

int main(void) {
        Suite *s = suite_create("buildinfo");
        TCase *tc = tcase_create("buildinfo");
        tcase_add_test(tc, test_bootstrap_version_per_containerd);
        suite_add_tcase(s, tc);
        return run_suite(s);
}
