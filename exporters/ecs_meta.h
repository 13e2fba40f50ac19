/*
 * ecs_meta.h: the ECS task metadata of the task otel2dd runs in, read in the background from
 * the endpoint ECS gives every container (`ECS_CONTAINER_METADATA_URI_V4`), for the exporters
 * to tag what belongs to the task (translate/resource/res_ecs.h). Nothing waits for it: until
 * the first answer (or when the endpoint is slow, down or answers garbage) there is simply no
 * snapshot, and telemetry goes out without the task's tags.
 */
#ifndef O2D_ECS_META_H
#define O2D_ECS_META_H

#include <stdint.h>

#include "res_ecs.h"

struct ecs_meta;

struct ecs_meta_config {
    const char *base_uri; /* ECS_CONTAINER_METADATA_URI_V4; borrowed for the call */
    int64_t refresh_ms;   /* after a good read; default 5 min, never less than 1 min */
    int64_t retry_ms;     /* first retry after a failed read, doubling up to refresh */
    int64_t timeout_ms;   /* whole request; default 2 s */
    size_t max_body;      /* default 1 MiB: a longer answer is a failed read */
};

/* Starts the reader thread; the first read begins at once, in the background. O2D_OK,
 * O2D_ERR_INVALID (not an http:// URI), O2D_ERR_NOMEM or O2D_ERR_SYSTEM (no thread). */
int ecs_meta_start(struct ecs_meta **out, const struct ecs_meta_config *cfg);
/* Stops the thread (an ongoing read is cut short) and frees everything; NULL is a no-op.
 * Every snapshot taken must have been put back first. */
void ecs_meta_stop(struct ecs_meta *m);

/* The newest snapshot, with a reference (NULL when none was read yet, or m is NULL); what it
 * holds stays valid until ecs_snap_put, whatever refreshes happen meanwhile. */
struct ecs_snap;
struct ecs_snap *ecs_meta_get(struct ecs_meta *m);
/* The parsed task of a snapshot (NULL for NULL). */
const struct res_ecs *ecs_snap_task(const struct ecs_snap *s);
/* Gives back a reference from ecs_meta_get (NULL is a no-op). */
void ecs_snap_put(struct ecs_snap *s);

/* Reads since start: good ones, failed ones. */
void ecs_meta_counts(struct ecs_meta *m, uint64_t *ok, uint64_t *failed);

/* AWS_EXECUTION_ENV=AWS_ECS_FARGATE or ECS_FARGATE set, as the agent tells Fargate
 * (DataDog/datadog-agent pkg/config/env IsECSFargate): known at start, before any read. */
int ecs_meta_env_fargate(void);

#endif
