/* secret.c — which settings are secrets, how a URL is shown without its
 * password, and reading a secret from a file (include/fraudwatch/secret.h).
 *
 * Why one file.  Before it, each place that printed something decided on
 * its own what to hide: config.c masked settings by name, redis_conn.c
 * built a masked URL only once the URL had parsed — so the messages about
 * URLs that did *not* parse, or that were not Redis URLs, quoted them
 * whole, password included (issue 10, item 6).  Here the decisions are
 * made once: the list of secret names, the one renderer of URLs (which
 * assumes nothing about the text being well formed: it finds the
 * userinfo by the last '@', the way the parser does, so a password with
 * an unencoded '@', '/' or '#' is still masked whole), and the one reader
 * of password files with its permission policy.
 *
 * The renderer errs towards hiding: a "host:port" whose port is not a
 * number may be "user:password" that lost its "@host", so it is masked.
 * It never sees only part of a secret and shows the rest. */
#include "fraudwatch/secret.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

bool fw_secret_name(const char *name)
{
    static const char *const words[] = {
        "password", "passwd", "passphrase", "secret", "token", "credential", "jaas",
        "ssl.key", "ssl_key", "sasl.oauthbearer.config", "sasl.oauthbearer.extensions",
    };
    size_t n = strlen(name);
    if (n >= 5 && strcmp(name + n - 5, "_file") == 0)
        return false;   /* a path to a secret, not the secret */
    for (size_t i = 0; i < sizeof words / sizeof words[0]; i++)
        if (strcasestr(name, words[i]))
            return true;
    return false;
}

/* The length of a leading "scheme://" (RFC 3986 scheme characters), or 0. */
static size_t scheme_len(const char *t)
{
    if (!isalpha((unsigned char)t[0]))
        return 0;
    size_t i = 1;
    while (isalnum((unsigned char)t[i]) || t[i] == '+' || t[i] == '-' || t[i] == '.')
        i++;
    return strncmp(t + i, "://", 3) == 0 ? i + 3 : 0;
}

bool fw_secret_url_password(const char *text, size_t *off, size_t *len)
{
    size_t start = scheme_len(text);
    const char *a = text + start;
    const char *at = strrchr(a, '@');
    if (at) {
        /* userinfo: everything before the last '@'; the user ends at the
         * first ':' (a user name cannot hold one, a password can). */
        const char *colon = memchr(a, ':', (size_t)(at - a));
        if (!colon || at == colon + 1)
            return false;
        *off = (size_t)(colon + 1 - text);
        *len = (size_t)(at - colon - 1);
        return true;
    }
    if (!start)
        return false;
    /* No '@': "host:port", or "user:password" that lost its "@host". */
    size_t alen = strcspn(a, "/?#");
    const char *colon;
    if (*a == '[') {
        const char *close = memchr(a, ']', alen);
        if (!close) {   /* unbalanced: nothing after it is known to be safe */
            *off = start + 1;
            *len = strlen(a + 1);
            return *len > 0;
        }
        colon = close[1] == ':' ? close + 1 : NULL;
    } else {
        colon = memchr(a, ':', alen);
    }
    if (!colon)
        return false;
    const char *port = colon + 1;
    size_t plen = (size_t)(a + alen - port);
    bool number = true;
    for (size_t i = 0; i < plen; i++)
        number = number && isdigit((unsigned char)port[i]);
    if (number)
        return false;
    *off = (size_t)(port - text);
    *len = strlen(port);    /* to the end: "u:pa/ss" must not show "/ss" */
    return true;
}

void fw_secret_url_shown(const char *text, enum fw_url_show how, char *out, size_t outlen)
{
    if (!outlen)
        return;
    if (!text)
        text = "";
    size_t off, len;
    if (how == FW_URL_HIDE_USERINFO) {
        size_t start = scheme_len(text);
        const char *at = strrchr(text + start, '@');
        if (at) {
            snprintf(out, outlen, "%.*s%s%s", (int)start, text, FW_SECRET_URL_MASK, at);
            return;
        }
    }
    if (fw_secret_url_password(text, &off, &len))
        snprintf(out, outlen, "%.*s%s%s", (int)off, text, FW_SECRET_URL_MASK,
                 text + off + len);
    else
        snprintf(out, outlen, "%s", text);
}

int fw_secret_read_file(const char *path, char *out, size_t outlen, char *why, size_t whylen)
{
    if (outlen)
        out[0] = '\0';
    if (outlen < 2) {
        snprintf(why, whylen, "%s: no room for a secret", path);
        return -1;
    }
    /* O_NONBLOCK: a FIFO opens at once (and is refused below) instead of
     * waiting for a writer. */
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
    if (fd < 0) {
        snprintf(why, whylen, "cannot open %s: %s", path, strerror(errno));
        return -1;
    }
    struct stat st;
    if (fstat(fd, &st) != 0) {
        snprintf(why, whylen, "cannot stat %s: %s", path, strerror(errno));
        close(fd);
        return -1;
    }
    const char *fix = "chmod o-rwx it (a password file is mode 0600, or 0640 with the "
                      "group of the user fraudwatch runs as)";
    bool refused = true;
    if (!S_ISREG(st.st_mode)) {
        snprintf(why, whylen, "%s is not a regular file", path);
    } else if (st.st_mode & S_IROTH) {
        snprintf(why, whylen, "%s is readable by every user (mode %04o): %s", path,
                 (unsigned)(st.st_mode & 07777), fix);
    } else if (st.st_mode & S_IWOTH) {
        snprintf(why, whylen, "%s is writable by every user (mode %04o): %s", path,
                 (unsigned)(st.st_mode & 07777), fix);
    } else if ((size_t)st.st_size > outlen - 1) {
        snprintf(why, whylen, "%s is larger than %zu bytes: a password file holds "
                 "the password on one line", path, outlen - 1);
    } else {
        refused = false;
    }
    if (refused) {
        close(fd);
        return -1;
    }
    /* Read to the end (the file may have grown since fstat). */
    size_t n = 0;
    char extra;
    for (;;) {
        ssize_t got = n < outlen - 1 ? read(fd, out + n, outlen - 1 - n) : read(fd, &extra, 1);
        if (got < 0 && errno == EINTR)
            continue;
        if (got < 0) {
            int e = errno;
            close(fd);
            explicit_bzero(out, outlen);
            return snprintf(why, whylen, "cannot read %s: %s", path, strerror(e)), -1;
        }
        if (got == 0)
            break;
        if (n == outlen - 1) {
            close(fd);
            explicit_bzero(out, outlen);
            explicit_bzero(&extra, 1);
            return snprintf(why, whylen, "%s is larger than %zu bytes: a password file "
                            "holds the password on one line", path, outlen - 1), -1;
        }
        n += (size_t)got;
    }
    close(fd);
    const char *problem = NULL;
    size_t line = n;
    const char *nl = memchr(out, '\n', n);
    if (nl)
        line = (size_t)(nl - out);
    if (line && out[line - 1] == '\r')
        line--;
    if (memchr(out, '\0', n))
        problem = "holds a NUL byte";
    else if (line == 0)
        problem = "is empty: put the password on its first line";
    else
        for (size_t i = nl ? (size_t)(nl - out) : n; i < n; i++)
            if (out[i] != '\n' && out[i] != '\r') {
                problem = "holds more than one line: put only the password in it, on "
                          "the first line";
                break;
            }
    if (problem) {
        explicit_bzero(out, outlen);
        snprintf(why, whylen, "%s %s", path, problem);
        return -1;
    }
    explicit_bzero(out + line, n - line);
    out[line] = '\0';
    return 0;
}
