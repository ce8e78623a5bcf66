/* alloc.c — allocation that cannot fail (include/fraudwatch/alloc.h says
 * when that is the right policy and when it is not). */
#include "fraudwatch/alloc.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

_Noreturn void fw_oom(void)
{
    /* No stdio buffering, no allocation: write(2) straight away. */
    static const char msg[] = "fraudwatch: out of memory\n";
    ssize_t n = write(STDERR_FILENO, msg, sizeof msg - 1);
    (void)n;
    abort();
}

void *fw_xmalloc(size_t n)
{
    void *p = malloc(n ? n : 1);
    if (!p)
        fw_oom();
    return p;
}

void *fw_xcalloc(size_t n, size_t size)
{
    void *p = calloc(n ? n : 1, size ? size : 1);
    if (!p)
        fw_oom();
    return p;
}

void *fw_xrealloc(void *p, size_t n)
{
    void *q = realloc(p, n ? n : 1);
    if (!q)
        fw_oom();
    return q;
}

char *fw_xstrdup(const char *s)
{
    char *p = strdup(s);
    if (!p)
        fw_oom();
    return p;
}

char *fw_xstrndup(const char *s, size_t n)
{
    char *p = fw_xmalloc(n + 1);
    memcpy(p, s, n);
    p[n] = '\0';
    return p;
}
