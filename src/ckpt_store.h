/* ckpt_store.h — where a checkpoint goes: the seam between the driver's
 * checkpoint protocol (driver.c, snapshot.c) and the place that keeps the
 * bytes.
 *
 * The protocol is the same for every store: the body is written aside and
 * made durable (write), and only once every alert before the cut is
 * acknowledged is it made the one a restart resumes from (publish); a body
 * written and never published is dropped (discard).  The local directory
 * (snapshot.c: checkpoint.tmp, rename) is the default; ckpt_kafka.c keeps
 * them in a compacted state topic (chunks, then a manifest naming a
 * complete checkpoint).  write, publish and discard run on the checkpoint
 * writer's thread (discard also on the owner's, with the writer idle);
 * open_latest on the driver's thread at start, before any write. */
#ifndef FRAUDWATCH_CKPT_STORE_H
#define FRAUDWATCH_CKPT_STORE_H

#include <stddef.h>
#include <stdio.h>

#include "snapshot.h"

typedef struct fw_ckpt_store_ops {
    const char *name;
    /* The whole body (fill writes it) put aside durably: 0, or -1 with err. */
    int (*write)(void *self, fw_ckpt_fill_fn fill, void *ctx, char *err, size_t errlen);
    /* The body written last becomes the checkpoint a restart reads: 0 or -1. */
    int (*publish)(void *self, char *err, size_t errlen);
    /* The body written last is dropped unpublished (nothing if none). */
    void (*discard)(void *self);
    /* The newest complete checkpoint, readable from *f (the caller
     * fcloses it), with `where` naming it for messages; *f = NULL (0) when
     * there is none to resume from; -1 with err when the store cannot say
     * (a missing state topic, a broker that does not answer). */
    int (*open_latest)(void *self, FILE **f, char *where, size_t wherelen, char *err,
                       size_t errlen);
} fw_ckpt_store_ops;

/* A writer over a store instead of a directory (snapshot.c). */
fw_ckpt_writer *fw_ckpt_writer_new_store(const fw_ckpt_store_ops *ops, void *self);

#endif
