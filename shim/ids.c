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
