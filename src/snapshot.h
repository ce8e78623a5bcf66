/* snapshot.h — the checkpoint file writer (snapshot.c). */
#ifndef FRAUDWATCH_SNAPSHOT_H
#define FRAUDWATCH_SNAPSHOT_H

#include <stddef.h>
#include <stdio.h>

/*
 * One writer thread per file.  IDLE --start--> WRITING --> WRITTEN (path.tmp
 * durable) --publish--> PUBLISHING --> DONE (renamed over path, directory
 * fsync'd); FAILED from either step (path.tmp removed; path untouched).
 * DONE and FAILED stay until reset.  Any one owner thread drives it. */
enum fw_ckpt_state {
    FW_CKPT_IDLE,
    FW_CKPT_WRITING,
    FW_CKPT_WRITTEN,
    FW_CKPT_PUBLISHING,
    FW_CKPT_DONE,
    FW_CKPT_FAILED,
};
typedef struct fw_ckpt_writer fw_ckpt_writer;
/* Writes the whole file body on the writer thread; 0 or -1 with err. */
typedef int (*fw_ckpt_fill_fn)(void *ctx, FILE *f, char *err, size_t errlen);
fw_ckpt_writer *fw_ckpt_writer_new(const char *dir, const char *name);
/* Waits for a step in progress; a written, unpublished file is removed. */
void fw_ckpt_writer_free(fw_ckpt_writer *w);
/* IDLE → WRITING; -1 when not idle.  `ctx` must stay valid until the
 * state has left WRITING. */
int fw_ckpt_writer_start(fw_ckpt_writer *w, fw_ckpt_fill_fn fill, void *ctx);
/* Asks for WRITTEN → PUBLISHING → DONE (at once if already WRITTEN). */
void fw_ckpt_writer_publish(fw_ckpt_writer *w);
/* The state now, without waiting or locking; err filled when FAILED. */
enum fw_ckpt_state fw_ckpt_writer_state(fw_ckpt_writer *w, char *err, size_t errlen);
/* Waits until no step is in progress or asked for; the state then. */
enum fw_ckpt_state fw_ckpt_writer_wait(fw_ckpt_writer *w, char *err, size_t errlen);
/* Back to IDLE after DONE or FAILED, or drops a WRITTEN file unpublished
 * (waits for a step in progress first). */
void fw_ckpt_writer_reset(fw_ckpt_writer *w);
/* Durations of the last write (fill + fsync) and publish (rename + fsync). */
double fw_ckpt_writer_write_seconds(const fw_ckpt_writer *w);
double fw_ckpt_writer_publish_seconds(const fw_ckpt_writer *w);

#endif
