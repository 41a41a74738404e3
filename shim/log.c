/* SPDX-License-Identifier: Apache-2.0 */
#include "log.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static int log_fd = STDERR_FILENO;
static enum log_level log_max = LOG_LEVEL_INFO;
static const char *log_ident = NULL; /* the id= field, when set */

void log_setup(int borrowed_fd, enum log_level max_level, const char *ident) {
        log_fd = borrowed_fd;
        log_max = max_level;
        log_ident = ident;
}

enum log_level log_get_max_level(void) {
        return log_max;
}

static const char *const level_names[] = {
        [LOG_LEVEL_ERROR] = "error",
        [LOG_LEVEL_WARN] = "warning",
        [LOG_LEVEL_INFO] = "info",
        [LOG_LEVEL_DEBUG] = "debug",
};

/* Y-M-D of a day count since 1970-01-01 (proleptic Gregorian): what gmtime_r() would
 * give, without its time zone machinery (which reads /etc/localtime once and keeps it
 * on the heap of every shim). Counted in 400-year eras of 146097 days from 0000-03-01,
 * so that the leap day ends each year. */
void log_civil_date(long long days, int *year, int *month, int *day) {
        long long z = days + 719468; /* days from 0000-03-01 to 1970-01-01 */
        long long era = (z >= 0 ? z : z - 146096) / 146097;
        long long doe = z - era * 146097;                                      /* [0, 146096] */
        long long yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365; /* [0, 399] */
        long long doy = doe - (365 * yoe + yoe / 4 - yoe / 100);               /* [0, 365], from March */
        long long mp = (5 * doy + 2) / 153;                                    /* [0, 11], March = 0 */
        *day = (int)(doy - (153 * mp + 2) / 5 + 1);
        *month = (int)(mp < 10 ? mp + 3 : mp - 9);
        *year = (int)(yoe + era * 400 + (*month <= 2));
}

/* The buffers live in .bss, not on the stack: a line is formatted deep in callbacks,
 * and 7 KiB of frame there would add as many stack pages to every shim for its whole
 * life. Only the pages a line's length reaches are ever touched, and they share pages
 * with other .bss data (aligning the buffers to a page measured one page worse).
 * Single-threaded; a forked child has its own copy. */
static struct {
        char fmt[1024];
        char raw[2048];
        char line[4400];
} lb;

int log_internal(enum log_level level, int error, const char *fmt, ...) {
        int ret = error > 0 ? -error : error;
        if (level > log_max || log_fd < 0)
                return ret;

        int saved_errno = errno;
        /* Expand %m ourselves so that it names `error`, not whatever errno is now. */
        size_t o = 0;
        for (const char *p = fmt; *p && o < sizeof lb.fmt - 1; p++) {
                if (p[0] == '%' && p[1] == 'm') {
                        const char *s = strerror(error ? abs(error) : saved_errno);
                        for (; *s && o < sizeof lb.fmt - 1; s++)
                                lb.fmt[o++] = *s == '%' ? '?' : *s;
                        p++;
                } else
                        lb.fmt[o++] = *p;
        }
        lb.fmt[o] = 0;

        va_list ap;
        va_start(ap, fmt);
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wformat-nonliteral"
        vsnprintf(lb.raw, sizeof lb.raw, lb.fmt, ap);
#pragma GCC diagnostic pop
        va_end(ap);

        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        long long days = ts.tv_sec / 86400, secs = ts.tv_sec % 86400;
        if (secs < 0)
                secs += 86400, days--;
        int year, month, day;
        log_civil_date(days, &year, &month, &day);
        int n = snprintf(lb.line, sizeof lb.line, "time=\"%04d-%02d-%02dT%02d:%02d:%02d.%06ldZ\" level=%s msg=\"", year,
                         month, day, (int)(secs / 3600), (int)(secs / 60 % 60), (int)(secs % 60), ts.tv_nsec / 1000,
                         level_names[level]);
        /* logfmt: the message stays one quoted value, whatever it holds; room is kept
         * for the fields after it */
        size_t m = n > 0 ? (size_t)n : 0, stop = sizeof lb.line - 128;
        for (const char *p = lb.raw; *p && m < stop; p++) {
                if (*p == '"' || *p == '\\')
                        lb.line[m++] = '\\', lb.line[m++] = *p;
                else if (*p == '\n')
                        lb.line[m++] = '\\', lb.line[m++] = 'n';
                else
                        lb.line[m++] = (unsigned char)*p < 0x20 ? ' ' : *p;
        }
        n = snprintf(lb.line + m, sizeof lb.line - m, "\" pid=%d%s%s\n", (int)getpid(), log_ident ? " id=" : "",
                     log_ident ? log_ident : "");
        size_t len = m + (n > 0 ? (size_t)n : 0);
        if (len > sizeof lb.line - 1) { /* an overlong id: the line still ends */
                len = sizeof lb.line;
                lb.line[len - 1] = '\n';
        }
        ssize_t w = write(log_fd, lb.line, len); /* one write: lines stay whole */
        (void)w;
        errno = saved_errno;
        return ret;
}

int error_setf(char **ret_error, const char *fmt, ...) {
        if (ret_error) {
                va_list ap;
                va_start(ap, fmt);
                if (vasprintf(ret_error, fmt, ap) < 0)
                        *ret_error = NULL;
                va_end(ap);
        }
        return -EINVAL;
}
