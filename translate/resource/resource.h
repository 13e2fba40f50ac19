/*
 * resource.h: what an OTLP resource says for Datadog, shared by APM, logs and metrics: where
 * it runs (the hostname source), the tags Datadog derives from a fixed table of its attributes,
 * and attribute values written as Datadog's Go code writes them (pcommon Value.AsString(),
 * encoding/json of Value.AsRaw()).
 *
 * Pure functions of the attributes: nothing here reads configuration (the configured fallback
 * hostname is the caller's) or keeps a pointer past the call other than into the arena.
 */
#ifndef O2D_RESOURCE_H
#define O2D_RESOURCE_H

#include <stddef.h>

#include "o2d_arena.h"
#include "o2d_buf.h"
#include "otlp.h"

/* Bytes with a length; p points into the request (its arena) or a static string. */
struct res_str {
    const char *p;
    size_t n;
};

/* Where a resource (or a set of attributes) runs: attributes.SourceFromAttrs. */
struct res_source {
    int found;               /* a source was found in the attributes */
    int fargate;             /* AWS ECS Fargate: no hostname, the task ARN instead */
    struct res_str hostname; /* found and not fargate: the host; "" otherwise */
    struct res_str task_arn; /* fargate: aws.ecs.task.arn */
};

/*
 * attributes.SourceFromAttrs (source.go) over attrs[0..n): the Fargate task first, then the
 * hostname rules (host, datadog.host.name, cloud providers, k8s node, host.id, host.name);
 * localhost and the like are refused (found 0). Strings made up (gcp, k8s cluster suffix)
 * go into `a`. O2D_OK or O2D_ERR_TOO_LARGE (arena full).
 */
int res_source_from_attrs(struct o2d_arena *a, OtlpKeyValue *const *attrs, size_t n,
                          struct res_source *out);
/* The same over a resource's attributes (res NULL: nothing found). */
int res_source(struct o2d_arena *a, const OtlpResource *res, struct res_source *out);

/*
 * attributes.TagsFromAttributes (attributes.go): "key:value" tags from the fixed table only:
 * unified service tags (service.name, deployment.environment(.name), service.version,
 * service.instance.id), the Kubernetes DD label names, the Datadog tag names given verbatim,
 * container/cloud/ECS/k8s conventions and datadog.container.tag.*, the first of the process
 * attributes, os.type. Every other attribute is not a tag. *tags is an array of n_tags
 * strings in `a`; the order is the attributes' for the first three groups, then the mapping
 * table's (Go iterates a map there: its order is not specified).
 */
int res_tags_from_attributes(struct o2d_arena *a, OtlpKeyValue *const *attrs, size_t n,
                             struct res_str **tags, size_t *n_tags);

/* attributes.ContainerMappings: a container, cloud, ECS or Kubernetes resource attribute and
 * the Datadog tag it becomes (for the tags here, and for APM's container tags). */
struct res_mapping {
    const char *otel;
    const char *dd;
};
extern const struct res_mapping res_container_mappings[];
extern const size_t res_n_container_mappings;

/* pcommon Value.Str(): the string, or "" for any other type (and for NULL). */
struct res_str res_value_str(const OtlpAnyValue *v);
/* The value of the first attribute named key, NULL when there is none. */
const OtlpAnyValue *res_attr_get(OtlpKeyValue *const *attrs, size_t n, const char *key);

/* ---- JSON as Go writes it (res_json.c) ---- */

/* pcommon Value.AsString() into the arena (or pointing into v for strings). */
int res_value_as_string(struct o2d_arena *a, const OtlpAnyValue *v, struct res_str *out);
/* Appends v as encoding/json marshals pcommon Value.AsRaw() (HTML-safe escaping, map keys
 * sorted, float64 in the ES6 form, bytes in base64; NaN and infinities as null). `a` holds
 * the sorted copies of maps' keys. */
int res_json_value(struct o2d_buf *b, struct o2d_arena *a, const OtlpAnyValue *v, int depth);
/* Appends a Go-style JSON string (HTML-safe escapes, invalid UTF-8 -> \ufffd). */
int res_json_string(struct o2d_buf *b, const char *s, size_t n);
/* strconv.FormatFloat as pcommon and encoding/json print a float64 (ES6 cut-offs). */
int res_json_float(struct o2d_buf *b, double f);

#endif
