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

int log_internal(enum log_level level, int error, const char *fmt, ...) {
        int ret = error > 0 ? -error : error;
        if (level > log_max || log_fd < 0)
                return ret;

        int saved_errno = errno;
        /* Expand %m ourselves so that it names `error`, not whatever errno is now. */
        char fmtbuf[1024];
        size_t o = 0;
        for (const char *p = fmt; *p && o < sizeof fmtbuf - 1; p++) {
                if (p[0] == '%' && p[1] == 'm') {
                        const char *s = strerror(error ? abs(error) : saved_errno);
                        for (; *s && o < sizeof fmtbuf - 1; s++)
                                fmtbuf[o++] = *s == '%' ? '?' : *s;
                        p++;
                } else
                        fmtbuf[o++] = *p;
        }
        fmtbuf[o] = 0;

        char raw[2048];
        va_list ap;
        va_start(ap, fmt);
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wformat-nonliteral"
        vsnprintf(raw, sizeof raw, fmtbuf, ap);
#pragma GCC diagnostic pop
        va_end(ap);
        /* logfmt: the message stays one quoted value, whatever it holds */
        char msg[2 * sizeof raw];
        size_t m = 0;
        for (const char *p = raw; *p && m < sizeof msg - 2; p++) {
                if (*p == '"' || *p == '\\')
                        msg[m++] = '\\', msg[m++] = *p;
                else if (*p == '\n')
                        msg[m++] = '\\', msg[m++] = 'n';
                else
                        msg[m++] = (unsigned char)*p < 0x20 ? ' ' : *p;
        }
        msg[m] = 0;

        struct timespec ts;
        struct tm tm;
        clock_gettime(CLOCK_REALTIME, &ts);
        gmtime_r(&ts.tv_sec, &tm);
        char line[4400];
        int n = snprintf(line, sizeof line, "time=\"%04d-%02d-%02dT%02d:%02d:%02d.%06ldZ\" level=%s msg=\"%s\" pid=%d%s%s\n",
                         tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
                         ts.tv_nsec / 1000, level_names[level], msg, (int)getpid(), log_ident ? " id=" : "",
                         log_ident ? log_ident : "");
        if (n > (int)sizeof line)
                n = sizeof line;
        if (n > 0) {
                ssize_t w = write(log_fd, line, (size_t)n); /* one write: lines stay whole */
                (void)w;
        }
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
