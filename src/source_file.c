/* source_file.c — JSONL lines from a file or stdin, as a driver source
 * (include/fraudwatch/driver.h): `fraudwatch replay`'s input.
 *
 * Owns the file and one read buffer of the event size limit plus 1 MiB:
 * lines are cut in place, so a line is copied once, into a batch.  A line
 * longer than the limit is skipped over without being held in memory and
 * handed over as "" with its length (the pipeline reports it malformed);
 * blank lines are counted and skipped.  A message's offset is its line
 * number (1-based), which is what replay's reports name.  No checkpoints:
 * a file is replayed whole. */
#include "source_file.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#define READ_CHUNK (1u << 20)

struct reader {
    FILE *f;
    char *buf;
    size_t cap, start, end;
    bool eof;
    bool error;
    size_t max;
};

/* Next line without its newline.  Returns false at the end.  *oversize is
 * set (and *line NULL) for a line longer than the limit; *len is its size. */
static bool next_line(struct reader *r, const char **line, size_t *len,
                      bool *oversize)
{
    *oversize = false;
    for (;;) {
        char *nl = memchr(r->buf + r->start, '\n', r->end - r->start);
        if (nl) {
            *line = r->buf + r->start;
            *len = (size_t)(nl - *line);
            r->start += *len + 1;
            return true;
        }
        if (r->eof) {
            if (r->start == r->end)
                return false;
            *line = r->buf + r->start;
            *len = r->end - r->start;
            r->start = r->end;
            return true;
        }
        if (r->end - r->start > r->max) {
            /* Too long: drop what we hold and skip to the next newline. */
            size_t skipped = r->end - r->start;
            r->start = r->end = 0;
            for (;;) {
                size_t got = fread(r->buf, 1, r->cap, r->f);
                if (got == 0) {
                    r->eof = true;
                    r->error = ferror(r->f);
                    break;
                }
                char *e = memchr(r->buf, '\n', got);
                if (e) {
                    skipped += (size_t)(e - r->buf);
                    r->start = (size_t)(e - r->buf) + 1;
                    r->end = got;
                    break;
                }
                skipped += got;
            }
            *line = NULL;
            *len = skipped;
            *oversize = true;
            return true;
        }
        /* Need more input: compact, then read. */
        if (r->start > 0) {
            memmove(r->buf, r->buf + r->start, r->end - r->start);
            r->end -= r->start;
            r->start = 0;
        }
        size_t got = fread(r->buf + r->end, 1, r->cap - r->end, r->f);
        if (got == 0) {
            r->eof = true;
            r->error = ferror(r->f);
        }
        r->end += got;
    }
}

static bool blank(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (s[i] != ' ' && s[i] != '\t' && s[i] != '\r')
            return false;
    return true;
}

struct fw_file_source {
    struct reader r;
    bool from_stdin;
    const char *name;
    uint64_t lines;
    uint64_t events;
    char fatal[512];
};

fw_file_source *fw_file_source_open(const char *path, size_t max_event_bytes, char *err,
                                    size_t errlen)
{
    fw_file_source *fs = calloc(1, sizeof *fs);
    if (!fs) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    fs->from_stdin = !path || strcmp(path, "-") == 0;
    fs->name = fs->from_stdin ? "stdin" : path;
    fs->r.f = fs->from_stdin ? stdin : fopen(path, "rb");
    if (!fs->r.f) {
        snprintf(err, errlen, "%s: cannot open the events file: %s", path, strerror(errno));
        free(fs);
        return NULL;
    }
    fs->r.max = max_event_bytes;
    fs->r.cap = max_event_bytes + READ_CHUNK;
    fs->r.buf = malloc(fs->r.cap);
    if (!fs->r.buf) {
        snprintf(err, errlen, "out of memory");
        fw_file_source_close(fs);
        return NULL;
    }
    return fs;
}

void fw_file_source_close(fw_file_source *fs)
{
    if (!fs)
        return;
    if (fs->r.f && !fs->from_stdin)
        fclose(fs->r.f);
    free(fs->r.buf);
    free(fs);
}

uint64_t fw_file_source_lines(const fw_file_source *fs) { return fs->lines; }
uint64_t fw_file_source_events(const fw_file_source *fs) { return fs->events; }

static int next(void *self, fw_msg *m, int timeout_ms)
{
    (void)timeout_ms;
    fw_file_source *fs = self;
    const char *line;
    size_t len;
    bool oversize;
    while (next_line(&fs->r, &line, &len, &oversize)) {
        fs->lines++;
        if (!oversize && blank(line, len))
            continue;
        fs->events++;
        /* An oversize line is handed over with its length and no bytes. */
        *m = (fw_msg){ oversize ? "" : line, len, 0, (int64_t)fs->lines, 0 };
        return FW_NEXT_MSG;
    }
    if (fs->r.error) {
        snprintf(fs->fatal, sizeof fs->fatal, "%s: read error", fs->name);
        return FW_NEXT_FATAL;
    }
    return FW_NEXT_END;
}

static const char *stream_name(void *self, uint32_t stream)
{
    (void)stream;
    return ((fw_file_source *)self)->name;
}

static const char *fatal(void *self)
{
    fw_file_source *fs = self;
    return fs->fatal[0] ? fs->fatal : NULL;
}

const fw_source_ops fw_file_source_ops = {
    .name = "file",
    .next = next,
    .stream_name = stream_name,
    .fatal = fatal,
};
