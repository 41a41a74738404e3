/* SPDX-License-Identifier: Apache-2.0 */
#include "ids.h"

#include <string.h>

static bool is_alnum(char c) {
        return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
}

bool identifier_is_valid(const char *s) {
        if (!s)
                return false;
        size_t n = strlen(s);
        if (n == 0 || n > IDENTIFIER_MAX)
                return false;
        bool prev_sep = true; /* no separator first */
        for (size_t i = 0; i < n; i++) {
                if (is_alnum(s[i]))
                        prev_sep = false;
                else if (s[i] == '.' || s[i] == '_' || s[i] == '-') {
                        if (prev_sep)
                                return false;
                        prev_sep = true;
                } else
                        return false;
        }
        return !prev_sep;
}

bool path_is_normal_absolute(const char *p, size_t max_len) {
        size_t len = p ? strlen(p) : 0;
        if (!p || p[0] != '/' || len > max_len || (len > 1 && p[len - 1] == '/'))
                return false;
        /* every component: not empty (//), not "." and not ".." */
        for (const char *c = p + 1; *c;) {
                const char *e = strchrnul(c, '/');
                size_t l = (size_t)(e - c);
                if (l == 0 || (l == 1 && c[0] == '.') || (l == 2 && c[0] == '.' && c[1] == '.'))
                        return false;
                c = *e ? e + 1 : e;
        }
        return true;
}
