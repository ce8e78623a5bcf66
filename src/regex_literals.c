/* regex_literals.c — the literals a regex cannot match without, and one
 * scan of a text for all of them.
 *
 * Owns: the reading of a pattern into a set of required literals, and the
 * tables of a scan.
 *
 * Why it exists: the SMS rules search every SMS text with alternations of
 * Chinese phrases, and PCRE2's JIT spends 50 to 140 ns on each search,
 * because nearly every character of Chinese text begins a match attempt.
 * Nearly no SMS contains any of the phrases.  One pass over the text
 * looking for the phrases of every search on that field at once (three
 * table look-ups a byte) tells which searches could match; only those run
 * (match.c).  A "no" is exact: every match contains one of its search's
 * literals.  A "yes" runs the regex as before, so results, evidence and
 * limits stay the regex's own.
 *
 * Why it is shaped this way: the reading is small and conservative on
 * purpose.  It follows literal characters, punctuation escapes, the
 * classes (`.`, `[...]`, `\d` and kin), quantifiers, `|` and the groups
 * `(` and `(?:`; anything else (caseless, other escapes, lookaround,
 * back-references, verbs, inline options, a brace that is not a
 * quantifier) gives up and the regex simply always runs.  Of a sequence
 * it keeps the one required piece with the longest shortest literal — a
 * run of literal characters, or a group's set — and of an alternation the
 * union of its branches' sets; a branch with none makes the whole unknown.
 * The scan is a three-byte filter (each literal's first three bytes, or
 * two and any) confirmed by memcmp: no SIMD, no dependency, and fast
 * enough that one scan costs less than one JIT search. */
#include "regex_literals.h"

#include <stdlib.h>
#include <string.h>

#include "fraudwatch/alloc.h"

#define RUN_MAX 255        /* a longer run is cut into pieces of at most this */
#define DEPTH_MAX 32
#define REPEAT_INF UINT32_MAX

void fw_litset_clear(fw_litset *s)
{
    for (uint32_t i = 0; i < s->n; i++)
        free(s->lit[i]);
    s->n = 0;
}

/* The shortest literal: what a set is judged by (longer is rarer). */
static uint32_t shortest(const fw_litset *s)
{
    uint32_t m = UINT32_MAX;
    for (uint32_t i = 0; i < s->n; i++)
        if (s->len[i] < m)
            m = s->len[i];
    return m;
}

/* Moves the literals of `from` to the end of `to`; false (and `from`
 * cleared) when they do not fit. */
static bool append(fw_litset *to, fw_litset *from)
{
    if (to->n + from->n > FW_LITS_MAX) {
        fw_litset_clear(from);
        return false;
    }
    for (uint32_t i = 0; i < from->n; i++) {
        to->lit[to->n] = from->lit[i];
        to->len[to->n++] = from->len[i];
    }
    from->n = 0;
    return true;
}

struct reader {
    const unsigned char *p, *end;
    bool bail;
    int depth;
};

static bool read_alt(struct reader *r, fw_litset *out);

/* The best required piece of a sequence so far. */
struct best {
    fw_litset set;
    bool have;
};

/* `cand` (taken) replaces the best if its shortest literal is longer, or
 * as long with fewer literals. */
static void consider(struct best *b, fw_litset *cand)
{
    if (cand->n == 0 || shortest(cand) < 2) {
        fw_litset_clear(cand);
        return;
    }
    if (b->have) {
        uint32_t ms = shortest(&b->set), cs = shortest(cand);
        if (cs < ms || (cs == ms && cand->n >= b->set.n)) {
            fw_litset_clear(cand);
            return;
        }
        fw_litset_clear(&b->set);
    }
    b->set = *cand;
    cand->n = 0;
    b->have = true;
}

static void end_run(struct best *b, const unsigned char *run, size_t *rn)
{
    if (*rn >= 2) {
        fw_litset one = { .n = 1 };
        one.lit[0] = fw_xmalloc(*rn);
        memcpy(one.lit[0], run, *rn);
        one.len[0] = (uint32_t)*rn;
        consider(b, &one);
    }
    *rn = 0;
}

/* [...] from its '['; false if it does not close. */
static bool skip_class(struct reader *r)
{
    const unsigned char *p = r->p + 1;
    if (p < r->end && *p == '^')
        p++;
    if (p < r->end && *p == ']')
        p++;                          /* a leading ']' is a member */
    while (p < r->end && *p != ']') {
        if (*p == '\\') {
            if (p + 1 >= r->end || p[1] == 'Q' || p[1] == 'E')
                return false;
            p += 2;
        } else if (*p == '[' && p + 1 < r->end &&
                   (p[1] == ':' || p[1] == '.' || p[1] == '=')) {
            /* [:name:] (or [:^name:]) is a POSIX class, as PCRE2 reads it;
             * anything else that starts so is given up on, since PCRE2 may
             * end the class earlier than a search for ":]" would. */
            unsigned char kind = p[1];
            const unsigned char *q = p + 2;
            if (q < r->end && *q == '^')
                q++;
            while (q < r->end && ((*q >= 'a' && *q <= 'z') || (*q >= 'A' && *q <= 'Z')))
                q++;
            if (q + 1 >= r->end || q[0] != kind || q[1] != ']')
                return false;
            p = q + 2;
        } else {
            p++;
        }
    }
    if (p >= r->end)
        return false;
    r->p = p + 1;
    return true;
}

static bool read_number(struct reader *r, uint32_t *v)
{
    uint32_t n = 0;
    int digits = 0;
    while (r->p < r->end && *r->p >= '0' && *r->p <= '9' && digits < 6) {
        n = n * 10 + (uint32_t)(*r->p++ - '0');
        digits++;
    }
    *v = n;
    return digits > 0;
}

/* A quantifier after an atom, if any: its minimum and maximum.  False for
 * a brace that is not one of {n} {n,} {n,m}. */
static bool read_quantifier(struct reader *r, uint32_t *min, uint32_t *max)
{
    *min = *max = 1;
    if (r->p >= r->end)
        return true;
    switch (*r->p) {
    case '?': *min = 0; *max = 1; r->p++; break;
    case '*': *min = 0; *max = REPEAT_INF; r->p++; break;
    case '+': *min = 1; *max = REPEAT_INF; r->p++; break;
    case '{':
        r->p++;
        if (!read_number(r, min))
            return false;
        if (r->p < r->end && *r->p == '}') {
            *max = *min;
        } else if (r->p < r->end && *r->p == ',') {
            r->p++;
            if (r->p < r->end && *r->p == '}')
                *max = REPEAT_INF;
            else if (!read_number(r, max))
                return false;
        }
        if (r->p >= r->end || *r->p != '}')
            return false;
        r->p++;
        break;
    default:
        return true;
    }
    if (r->p < r->end && (*r->p == '?' || *r->p == '+'))
        r->p++;                       /* lazy or possessive: same strings */
    return true;
}

static size_t utf8_len(unsigned char c)
{
    return c < 0x80 ? 1 : c >= 0xF8 ? 0 : c >= 0xF0 ? 4 : c >= 0xE0 ? 3 : c >= 0xC0 ? 2 : 0;
}

/* A sequence, up to '|', ')' or the end: true and its best piece in
 * `out`, or false (nothing required found, or r->bail). */
static bool read_seq(struct reader *r, fw_litset *out)
{
    enum { LIT, GROUP, OTHER } kind;
    unsigned char run[RUN_MAX];
    size_t rn = 0;
    struct best best = { .have = false };
    fw_litset group = { .n = 0 };
    bool group_known = false;

    while (!r->bail && r->p < r->end && *r->p != '|' && *r->p != ')') {
        const unsigned char *atom = r->p;
        size_t alen = 0;
        unsigned char c = *r->p;
        if (c == '(') {
            if (r->p + 1 < r->end && r->p[1] == '?') {
                if (r->p + 2 >= r->end || r->p[2] != ':') {
                    r->bail = true;
                    break;
                }
                r->p += 3;
            } else if (r->p + 1 < r->end && r->p[1] == '*') {
                r->bail = true;
                break;
            } else {
                r->p++;
            }
            if (++r->depth > DEPTH_MAX) {
                r->bail = true;
                break;
            }
            group_known = read_alt(r, &group);
            r->depth--;
            if (r->bail || r->p >= r->end || *r->p != ')') {
                r->bail = true;
                break;
            }
            r->p++;
            kind = GROUP;
        } else if (c == '[') {
            if (!skip_class(r)) {
                r->bail = true;
                break;
            }
            kind = OTHER;
        } else if (c == '.' || c == '^' || c == '$') {
            r->p++;
            kind = OTHER;
        } else if (c == '\\') {
            unsigned char e = r->p + 1 < r->end ? r->p[1] : 0;
            if (e && e < 0x80 && !(e >= '0' && e <= '9') && !(e >= 'a' && e <= 'z') &&
                !(e >= 'A' && e <= 'Z')) {
                atom = r->p + 1;        /* an escaped punctuation character */
                alen = 1;
                kind = LIT;
            } else if (e && strchr("dDwWsShHvVRXbBAzZG", e)) {
                kind = OTHER;           /* a class, or a zero-width assertion */
            } else {
                r->bail = true;
                break;
            }
            r->p += 2;
        } else if (c == '?' || c == '*' || c == '+' || c == '{') {
            r->bail = true;             /* not after an atom */
            break;
        } else {
            alen = utf8_len(c);
            if (!alen || (size_t)(r->end - r->p) < alen) {
                r->bail = true;
                break;
            }
            r->p += alen;
            kind = LIT;
        }

        uint32_t min, max;
        if (!read_quantifier(r, &min, &max)) {
            r->bail = true;
            break;
        }
        if (kind == LIT && min > 0) {
            if (rn + alen > RUN_MAX)
                end_run(&best, run, &rn);   /* the run so far is one piece, this starts the next */
            memcpy(run + rn, atom, alen);
            rn += alen;
            if (max != 1)
                end_run(&best, run, &rn);   /* it repeats: what follows is not adjacent */
        } else {
            end_run(&best, run, &rn);
            if (kind == GROUP && min > 0 && group_known)
                consider(&best, &group);
            fw_litset_clear(&group);
        }
    }
    fw_litset_clear(&group);
    if (r->bail) {
        fw_litset_clear(&best.set);
        return false;
    }
    end_run(&best, run, &rn);
    if (!best.have)
        return false;
    *out = best.set;
    return true;
}

/* branch | branch | ...: the union of the branches' sets, or false when a
 * branch has none. */
static bool read_alt(struct reader *r, fw_litset *out)
{
    fw_litset acc = { .n = 0 };
    bool known = true;
    for (;;) {
        fw_litset branch = { .n = 0 };
        bool k = read_seq(r, &branch);
        if (r->bail) {
            fw_litset_clear(&acc);
            return false;
        }
        if (!k || !known || !append(&acc, &branch)) {
            known = false;
            fw_litset_clear(&acc);
            fw_litset_clear(&branch);
        }
        if (r->p < r->end && *r->p == '|') {
            r->p++;
            continue;
        }
        break;
    }
    if (!known)
        return false;
    *out = acc;
    return true;
}

bool fw_regex_literals(const char *pattern, bool caseless, fw_litset *out)
{
    out->n = 0;
    if (caseless)
        return false;
    struct reader r = { (const unsigned char *)pattern,
                        (const unsigned char *)pattern + strlen(pattern), false, 0 };
    fw_litset s = { .n = 0 };
    if (!read_alt(&r, &s))
        return false;
    if (r.p != r.end || shortest(&s) < 2) {   /* an unmatched ')' */
        fw_litset_clear(&s);
        return false;
    }
    *out = s;
    return true;
}

/* ---- the scan ------------------------------------------------------------ */

struct fw_litscan {
    uint64_t m[3][256];     /* by byte at offset 0, 1, 2: the literals it fits */
    char *lit[FW_LITS_MAX];
    uint32_t len[FW_LITS_MAX];
    uint32_t n;
};

fw_litscan *fw_litscan_new(void)
{
    return fw_xcalloc(1, sizeof(fw_litscan));
}

uint64_t fw_litscan_add(fw_litscan *sc, const fw_litset *s)
{
    if (sc->n + s->n > FW_LITS_MAX || shortest(s) < 2)
        return 0;
    uint64_t bits = 0;
    for (uint32_t i = 0; i < s->n; i++) {
        uint32_t k = sc->n++;
        uint64_t bit = (uint64_t)1 << k;
        const unsigned char *l = (const unsigned char *)s->lit[i];
        sc->lit[k] = fw_xmalloc(s->len[i]);
        memcpy(sc->lit[k], l, s->len[i]);
        sc->len[k] = s->len[i];
        sc->m[0][l[0]] |= bit;
        sc->m[1][l[1]] |= bit;
        if (s->len[i] >= 3) {
            sc->m[2][l[2]] |= bit;
        } else {
            for (int b = 0; b < 256; b++)
                sc->m[2][b] |= bit;
        }
        bits |= bit;
    }
    return bits;
}

uint64_t fw_litscan_run(const fw_litscan *sc, const char *t, size_t n)
{
    const unsigned char *u = (const unsigned char *)t;
    uint64_t all = sc->n == 64 ? UINT64_MAX : ((uint64_t)1 << sc->n) - 1;
    uint64_t found = 0;
    /* Every literal is at least 2 bytes, so it starts before n - 1; the
     * third byte read at the last start is t[n], the terminator, which no
     * literal holds. */
    for (size_t i = 0; i + 1 < n; i++) {
        /* Most bytes start no literal (in Chinese text, every
         * continuation byte): one table look-up rules them out. */
        uint64_t c = sc->m[0][u[i]];
        if (!c)
            continue;
        c &= sc->m[1][u[i + 1]] & sc->m[2][u[i + 2]] & ~found;
        while (c) {
            int b = __builtin_ctzll(c);
            c &= c - 1;
            if (sc->len[b] <= n - i && memcmp(u + i, sc->lit[b], sc->len[b]) == 0) {
                found |= (uint64_t)1 << b;
                if (found == all)
                    return found;
            }
        }
    }
    return found;
}

void fw_litscan_free(fw_litscan *sc)
{
    if (!sc)
        return;
    for (uint32_t i = 0; i < sc->n; i++)
        free(sc->lit[i]);
    free(sc);
}
