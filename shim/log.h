/* SPDX-License-Identifier: Apache-2.0 */
/* The only code that formats log lines. Modules log at debug level and return -errno;
 * the caller that handles an error logs it once. */
#pragma once

#include <errno.h>
#include <stdbool.h>

#include "macro.h"

enum log_level { LOG_LEVEL_ERROR, LOG_LEVEL_WARN, LOG_LEVEL_INFO, LOG_LEVEL_DEBUG };

/* Where lines go (default: stderr) and the most verbose level written. The fd is
 * borrowed; writes never block (EAGAIN/EPIPE drop the line). */
void log_setup(int borrowed_fd, enum log_level max_level, const char *ident);
enum log_level log_get_max_level(void);

/* Returns -abs(error) (or 0 when error is 0), so `return log_error_errno(r, ...)` works.
 * "%m" in the format is the error's text. */
int log_internal(enum log_level level, int error, const char *fmt, ...) _printf_(3, 4);

#define log_error(...) log_internal(LOG_LEVEL_ERROR, 0, __VA_ARGS__)
#define log_warn(...) log_internal(LOG_LEVEL_WARN, 0, __VA_ARGS__)
#define log_info(...) log_internal(LOG_LEVEL_INFO, 0, __VA_ARGS__)
#define log_debug(...) log_internal(LOG_LEVEL_DEBUG, 0, __VA_ARGS__)
#define log_error_errno(e, ...) log_internal(LOG_LEVEL_ERROR, (e), __VA_ARGS__)
#define log_warn_errno(e, ...) log_internal(LOG_LEVEL_WARN, (e), __VA_ARGS__)
#define log_info_errno(e, ...) log_internal(LOG_LEVEL_INFO, (e), __VA_ARGS__)
#define log_debug_errno(e, ...) log_internal(LOG_LEVEL_DEBUG, (e), __VA_ARGS__)

/* The calendar date of a day count since 1970-01-01 (UTC), as in log lines' time=. */
void log_civil_date(long long days, int *year, int *month, int *day);

/* For parsers that explain a refusal to their caller: *ret_error = the formatted text
 * (malloc'd; NULL if out of memory; ret_error may be NULL). Returns -EINVAL. */
int error_setf(char **ret_error, const char *fmt, ...) _printf_(2, 3);
