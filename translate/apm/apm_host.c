/*
 * apm_host.c: what a resource says about where it runs, for APM: the hostname source
 * (translate/resource res_source: source.go SourceFromAttrs) and the container tags of the
 * TracerPayload (attributes.go ContainerMappings / ContainerTagsFromResourceAttributes, and
 * pkg/trace/api/otlp.go receiveResourceSpansV2 for the Fargate task_arn tag).
 */
#include <string.h>

#include "apm_int.h"
#include "o2d.h"

static const OtlpAnyValue *res_get(const OtlpResource *res, const char *key)
{
    if (res == NULL) {
        return NULL;
    }
    for (size_t i = 0; i < res->n_attributes; i++) {
        if (strcmp(res->attributes[i]->key, key) == 0) {
            return res->attributes[i]->value;
        }
    }
    return NULL;
}

/* pcommon Value.Str(): the string, or "" for any other type. */
static struct apm_str str_of(const OtlpAnyValue *v)
{
    if (v == NULL ||
        v->value_case != OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_STRING_VALUE) {
        return APM_STR_LIT("");
    }
    return (struct apm_str){v->string_value, strlen(v->string_value)};
}

int apm_host_source(struct o2d_arena *a, const OtlpResource *res, struct apm_source *out)
{
    struct res_source rs;
    int rv = res_source(a, res, &rs);
    out->found = rs.found;
    out->fargate = rs.fargate;
    out->hostname = (struct apm_str){rs.hostname.p, rs.hostname.n};
    out->task_arn = (struct apm_str){rs.task_arn.p, rs.task_arn.n};
    return rv;
}

/* attributes.ContainerMappings (translate/resource), in the order we write them. */
#define container_mappings res_container_mappings
#define N_MAPPINGS         res_n_container_mappings

#define CUSTOM_PREFIX     "datadog.container.tag."
#define CUSTOM_PREFIX_LEN (sizeof(CUSTOM_PREFIX) - 1)

static int is_mapped_dd_key(const char *k, size_t n, const OtlpResource *res)
{
    for (size_t i = 0; i < N_MAPPINGS; i++) {
        const char *dd = container_mappings[i].dd;
        if (strlen(dd) == n && memcmp(dd, k, n) == 0) {
            return str_of(res_get(res, container_mappings[i].otel)).n > 0;
        }
    }
    return 0;
}

static int append_tag(struct o2d_buf *b, const char *k, size_t kn, struct apm_str v)
{
    int rv = O2D_OK;
    if (b->len > 0) {
        rv = o2d_buf_append_byte(b, ',');
    }
    rv = rv == O2D_OK ? o2d_buf_append(b, k, kn) : rv;
    rv = rv == O2D_OK ? o2d_buf_append_byte(b, ':') : rv;
    return rv == O2D_OK ? o2d_buf_append(b, v.p, v.n) : rv;
}

/* Could res hold a key of container_mappings? Each of them begins with one of these
 * prefixes, and most resources have none: their mappings are then not looked up one by
 * one (a walk over the attributes for each). */
static int may_have_mapped(const OtlpResource *res)
{
    for (size_t i = 0; i < res->n_attributes; i++) {
        const char *k = res->attributes[i]->key;
        switch (k[0]) {
        case 'c':
            if (strncmp(k, "container.", 10) == 0 || strncmp(k, "cloud.", 6) == 0) {
                return 1;
            }
            break;
        case 'a':
            if (strncmp(k, "aws.ecs.", 8) == 0) {
                return 1;
            }
            break;
        case 'k':
            if (strncmp(k, "k8s.", 4) == 0) {
                return 1;
            }
            break;
        default:
            break;
        }
    }
    return 0;
}

int apm_host_container_tags(struct o2d_arena *a, const OtlpResource *res,
                            const struct apm_source *src, struct o2d_buf *scratch,
                            struct apm_str *out)
{
    int rv = O2D_OK;
    int have_task_arn = 0;
    o2d_buf_reset(scratch);
    *out = APM_STR_LIT("");
    if (res == NULL) {
        return O2D_OK;
    }
    int mapped = may_have_mapped(res);
    for (size_t i = 0; mapped && i < N_MAPPINGS && rv == O2D_OK; i++) {
        struct apm_str v = str_of(res_get(res, container_mappings[i].otel));
        if (v.n > 0) {
            rv = append_tag(scratch, container_mappings[i].dd, strlen(container_mappings[i].dd), v);
            have_task_arn |= strcmp(container_mappings[i].dd, "task_arn") == 0;
        }
    }
    /* Custom tags never replace a mapped one; the first of duplicates wins. */
    for (size_t i = 0; i < res->n_attributes && rv == O2D_OK; i++) {
        const char *k = res->attributes[i]->key;
        if (strncmp(k, CUSTOM_PREFIX, CUSTOM_PREFIX_LEN) != 0) {
            continue;
        }
        const char *ck = k + CUSTOM_PREFIX_LEN;
        size_t ckn = strlen(ck);
        struct apm_str v = str_of(res->attributes[i]->value);
        if (ckn == 0 || v.n == 0 || is_mapped_dd_key(ck, ckn, res)) {
            continue;
        }
        int dup = 0;
        for (size_t j = 0; j < i; j++) {
            if (strcmp(res->attributes[j]->key, k) == 0 &&
                str_of(res->attributes[j]->value).n > 0) {
                dup = 1;
                break;
            }
        }
        if (!dup) {
            rv = append_tag(scratch, ck, ckn, v);
            have_task_arn |= ckn == 8 && memcmp(ck, "task_arn", 8) == 0;
        }
    }
    /* receiveResourceSpansV2 appends the Fargate source's tag (task_arn:<arn>) when the tagger
     * gave none; the agent may then write task_arn twice, we write it once. */
    if (rv == O2D_OK && src->fargate && !have_task_arn) {
        rv = append_tag(scratch, "task_arn", 8, src->task_arn);
    }
    if (rv != O2D_OK || scratch->len == 0) {
        return rv;
    }
    char *s = o2d_arena_strndup(a, (const char *)scratch->data, scratch->len);
    if (s == NULL) {
        return O2D_ERR_TOO_LARGE;
    }
    out->p = s;
    out->n = scratch->len;
    return O2D_OK;
}
