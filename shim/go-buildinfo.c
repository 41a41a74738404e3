/* SPDX-License-Identifier: Apache-2.0 */
/* Kept apart from the rest of the shim: <elf.h> and libev's <ev.h> both define EV_NONE. */
#include "go-buildinfo.h"

#include <elf.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "macro.h"

#define SECTION_MAX 65536 /* .go.buildinfo is a few hundred bytes; so is .shstrtab */

static bool pread_all(int fd, void *buf, size_t n, uint64_t off) {
        return off <= INT64_MAX && pread(fd, buf, n, (off_t)off) == (ssize_t)n;
}

/* The contents of section NAME of the 64-bit ELF file FD, if at most SECTION_MAX bytes. */
static char *elf_section(int fd, const char *name, size_t *ret_len) {
        Elf64_Ehdr eh;
        if (!pread_all(fd, &eh, sizeof eh, 0) || memcmp(eh.e_ident, ELFMAG, SELFMAG) != 0 ||
            eh.e_ident[EI_CLASS] != ELFCLASS64 || eh.e_shentsize != sizeof(Elf64_Shdr) || eh.e_shnum == 0 ||
            eh.e_shstrndx >= eh.e_shnum)
                return NULL;
        _cleanup_free_ Elf64_Shdr *sh = calloc(eh.e_shnum, sizeof *sh);
        if (!sh || !pread_all(fd, sh, (size_t)eh.e_shnum * sizeof *sh, eh.e_shoff))
                return NULL;
        const Elf64_Shdr *names_sh = &sh[eh.e_shstrndx];
        if (names_sh->sh_size == 0 || names_sh->sh_size > SECTION_MAX)
                return NULL;
        _cleanup_free_ char *names = malloc(names_sh->sh_size + 1);
        if (!names || !pread_all(fd, names, names_sh->sh_size, names_sh->sh_offset))
                return NULL;
        names[names_sh->sh_size] = 0;
        for (unsigned i = 0; i < eh.e_shnum; i++) {
                if (sh[i].sh_name >= names_sh->sh_size || strcmp(names + sh[i].sh_name, name) != 0)
                        continue;
                if (sh[i].sh_size == 0 || sh[i].sh_size > SECTION_MAX)
                        return NULL;
                char *data = malloc(sh[i].sh_size);
                if (!data || !pread_all(fd, data, sh[i].sh_size, sh[i].sh_offset)) {
                        free(data);
                        return NULL;
                }
                *ret_len = sh[i].sh_size;
                return data;
        }
        return NULL;
}

int containerd_binary_major(const char *path) {
        _cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC);
        size_t len = 0;
        _cleanup_free_ char *info = fd >= 0 ? elf_section(fd, ".go.buildinfo", &len) : NULL;
        if (!info)
                return 0;
        /* "path\tgithub.com/containerd/containerd/v2/cmd/containerd": the main package */
        static const char module[] = "\tgithub.com/containerd/containerd/";
        const char *m = memmem(info, len, module, sizeof module - 1);
        if (!m)
                return 0;
        const char *d = m + sizeof module - 1, *end = info + len;
        if (d == end || *d != 'v')
                return 1;
        unsigned major = 0;
        for (d++; d < end && *d >= '0' && *d <= '9' && major < 1000; d++)
                major = major * 10 + (unsigned)(*d - '0');
        return major >= 2 && d < end && *d == '/' ? (int)major : 1;
}
