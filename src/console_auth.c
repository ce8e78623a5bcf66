/* console_auth.c — passwords, tokens and names for the console.
 *
 * Passwords are stored as crypt(3) yescrypt strings ("$y$...", libxcrypt's
 * crypt_gensalt_rn with its default cost): slow and salted, so a copy of
 * the Redis data does not give the passwords away cheaply.  Session tokens
 * and CSRF tokens are 32 bytes from getrandom(2); Redis keeps only the
 * SHA-256 of a session token, so whoever reads Redis cannot log in with
 * what they read.  Comparisons of secrets are constant-time. */
#include "console.h"

#include <crypt.h>
#include <stdio.h>
#include <string.h>
#include <sys/random.h>

#include "sha256.h"

int fw_con_hash_password(const char *pw, char *out, size_t outlen)
{
    char rnd[32];
    if (getrandom(rnd, sizeof rnd, 0) != (ssize_t)sizeof rnd)
        return -1;
    char setting[CRYPT_GENSALT_OUTPUT_SIZE];
    if (!crypt_gensalt_rn("$y$", 0, rnd, (int)sizeof rnd, setting, (int)sizeof setting))
        return -1;
    struct crypt_data cd;
    memset(&cd, 0, sizeof cd);
    const char *h = crypt_rn(pw, setting, &cd, (int)sizeof cd);
    if (!h || h[0] == '*' || strlen(h) >= outlen) {
        explicit_bzero(&cd, sizeof cd);
        return -1;
    }
    snprintf(out, outlen, "%s", h);
    explicit_bzero(&cd, sizeof cd);
    return 0;
}

bool fw_con_ct_equal(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b);
    unsigned char d = la != lb;
    for (size_t i = 0; i < la; i++)
        d |= (unsigned char)(a[i] ^ b[i % (lb ? lb : 1)]);
    return d == 0 && lb != 0;
}

bool fw_con_check_password(const char *pw, const char *hash)
{
    /* A user that does not exist is checked against a fixed hash, so the
     * answer takes as long as for a wrong password. */
    static const char dummy[] = "$y$j9T$F5Jx5fExrKuPp53xLKQ..1$X3DX6M94c7o.9agCG9G317fhZg9SqC.5i5rd.RhAtQ7";
    if (!hash || hash[0] != '$')
        hash = dummy;
    struct crypt_data cd;
    memset(&cd, 0, sizeof cd);
    const char *h = crypt_rn(pw, hash, &cd, (int)sizeof cd);
    bool ok = h && h[0] != '*' && hash != dummy && fw_con_ct_equal(h, hash);
    explicit_bzero(&cd, sizeof cd);
    return ok;
}

int fw_con_random_hex(char out[65])
{
    unsigned char r[32];
    if (getrandom(r, sizeof r, 0) != (ssize_t)sizeof r)
        return -1;
    for (int i = 0; i < 32; i++)
        snprintf(out + 2 * i, 3, "%02x", r[i]);
    explicit_bzero(r, sizeof r);
    return 0;
}

void fw_con_sha256_hex(const char *s, char out[65])
{
    fw_sha256 h;
    unsigned char d[32];
    fw_sha256_init(&h);
    fw_sha256_update(&h, s, strlen(s));
    fw_sha256_final(&h, d);
    for (int i = 0; i < 32; i++)
        snprintf(out + 2 * i, 3, "%02x", d[i]);
}

bool fw_con_name_ok(const char *s)
{
    size_t n = strspn(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.:@-");
    return n > 0 && !s[n] && n <= FW_CON_ID_MAX;
}
