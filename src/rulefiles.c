/* rulefiles.c — the files of a rule set: reading a rules directory (or one
 * file) safely, the names of rule files and watchlists, the .list text, and
 * freeing.  See include/fraudwatch/rulefiles.h for the contract.
 *
 * One module, because the loader (rules_load.c) and the Redis store
 * (then rulestore.c, now src/rstore_*.c) each had their own copy of this and the copies had drifted
 * apart (a watchlist ".x" was valid for one and not the other).
 *
 * Why reading is shaped this way.  A rules directory is written by people
 * and by deployment tools, and is read by the daemon's reload thread on
 * every inotify event: whatever lands in it must not stop the daemon.  The
 * old reader read each file whole and checked its size afterwards, so a
 * sparse 3 GiB file took 3 GiB of memory, a link to /dev/zero never ended
 * and a FIFO blocked the open forever.  Now a directory is read in three
 * steps:
 *
 *   1. names: every NAME.json / NAME.list (not starting with '.'), at most
 *      FW_RULEDIR_MAX_FILES of them, sorted;
 *   2. stat() each name (following a symbolic link): it must be a regular
 *      file within its limit, and all of them within FW_RULEDIR_MAX_BYTES
 *      together.  Nothing is opened yet: opening a FIFO blocks, and opening
 *      some devices does things (a watchdog arms, a tape rewinds);
 *   3. open each with O_NONBLOCK (a FIFO swapped in since step 2 cannot
 *      block the open), fstat() the descriptor — the check that counts,
 *      since the name may point elsewhere by now — and read at most
 *      limit + 1 bytes: a file that grew meanwhile is refused, not followed.
 *
 * Any problem refuses the whole set, every problem found named on its own
 * line ("rules/huge.json: 3221225472 bytes, over the 64 MiB limit for a rule
 * file"), and the caller keeps what it had.  The largest allocation is the
 * file's size as fstat() gave it, after the check, plus one byte. */
#include "fraudwatch/rulefiles.h"
#include "fraudwatch/timetext.h"
#include "fraudwatch/event.h"
#include "fraudwatch/text.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fraudwatch/alloc.h"

/* Memory.  Small allocations (names, arrays) use the fw_x* family and abort
 * when memory is out (include/fraudwatch/alloc.h); a file's contents do
 * not: a file too large for the memory left is refused with a message like
 * any other bad file (read_bounded returns -2). */

/* ---- names ------------------------------------------------------------------- */

static bool ends_with(const char *s, const char *suffix)
{
    size_t a = strlen(s), b = strlen(suffix);
    return a > b && strcmp(s + a - b, suffix) == 0;
}

bool fw_rulefiles_is_rules(const char *name)
{
    return ends_with(name, ".json");
}

bool fw_rulefiles_is_list(const char *name)
{
    return ends_with(name, ".list");
}

bool fw_rulefiles_valid_list_name(const char *s, size_t n)
{
    if (n < 1 || n > 64 || s[0] == '.')
        return false;
    for (size_t i = 0; i < n; i++)
        if (!isalnum((unsigned char)s[i]) && s[i] != '_' && s[i] != '.' &&
            s[i] != '-')
            return false;
    return true;
}

bool fw_rulefiles_valid_rules_name(const char *s, size_t n)
{
    return n > 5 && n < 256 && s[0] != '.' && !memchr(s, '/', n) &&
           !memchr(s, '\0', n) && memcmp(s + n - 5, ".json", 5) == 0;
}

/* ---- watchlist text ------------------------------------------------------------ */

void fw_listtext_init(fw_listtext *it, const char *data, size_t len)
{
    it->p = data;
    it->end = data + len;
    it->lineno = 0;
}

bool fw_listtext_next(fw_listtext *it, const char **value, size_t *n)
{
    while (it->p < it->end) {
        const char *nl = memchr(it->p, '\n', (size_t)(it->end - it->p));
        const char *s = it->p, *e = nl ? nl : it->end;
        it->p = nl ? nl + 1 : it->end;
        it->lineno++;
        while (s < e && isspace((unsigned char)*s))
            s++;
        while (e > s && isspace((unsigned char)e[-1]))
            e--;
        if (s == e || *s == '#')
            continue;
        *value = s;
        *n = (size_t)(e - s);
        return true;
    }
    return false;
}

int fw_listline_split(const char *s, size_t n, fw_listentry *e, char *err,
                      size_t errlen)
{
    const char *end = s + n, *tab = memchr(s, '\t', n);
    e->value = s;
    e->n = n;   /* a plain line is trimmed already: no more work for it */
    e->until = FW_UNTIL_NEVER;
    e->reason = "";
    e->reason_len = 0;
    if (!tab)
        return 0;
    const char *ve = tab;
    while (ve > s && isspace((unsigned char)ve[-1]))
        ve--;
    e->n = (size_t)(ve - s);
    if (e->n == 0) {
        snprintf(err, errlen, "an entry needs a value before the tab (VALUE<TAB>UNTIL"
                              "[<TAB>REASON])");
        return -1;
    }
    const char *u = tab + 1;
    while (u < end && *u != '\t' && isspace((unsigned char)*u))
        u++;
    const char *ue = u < end ? memchr(u, '\t', (size_t)(end - u)) : NULL;
    const char *r = ue ? ue + 1 : end;
    if (!ue)
        ue = end;
    while (ue > u && isspace((unsigned char)ue[-1]))
        ue--;
    char ut[64];
    size_t ulen = (size_t)(ue - u);
    if (ulen == 0) {
        snprintf(err, errlen, "the UNTIL column is empty: give epoch milliseconds, "
                              "an ISO 8601 time with an offset, or - for never");
        return -1;
    }
    /* Epoch milliseconds, the common form of a big generated list: read in
     * place (fw_time_parse gives the same value, with more steps). */
    int64_t ms = 0;
    size_t d = 0;
    while (d < ulen && d < 15 && u[d] >= '0' && u[d] <= '9')
        ms = ms * 10 + (u[d++] - '0');
    if (d == ulen && ms <= FW_TS_MAX) {
        e->until = ms;
    } else if (!(ulen == 1 && *u == '-')) {
        if (ulen >= sizeof ut) {
            snprintf(err, errlen, "UNTIL \"%.40s...\" is not a time", u);
            return -1;
        }
        memcpy(ut, u, ulen);
        ut[ulen] = '\0';
        char why[200];
        if (fw_time_parse(ut, &e->until, why, sizeof why) != 0) {
            snprintf(err, errlen, "UNTIL %s", why);
            return -1;
        }
    }
    while (r < end && isspace((unsigned char)*r))
        r++;
    e->reason = r;
    e->reason_len = (size_t)(end - r);
    return 0;
}

/* "line N: " before the message in err (out of the way of the hot path). */
__attribute__((noinline, cold)) static void prefix_line(char *err, size_t errlen,
                                                        size_t lineno)
{
    char line[32];
    int k = snprintf(line, sizeof line, "line %zu: ", lineno);
    size_t have = strnlen(err, errlen);
    if (errlen > (size_t)k + 1) {
        size_t keep = have + (size_t)k < errlen ? have : errlen - (size_t)k - 1;
        memmove(err + k, err, keep);
        memcpy(err, line, (size_t)k);
        err[k + keep] = '\0';
    }
}

int fw_listtext_entry(fw_listtext *it, fw_listentry *e, char *err, size_t errlen)
{
    const char *s;
    size_t n;
    if (!fw_listtext_next(it, &s, &n))
        return 0;
    if (!memchr(s, '\t', n)) {   /* a plain value: what every list held before */
        e->value = s;
        e->n = n;
        e->until = FW_UNTIL_NEVER;
        e->reason = "";
        e->reason_len = 0;
        return 1;
    }
    if (fw_listline_split(s, n, e, err, errlen) != 0) {
        prefix_line(err, errlen, it->lineno);
        return -1;
    }
    return 1;
}

bool fw_list_entry_ok(const char *s, size_t n, const char **why)
{
    if (n > FW_LIST_ENTRY_MAX) {
        *why = "longer than 1024 bytes: no event field it could match is that long";
        return false;
    }
    if (memchr(s, '\0', n)) {
        *why = "holds a NUL byte: no event field can (JSON strings cannot)";
        return false;
    }
    if (!fw_utf8_valid(s, n)) {
        *why = "is not valid UTF-8: events must be, so it could never match";
        return false;
    }
    return true;
}

/* ---- freeing, order ------------------------------------------------------------- */

void fw_rulefiles_free(fw_rulefile *files, size_t n)
{
    for (size_t i = 0; files && i < n; i++) {
        free((char *)files[i].name);
        free((char *)files[i].data);
    }
    free(files);
}

static int file_cmp(const void *a, const void *b)
{
    return strcmp(((const fw_rulefile *)a)->name, ((const fw_rulefile *)b)->name);
}

void fw_rulefiles_sort(fw_rulefile *files, size_t n)
{
    if (n > 1)
        qsort(files, n, sizeof *files, file_cmp);
}

/* ---- errors --------------------------------------------------------------------- */

/* Problems, one a line, into the caller's buffer (cut when it is full). */
struct errs {
    char *buf;
    size_t len, used;
    int n;
};

static void add_err(struct errs *e, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void add_err(struct errs *e, const char *fmt, ...)
{
    e->n++;
    if (e->len == 0 || e->used + 1 >= e->len)
        return;
    if (e->used) {
        e->buf[e->used++] = '\n';
        e->buf[e->used] = '\0';
    }
    va_list ap;
    va_start(ap, fmt);
    int w = vsnprintf(e->buf + e->used, e->len - e->used, fmt, ap);
    va_end(ap);
    if (w > 0)
        e->used = e->used + (size_t)w < e->len ? e->used + (size_t)w : e->len - 1;
}

/* ---- kinds and limits ------------------------------------------------------------ */

static const char *mode_name(mode_t m)
{
    if (S_ISDIR(m))
        return "a directory";
    if (S_ISFIFO(m))
        return "a FIFO";
    if (S_ISCHR(m))
        return "a character device";
    if (S_ISBLK(m))
        return "a block device";
    if (S_ISSOCK(m))
        return "a socket";
    return "not a file";
}

static size_t limit_of(enum fw_rulefile_kind kind)
{
    return kind == FW_RULEFILE_LIST ? FW_LISTFILE_MAX_BYTES : FW_RULEFILE_MAX_BYTES;
}

static const char *kind_name(enum fw_rulefile_kind kind)
{
    return kind == FW_RULEFILE_LIST ? "a watchlist file" : "a rule file";
}

static void size_text(size_t bytes, char *out, size_t n)
{
    if (bytes >= (size_t)1 << 30 && bytes % ((size_t)1 << 30) == 0)
        snprintf(out, n, "%zu GiB", bytes >> 30);
    else
        snprintf(out, n, "%zu MiB", bytes >> 20);
}

/* `st` (of `path`, reached through a symbolic link when via_link) may be
 * read as a file of `kind`: a regular file within its limit. */
static bool check_stat(struct errs *e, const char *path, const struct stat *st,
                       bool via_link, enum fw_rulefile_kind kind)
{
    if (!S_ISREG(st->st_mode)) {
        add_err(e, "%s: not a regular file (%s%s)", path,
                via_link ? "a symbolic link to " : "", mode_name(st->st_mode));
        return false;
    }
    if (st->st_size < 0 || (uint64_t)st->st_size > limit_of(kind)) {
        char lim[32];
        size_text(limit_of(kind), lim, sizeof lim);
        add_err(e, "%s: %lld bytes, over the %s limit for %s", path,
                (long long)st->st_size, lim, kind_name(kind));
        return false;
    }
    return true;
}

/* Reads fd to its end, never more than limit + 1 bytes.  `hint` (the size
 * fstat gave, <= limit) sizes the buffer, so a file that keeps its size is
 * read into one allocation.  0: *out (NUL-terminated) and *len; 1: longer
 * than limit; -1: a read error (errno); -2: no memory for it. */
static int read_bounded(int fd, size_t hint, size_t limit, char **out, size_t *len)
{
    size_t cap = (hint ? hint : 65536) + 1;
    if (cap > limit + 1)
        cap = limit + 1;
    char *buf = malloc(cap + 1);
    if (!buf)
        return -2;
    size_t n = 0;
    for (;;) {
        if (n == cap) {
            if (cap > limit)
                break;   /* limit + 1 bytes read: too long */
            size_t ncap = cap * 2 < limit + 1 ? cap * 2 : limit + 1;
            char *nb = realloc(buf, ncap + 1);
            if (!nb) {
                free(buf);
                return -2;
            }
            buf = nb;
            cap = ncap;
        }
        ssize_t got = read(fd, buf + n, cap - n);
        if (got < 0 && errno == EINTR)
            continue;
        if (got < 0) {
            int saved = errno;
            free(buf);
            errno = saved;
            return -1;
        }
        if (got == 0)
            break;
        n += (size_t)got;
    }
    if (n > limit) {
        free(buf);
        return 1;
    }
    buf[n] = '\0';
    *out = buf;
    *len = n;
    return 0;
}

/* Opens `name` (relative to dirfd, or a path with AT_FDCWD) without
 * blocking, checks what the descriptor is and reads it.  `path` is what
 * messages call it. */
static bool read_checked(struct errs *e, int dirfd, const char *name,
                         const char *path, bool via_link,
                         enum fw_rulefile_kind kind, char **data, size_t *len)
{
    int fd = openat(dirfd, name, O_RDONLY | O_NONBLOCK | O_NOCTTY | O_CLOEXEC);
    if (fd < 0) {
        add_err(e, "%s: cannot open: %s", path, strerror(errno));
        return false;
    }
    struct stat st;
    if (fstat(fd, &st) != 0) {
        add_err(e, "%s: cannot read: %s", path, strerror(errno));
        close(fd);
        return false;
    }
    if (!check_stat(e, path, &st, via_link, kind)) {
        close(fd);
        return false;
    }
    (void)fcntl(fd, F_SETFL, 0);   /* a regular file: plain blocking reads */
    int rc = read_bounded(fd, (size_t)st.st_size, limit_of(kind), data, len);
    int saved = errno;
    close(fd);
    if (rc == 0)
        return true;
    char lim[32];
    size_text(limit_of(kind), lim, sizeof lim);
    if (rc == 1)
        add_err(e, "%s: grew past the %s limit for %s while it was read", path,
                lim, kind_name(kind));
    else if (rc == -2)
        add_err(e, "%s: not enough memory to read its %lld bytes", path,
                (long long)st.st_size);
    else
        add_err(e, "%s: read error: %s", path, strerror(saved));
    return false;
}

/* stat() of `name` (following links) and whether it is a link. */
static bool stat_name(struct errs *e, int dirfd, const char *name,
                      const char *path, struct stat *st, bool *via_link)
{
    struct stat lst;
    *via_link = fstatat(dirfd, name, &lst, AT_SYMLINK_NOFOLLOW) == 0 &&
                S_ISLNK(lst.st_mode);
    if (fstatat(dirfd, name, st, 0) != 0) {
        add_err(e, "%s: cannot open: %s%s", path, strerror(errno),
                *via_link ? " (a symbolic link whose target cannot be reached)" : "");
        return false;
    }
    return true;
}

/* ---- one file ------------------------------------------------------------------- */

int fw_rulefiles_read_file(const char *path, enum fw_rulefile_kind kind,
                           char **data, size_t *len, char *err, size_t errlen)
{
    struct errs e = { err, errlen, 0, 0 };
    if (errlen)
        err[0] = '\0';
    if (strcmp(path, "-") == 0) {
        size_t limit = limit_of(kind);
        int rc = read_bounded(0, 0, limit, data, len);
        if (rc == 0)
            return 0;
        char lim[32];
        size_text(limit, lim, sizeof lim);
        if (rc == 1)
            add_err(&e, "standard input: more than %s, the limit for %s", lim,
                    kind_name(kind));
        else if (rc == -2)
            add_err(&e, "standard input: not enough memory to read it");
        else
            add_err(&e, "standard input: read error: %s", strerror(errno));
        return -1;
    }
    struct stat st;
    bool via_link;
    if (!stat_name(&e, AT_FDCWD, path, path, &st, &via_link) ||
        !check_stat(&e, path, &st, via_link, kind) ||
        !read_checked(&e, AT_FDCWD, path, path, via_link, kind, data, len))
        return -1;
    return 0;
}

/* ---- a directory ------------------------------------------------------------------ */

static int str_cmp(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static enum fw_rulefile_kind kind_of(const char *name)
{
    return fw_rulefiles_is_list(name) ? FW_RULEFILE_LIST : FW_RULEFILE_RULES;
}

int fw_rulefiles_read_dir(const char *dir, fw_rulefile **out, size_t *nout,
                          char *err, size_t errlen)
{
    *out = NULL;
    *nout = 0;
    struct errs e = { err, errlen, 0, 0 };
    if (errlen)
        err[0] = '\0';
    /* "rules/" and "rules" both name files as "rules/x.json". */
    char shown[4096];
    snprintf(shown, sizeof shown, "%s", dir);
    for (size_t l = strlen(shown); l > 1 && shown[l - 1] == '/'; l--)
        shown[l - 1] = '\0';

    DIR *d = opendir(dir);
    if (!d) {
        add_err(&e, "%s: cannot open the rules directory: %s", dir, strerror(errno));
        return -1;
    }
    int dfd = dirfd(d);

    /* 1. The names. */
    char **names = NULL;
    size_t n = 0, cap = 0;
    struct dirent *de;
    errno = 0;
    while ((de = readdir(d))) {
        if (de->d_name[0] == '.' ||
            (!fw_rulefiles_is_rules(de->d_name) && !fw_rulefiles_is_list(de->d_name)))
            continue;
        if (n == FW_RULEDIR_MAX_FILES) {
            add_err(&e, "%s: more than %d rule and watchlist files (*.json, "
                        "*.list), the limit for a rules directory", shown,
                    FW_RULEDIR_MAX_FILES);
            break;
        }
        if (n == cap) {
            cap = cap ? cap * 2 : 16;
            names = fw_xrealloc(names, cap * sizeof *names);
        }
        names[n++] = fw_xstrdup(de->d_name);
        errno = 0;
    }
    if (!de && errno != 0)
        add_err(&e, "%s: cannot read the rules directory: %s", shown, strerror(errno));
    if (n > 1)
        qsort(names, n, sizeof *names, str_cmp);

    /* 2. What each name is, and how large: nothing opened yet. */
    bool *links = fw_xcalloc(n + 1, sizeof *links);
    uint64_t total = 0;
    char path[4096 + 256 + 2];
    for (size_t i = 0; i < n; i++) {   /* every file's problem, not the first */
        snprintf(path, sizeof path, "%s/%s", shown, names[i]);
        struct stat st;
        if (stat_name(&e, dfd, names[i], path, &st, &links[i]) &&
            check_stat(&e, path, &st, links[i], kind_of(names[i])))
            total += (uint64_t)st.st_size;
    }
    if (e.n == 0 && total > FW_RULEDIR_MAX_BYTES) {
        char lim[32];
        size_text(FW_RULEDIR_MAX_BYTES, lim, sizeof lim);
        add_err(&e, "%s: the rule and watchlist files hold %llu bytes together, "
                    "over the %s limit for a rules directory", shown,
                (unsigned long long)total, lim);
    }

    /* 3. Read them, each bounded; the total again, with what was read. */
    fw_rulefile *files = fw_xcalloc(n + 1, sizeof *files);
    size_t k = 0;
    total = 0;
    for (size_t i = 0; i < n && e.n == 0; i++) {
        snprintf(path, sizeof path, "%s/%s", shown, names[i]);
        char *data;
        size_t len;
        if (!read_checked(&e, dfd, names[i], path, links[i], kind_of(names[i]),
                          &data, &len))
            break;
        total += len;
        files[k].name = names[i];
        names[i] = NULL;
        files[k].data = data;
        files[k].len = len;
        k++;
        if (total > FW_RULEDIR_MAX_BYTES) {
            char lim[32];
            size_text(FW_RULEDIR_MAX_BYTES, lim, sizeof lim);
            add_err(&e, "%s: the files grew past the %s limit for a rules "
                        "directory while they were read", shown, lim);
        }
    }
    closedir(d);
    for (size_t i = 0; i < n; i++)
        free(names[i]);
    free(names);
    free(links);
    if (e.n) {
        fw_rulefiles_free(files, k);
        return -1;
    }
    *out = files;
    *nout = k;
    return 0;
}
