/*
 * res_ecs.h: the Datadog tags of an ECS task, from its task metadata (endpoint v4, `${uri}/task`
 * and the container's own `${uri}`), and which resources they belong to. Pure: the caller
 * fetches the two JSON documents (exporters/ecs_meta.c) and owns the result.
 */
#ifndef O2D_RES_ECS_H
#define O2D_RES_ECS_H

#include <stddef.h>

#include "otlp.h"

/* The parsed task: immutable once built, freed with res_ecs_free. */
struct res_ecs;

/*
 * Parses the task metadata (`task_json`, required) and the calling container's metadata
 * (`self_json`, NULL or empty when it could not be read). O2D_OK; O2D_ERR_INVALID with *reason
 * when task_json is not a task document (not JSON, not an object, no TaskARN); O2D_ERR_NOMEM.
 */
int res_ecs_parse(const char *task_json, size_t task_len, const char *self_json, size_t self_len,
                  struct res_ecs **out, const char **reason);
void res_ecs_free(struct res_ecs *e);

/* LaunchType FARGATE. */
int res_ecs_fargate(const struct res_ecs *e);
const char *res_ecs_task_arn(const struct res_ecs *e);
/* More containers in the task than this one (ECS's own "~internal~" ones left out): the
 * collector runs as a sidecar, so spans from resources that name no task and no container
 * come from this task. */
int res_ecs_sidecar(const struct res_ecs *e);

/*
 * The tags for a resource's telemetry, or 0 when the resource is not of this task: the tags of
 * the container its `container.id` names (the task's tags plus the container's), else the
 * task's tags when its `aws.ecs.task.arn` is this task's, or when it names neither and the
 * collector is a sidecar. *tags points to n "key:value" strings owned by e.
 */
int res_ecs_tags_for(const struct res_ecs *e, const OtlpResource *res, const char *const **tags,
                     size_t *n);

#endif
