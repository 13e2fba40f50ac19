/*
 * res_ecs.c: the tags Datadog's own agent gives the telemetry of an ECS task, computed from the
 * task metadata endpoint v4 (AWS "Amazon ECS task metadata endpoint version 4" documents:
 * Cluster, TaskARN, Family, Revision, ServiceName, AvailabilityZone, LaunchType, Containers[]
 * with DockerId, Name, DockerName, Image):
 *   - task tags as the tagger's handleECSTask (DataDog/datadog-agent comp/core/tagger/collectors/
 *     workloadmeta_extract.go) writes them: task_name and task_family (Family), task_version
 *     (Revision), aws_account and region (from the task ARN, as the workloadmeta ECS collector
 *     parses them), task_arn, cluster_name, ecs_cluster_name and ecs_cluster_arn (Cluster, a
 *     name or an ARN), availability-zone and availability_zone (Fargate only), ecs_service
 *     (ServiceName, lowercased);
 *   - per container, the task's tags plus ecs_container_name (Name) and, as handleContainer
 *     adds them, container_name (DockerName), image_name / short_image / image_tag
 *     (containers.SplitImageName of Image, tag "latest" when the image names none) and
 *     container_id (DockerId).
 * Which resource gets them is ours to decide (the agent asks its tagger by container id): see
 * res_ecs_tags_for. Tags with an empty value are left out, as the tagger's TagList does.
 */
#include <jansson.h>
#include <stdio.h>
#include <string.h>

#include "o2d.h"
#include "o2d_alloc.h"
#include "res_ecs.h"
#include "resource.h"

#define MAX_CONTAINERS 64 /* a task definition holds at most 10; room for ECS's own */
#define MAX_TASK_TAGS  16
#define MAX_CTR_TAGS   (MAX_TASK_TAGS + 8)

struct ecs_container {
    char *docker_id;
    const char **tags; /* MAX_CTR_TAGS slots */
    size_t n_tags;
};

struct res_ecs {
    int fargate;
    int sidecar;
    char *task_arn;
    const char *task_tags[MAX_TASK_TAGS];
    size_t n_task_tags;
    struct ecs_container ctr[MAX_CONTAINERS];
    size_t n_ctr;
    /* every tag string, so that they are freed once */
    char **owned;
    size_t n_owned, cap_owned;
};

static const char *jstr(json_t *o, const char *key)
{
    json_t *v = json_object_get(o, key);
    return json_is_string(v) ? json_string_value(v) : "";
}

/* "key:value" kept by e; NULL (and nothing added) when value is empty. O2D_ERR_NOMEM. */
static int make_tag(struct res_ecs *e, const char *key, const char *v, size_t vn, const char **out)
{
    *out = NULL;
    if (vn == 0) {
        return O2D_OK;
    }
    if (e->n_owned == e->cap_owned) {
        size_t cap = e->cap_owned ? e->cap_owned * 2 : 32;
        char **o = o2d_realloc(e->owned, cap * sizeof(*o));
        if (o == NULL) {
            return O2D_ERR_NOMEM;
        }
        e->owned = o;
        e->cap_owned = cap;
    }
    size_t kn = strlen(key);
    char *t = o2d_malloc(kn + 1 + vn + 1);
    if (t == NULL) {
        return O2D_ERR_NOMEM;
    }
    memcpy(t, key, kn);
    t[kn] = ':';
    memcpy(t + kn + 1, v, vn);
    t[kn + 1 + vn] = '\0';
    e->owned[e->n_owned++] = t;
    *out = t;
    return O2D_OK;
}

static int add(struct res_ecs *e, const char **list, size_t *n, size_t max, const char *key,
               const char *v, size_t vn)
{
    const char *t;
    int rv = make_tag(e, key, v, vn, &t);
    if (rv == O2D_OK && t != NULL && *n < max) {
        list[(*n)++] = t;
    }
    return rv;
}

static int add_s(struct res_ecs *e, const char **list, size_t *n, size_t max, const char *key,
                 const char *v)
{
    return add(e, list, n, max, key, v, strlen(v));
}

/* arn:partition:service:region:account:resource -> field i (3 region, 4 account). */
static void arn_field(const char *arn, int i, const char **p, size_t *n)
{
    *p = "";
    *n = 0;
    if (strncmp(arn, "arn:", 4) != 0) {
        return;
    }
    const char *s = arn;
    for (int f = 0; f < i; f++) {
        s = strchr(s, ':');
        if (s == NULL) {
            return;
        }
        s++;
    }
    const char *end = strchr(s, ':');
    if (end == NULL) {
        return;
    }
    *p = s;
    *n = (size_t)(end - s);
}

static int task_tags(struct res_ecs *e, json_t *task)
{
    const char **l = e->task_tags;
    size_t *n = &e->n_task_tags;
    const size_t max = MAX_TASK_TAGS;
    const char *family = jstr(task, "Family"), *arn = jstr(task, "TaskARN");
    const char *cluster = jstr(task, "Cluster"), *p;
    size_t pn;
    int rv = add_s(e, l, n, max, "task_name", family);
    rv = rv == O2D_OK ? add_s(e, l, n, max, "task_family", family) : rv;
    rv = rv == O2D_OK ? add_s(e, l, n, max, "task_version", jstr(task, "Revision")) : rv;
    arn_field(arn, 4, &p, &pn);
    rv = rv == O2D_OK ? add(e, l, n, max, "aws_account", p, pn) : rv;
    arn_field(arn, 3, &p, &pn);
    rv = rv == O2D_OK ? add(e, l, n, max, "region", p, pn) : rv;
    rv = rv == O2D_OK ? add_s(e, l, n, max, "task_arn", arn) : rv;
    /* Cluster is a name or an ARN (".../cluster/<name>"): the name is after the last '/' */
    const char *slash = strrchr(cluster, '/');
    const char *cname = strncmp(cluster, "arn:", 4) == 0 && slash != NULL ? slash + 1 : cluster;
    rv = rv == O2D_OK ? add_s(e, l, n, max, "cluster_name", cname) : rv;
    rv = rv == O2D_OK ? add_s(e, l, n, max, "ecs_cluster_name", cname) : rv;
    if (rv == O2D_OK && cname != cluster) {
        rv = add_s(e, l, n, max, "ecs_cluster_arn", cluster);
    }
    if (rv == O2D_OK && e->fargate) {
        const char *az = jstr(task, "AvailabilityZone");
        rv = add_s(e, l, n, max, "availability-zone", az); /* the tagger's deprecated key */
        rv = rv == O2D_OK ? add_s(e, l, n, max, "availability_zone", az) : rv;
    }
    const char *svc = jstr(task, "ServiceName");
    char low[256];
    size_t sn = strlen(svc);
    if (rv == O2D_OK && sn > 0 && sn < sizeof(low)) {
        for (size_t i = 0; i < sn; i++) {
            char c = svc[i];
            low[i] = c >= 'A' && c <= 'Z' ? (char)(c - 'A' + 'a') : c;
        }
        rv = add(e, l, n, max, "ecs_service", low, sn);
    }
    return rv;
}

/* containers.SplitImageName: long name (registry and path, no tag), short name, tag. */
static int image_tags(struct res_ecs *e, struct ecs_container *c, const char *image)
{
    size_t len = strlen(image);
    if (len == 0) {
        return O2D_OK;
    }
    const char *sha = NULL;
    for (const char *s = strstr(image, "@sha"); s != NULL; s = strstr(s + 1, "@sha")) {
        sha = s;
    }
    if (sha != NULL && sha > image) {
        len = (size_t)(sha - image);
    }
    size_t colon = len, slash = len;
    for (size_t i = 0; i < len; i++) {
        if (image[i] == ':') {
            colon = i;
        } else if (image[i] == '/') {
            slash = i;
        }
    }
    const char *tag = "latest";
    size_t tag_n = 6, long_n = len;
    if (colon < len && (slash == len || colon > slash)) {
        tag = image + colon + 1;
        tag_n = len - colon - 1;
        long_n = colon;
    }
    const char *shortp = slash < long_n ? image + slash + 1 : image;
    size_t short_n = long_n - (size_t)(shortp - image);
    int rv = add(e, c->tags, &c->n_tags, MAX_CTR_TAGS, "image_name", image, long_n);
    rv = rv == O2D_OK ? add(e, c->tags, &c->n_tags, MAX_CTR_TAGS, "short_image", shortp, short_n)
                      : rv;
    return rv == O2D_OK ? add(e, c->tags, &c->n_tags, MAX_CTR_TAGS, "image_tag", tag, tag_n) : rv;
}

static int container(struct res_ecs *e, json_t *cj)
{
    const char *id = jstr(cj, "DockerId");
    if (id[0] == '\0' || e->n_ctr == MAX_CONTAINERS) {
        return O2D_OK;
    }
    struct ecs_container *c = &e->ctr[e->n_ctr];
    c->tags = o2d_calloc(MAX_CTR_TAGS, sizeof(*c->tags));
    c->docker_id = o2d_strndup(id, strlen(id));
    if (c->tags == NULL || c->docker_id == NULL) {
        o2d_free(c->tags);
        o2d_free(c->docker_id);
        return O2D_ERR_NOMEM;
    }
    e->n_ctr++;
    for (size_t i = 0; i < e->n_task_tags; i++) {
        c->tags[c->n_tags++] = e->task_tags[i];
    }
    int rv = add_s(e, c->tags, &c->n_tags, MAX_CTR_TAGS, "ecs_container_name", jstr(cj, "Name"));
    rv = rv == O2D_OK
             ? add_s(e, c->tags, &c->n_tags, MAX_CTR_TAGS, "container_name", jstr(cj, "DockerName"))
             : rv;
    rv = rv == O2D_OK ? image_tags(e, c, jstr(cj, "Image")) : rv;
    return rv == O2D_OK ? add_s(e, c->tags, &c->n_tags, MAX_CTR_TAGS, "container_id", id) : rv;
}

int res_ecs_parse(const char *task_json, size_t task_len, const char *self_json, size_t self_len,
                  struct res_ecs **out, const char **reason)
{
    int rv = O2D_ERR_INVALID;
    json_t *task = NULL, *self = NULL;
    struct res_ecs *e = NULL;
    *out = NULL;
    *reason = NULL;
    task = json_loadb(task_json, task_len, JSON_REJECT_DUPLICATES, NULL);
    if (!json_is_object(task)) {
        *reason = "the task metadata is not a JSON object";
        goto out;
    }
    const char *arn = jstr(task, "TaskARN");
    if (arn[0] == '\0') {
        *reason = "the task metadata has no TaskARN";
        goto out;
    }
    rv = O2D_ERR_NOMEM;
    e = o2d_calloc(1, sizeof(*e));
    if (e == NULL || (e->task_arn = o2d_strndup(arn, strlen(arn))) == NULL) {
        goto out;
    }
    const char *lt = jstr(task, "LaunchType");
    e->fargate = strcmp(lt, "FARGATE") == 0 || strcmp(lt, "fargate") == 0;
    if ((rv = task_tags(e, task)) != O2D_OK) {
        goto out;
    }
    json_t *cs = json_object_get(task, "Containers");
    size_t i;
    json_t *cj;
    json_array_foreach(cs, i, cj)
    {
        if (json_is_object(cj) && (rv = container(e, cj)) != O2D_OK) {
            goto out;
        }
    }
    /* A sidecar: some other container that is not ECS's own (its names start "~internal~"). */
    const char *self_id = "";
    if (self_json != NULL && self_len > 0) {
        self = json_loadb(self_json, self_len, 0, NULL);
        self_id = json_is_object(self) ? jstr(self, "DockerId") : "";
    }
    size_t others = 0;
    json_array_foreach(cs, i, cj)
    {
        const char *id = jstr(cj, "DockerId"), *name = jstr(cj, "Name");
        if (json_is_object(cj) && strncmp(name, "~internal~", 10) != 0 &&
            (self_id[0] == '\0' || strcmp(id, self_id) != 0)) {
            others++;
        }
    }
    /* without our own id, one of the counted containers is ours */
    e->sidecar = self_id[0] != '\0' ? others > 0 : others > 1;
    *out = e;
    e = NULL;
    rv = O2D_OK;
out:
    json_decref(task);
    json_decref(self);
    res_ecs_free(e);
    return rv;
}

void res_ecs_free(struct res_ecs *e)
{
    if (e == NULL) {
        return;
    }
    for (size_t i = 0; i < e->n_ctr; i++) {
        o2d_free(e->ctr[i].docker_id);
        o2d_free(e->ctr[i].tags);
    }
    for (size_t i = 0; i < e->n_owned; i++) {
        o2d_free(e->owned[i]);
    }
    o2d_free(e->owned);
    o2d_free(e->task_arn);
    o2d_free(e);
}

int res_ecs_fargate(const struct res_ecs *e)
{
    return e != NULL && e->fargate;
}

const char *res_ecs_task_arn(const struct res_ecs *e)
{
    return e != NULL ? e->task_arn : "";
}

int res_ecs_sidecar(const struct res_ecs *e)
{
    return e != NULL && e->sidecar;
}

int res_ecs_tags_for(const struct res_ecs *e, const OtlpResource *res, const char *const **tags,
                     size_t *n)
{
    *tags = NULL;
    *n = 0;
    if (e == NULL) {
        return 0;
    }
    OtlpKeyValue *const *kv = res != NULL ? res->attributes : NULL;
    size_t nkv = res != NULL ? res->n_attributes : 0;
    struct res_str cid = res_value_str(res_attr_get(kv, nkv, "container.id"));
    struct res_str arn = res_value_str(res_attr_get(kv, nkv, "aws.ecs.task.arn"));
    if (cid.n > 0) {
        for (size_t i = 0; i < e->n_ctr; i++) {
            const struct ecs_container *c = &e->ctr[i];
            if (strlen(c->docker_id) == cid.n && memcmp(c->docker_id, cid.p, cid.n) == 0) {
                *tags = c->tags;
                *n = c->n_tags;
                return 1;
            }
        }
    }
    int ours = arn.n > 0 ? strlen(e->task_arn) == arn.n && memcmp(e->task_arn, arn.p, arn.n) == 0
                         : cid.n == 0 && e->sidecar;
    if (ours) {
        *tags = e->task_tags;
        *n = e->n_task_tags;
    }
    return ours;
}
