/* fraudwatch — the files of a rule set: reading them, naming them, and the
 * text of a watchlist.
 *
 * Owns everything the rule loader (rules_load.c) and the Redis store
 * (rstore_*.c) both need to know about rule files, so that the two cannot
 * disagree: which names in a directory are read, what a watchlist may be
 * called, how a .list text splits into values, how files are freed — and how
 * a file is read without letting it take the process down (SPEC §4; the
 * limits are in docs/limits.md, "Rules directories").
 *
 * Reading.  Only regular files are read: a FIFO, a device, a socket or a
 * directory under a rule-file name is refused by name and kind, before it is
 * opened for reading (a FIFO would block the open, /dev/zero never ends).  A
 * symbolic link is followed — a link to a rule file kept elsewhere is a
 * normal deployment — and what it points to must be a regular file.  Every
 * size is checked against its limit before any byte is read, and reading is
 * bounded too: a file that grows meanwhile is cut at limit + 1 bytes and
 * refused.  A directory is checked whole (every file's kind and size, the
 * number of files, their total size) before anything is read, and a set
 * with any such problem is refused whole, each problem on its own line as
 * "DIR/NAME: what is wrong". */
#ifndef FRAUDWATCH_RULEFILES_H
#define FRAUDWATCH_RULEFILES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* One input file: a rules file (name ends in .json) or a watchlist (.list). */
typedef struct fw_rulefile {
    const char *name;   /* base name, e.g. "calls.json", "fraud_numbers.list" */
    const char *data;   /* NUL-terminated (not counted in len) */
    size_t len;
} fw_rulefile;

/* Limits (docs/limits.md). */
#define FW_RULEFILE_MAX_BYTES ((size_t)64 << 20)   /* one NAME.json */
#define FW_LISTFILE_MAX_BYTES ((size_t)256 << 20)  /* one NAME.list */
#define FW_RULEDIR_MAX_BYTES ((size_t)1 << 30)     /* all files of a directory */
#define FW_RULEDIR_MAX_FILES 4096                  /* *.json and *.list files */

enum fw_rulefile_kind {
    FW_RULEFILE_RULES,   /* NAME.json */
    FW_RULEFILE_LIST,    /* NAME.list */
};

/* Every NAME.json and NAME.list of `dir` (names starting with '.' and every
 * other name skipped), read safely as above, sorted by name.  0 and the
 * files (free with fw_rulefiles_free()), or -1 and every problem found in
 * err, one a line; nothing is returned then. */
int fw_rulefiles_read_dir(const char *dir, fw_rulefile **out, size_t *nout,
                          char *err, size_t errlen);
void fw_rulefiles_free(fw_rulefile *files, size_t n);
/* Sorts files by name (the order the loader reads them in). */
void fw_rulefiles_sort(fw_rulefile *files, size_t n);

/* One file of the given kind at `path` ("-": standard input, read up to the
 * limit), read safely as above; *data is NUL-terminated, free() it.  0, or
 * -1 with "PATH: what is wrong" in err. */
int fw_rulefiles_read_file(const char *path, enum fw_rulefile_kind kind,
                           char **data, size_t *len, char *err, size_t errlen);

/* ---- names ---------------------------------------------------------------- */

/* A name ending in ".json" / ".list" (and longer than that). */
bool fw_rulefiles_is_rules(const char *name);
bool fw_rulefiles_is_list(const char *name);

/* A watchlist NAME (of NAME.list, a Redis key, a command argument): 1..64
 * characters of A-Z a-z 0-9 _ . -, not starting with '.' (a file ".x.list"
 * is hidden in a directory, so the name would be one no directory can
 * hold).  FW_LIST_NAME_RULE says so, for messages. */
bool fw_rulefiles_valid_list_name(const char *s, size_t n);
#define FW_LIST_NAME_RULE \
    "1..64 characters of A-Z a-z 0-9 _ . -, not starting with '.'"

/* A rule file name that may be written into a directory: NAME.json, not
 * starting with '.', no '/' or NUL, under 256 bytes. */
bool fw_rulefiles_valid_rules_name(const char *s, size_t n);

/* ---- watchlist text --------------------------------------------------------- */

/* The values of a .list text, one a line: surrounding white space trimmed,
 * blank lines and lines starting with '#' (after trimming) skipped.  There
 * are no end-of-line comments.
 *
 *     fw_listtext it;
 *     fw_listtext_init(&it, data, len);
 *     while (fw_listtext_next(&it, &value, &n)) ... */
typedef struct fw_listtext {
    const char *p, *end;
    size_t lineno;   /* the line of the value just returned (1-based) */
} fw_listtext;

void fw_listtext_init(fw_listtext *it, const char *data, size_t len);

/* Can this watchlist entry ever match an event field?  Not when it holds a
 * NUL byte (JSON strings in events cannot), is not valid UTF-8 (events must
 * be), or is longer than FW_LIST_ENTRY_MAX bytes (no phone number, account
 * or name is).  false with *why, for a message: the loader refuses the
 * list, the Redis store refuses the entry. */
#define FW_LIST_ENTRY_MAX 1024
bool fw_list_entry_ok(const char *s, size_t n, const char **why);
bool fw_listtext_next(fw_listtext *it, const char **value, size_t *n);

/* ---- watchlist entries that expire (SPEC §2) --------------------------------
 *
 * A .list line is VALUE, VALUE<TAB>UNTIL or VALUE<TAB>UNTIL<TAB>REASON.
 * UNTIL is epoch milliseconds, ISO 8601 with an offset (timetext.h), or
 * "-" for never; the entry is a member for events with ts < UNTIL.  REASON
 * is the rest of the line (it may hold tabs).  Each column is trimmed. */
#define FW_UNTIL_NEVER INT64_MAX
typedef struct fw_listentry {
    const char *value;     /* pointers into the text */
    size_t n;
    int64_t until;         /* FW_UNTIL_NEVER: no expiry */
    const char *reason;    /* "" when none */
    size_t reason_len;
} fw_listentry;

/* The columns of one line as fw_listtext_next returns it (trimmed, not a
 * comment).  0, or -1 with what is wrong in err (no line number). */
int fw_listline_split(const char *s, size_t n, fw_listentry *e, char *err,
                      size_t errlen);
/* The next entry of a .list text: 1 and *e, 0 at the end, or -1 for a line
 * whose columns are wrong, with "line N: ..." in err; the next call goes on
 * after it (so a loader can report every bad line). */
int fw_listtext_entry(fw_listtext *it, fw_listentry *e, char *err, size_t errlen);

#endif
