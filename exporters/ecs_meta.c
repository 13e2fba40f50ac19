/*
 * ecs_meta.c: reads the ECS task metadata in a thread of its own (ecs_meta.h): GET
 * `${uri}/task` and `${uri}` (this container) with libcurl, each bounded in time (timeout_ms)
 * and size (max_body), no redirects, no proxy (the endpoint is link-local), parsed by
 * res_ecs_parse into a snapshot that replaces the previous one. A good read is repeated every
 * refresh_ms (tags of a task barely change: its revision never does, a service name may
 * appear); a failed one is retried after retry_ms, doubling up to refresh_ms, and only the
 * first failure of a run of them is logged. Readers take a reference on the snapshot they
 * use, so a refresh never frees one in use.
 *
 * Datadog's own agent reads the same endpoint (DataDog/datadog-agent pkg/util/ecs/metadata/v4
 * client: GET ${ECS_CONTAINER_METADATA_URI_V4}/task) through its workloadmeta ECS collector.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include <curl/curl.h>

#include "ecs_meta.h"
#include "o2d.h"
#include "o2d_alloc.h"
#include "o2d_buf.h"
#include "o2d_log.h"
#include "o2d_time.h"

#define ECS_DEFAULT_REFRESH_MS (5 * 60 * 1000)
#define ECS_MIN_REFRESH_MS     (60 * 1000)
#define ECS_DEFAULT_RETRY_MS   5000
#define ECS_DEFAULT_TIMEOUT_MS 2000
#define ECS_DEFAULT_MAX_BODY   (1u << 20)
#define ECS_URI_MAX            1024

struct ecs_snap {
    atomic_long refs;
    struct res_ecs *e;
};

struct ecs_meta {
    char task_url[ECS_URI_MAX + 8];
    char self_url[ECS_URI_MAX];
    int64_t refresh_ms, retry_ms, timeout_ms;
    size_t max_body;

    pthread_t thread;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int stop;             /* under mu */
    atomic_int stopping;  /* read by curl's progress callback */
    struct ecs_snap *cur; /* under mu */
    atomic_ulong ok, failed;
};

void ecs_snap_put(struct ecs_snap *s)
{
    if (s != NULL && atomic_fetch_sub(&s->refs, 1) == 1) {
        res_ecs_free(s->e);
        o2d_free(s);
    }
}

struct body {
    struct o2d_buf buf;
    int too_large;
};

static size_t on_data(char *p, size_t size, size_t n, void *ctx)
{
    struct body *b = ctx;
    if (o2d_buf_append(&b->buf, p, size * n) != O2D_OK) {
        b->too_large = 1;
        return 0; /* aborts the transfer */
    }
    return size * n;
}

static int on_progress(void *ctx, curl_off_t dt, curl_off_t dn, curl_off_t ut, curl_off_t un)
{
    struct ecs_meta *m = ctx;
    (void)dt, (void)dn, (void)ut, (void)un;
    return atomic_load(&m->stopping) ? 1 : 0;
}

/* GET url into b; NULL on success, else what went wrong (a static string or errbuf). */
static const char *get(struct ecs_meta *m, const char *url, struct body *b, char *errbuf)
{
    CURL *h = curl_easy_init();
    if (h == NULL) {
        return "cannot make a curl handle";
    }
    errbuf[0] = '\0';
    curl_easy_setopt(h, CURLOPT_URL, url);
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http");
    curl_easy_setopt(h, CURLOPT_FOLLOWLOCATION, 0L);
    curl_easy_setopt(h, CURLOPT_NOPROXY, "*");
    curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, (long)m->timeout_ms);
    curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, (long)m->timeout_ms);
    curl_easy_setopt(h, CURLOPT_MAXFILESIZE_LARGE, (curl_off_t)m->max_body);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_data);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, b);
    curl_easy_setopt(h, CURLOPT_NOPROGRESS, 0L);
    curl_easy_setopt(h, CURLOPT_XFERINFOFUNCTION, on_progress);
    curl_easy_setopt(h, CURLOPT_XFERINFODATA, m);
    curl_easy_setopt(h, CURLOPT_ERRORBUFFER, errbuf);
    CURLcode rc = curl_easy_perform(h);
    long status = 0;
    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
    curl_easy_cleanup(h);
    if (b->too_large || rc == CURLE_FILESIZE_EXCEEDED) {
        return "the answer is larger than the limit";
    }
    if (rc != CURLE_OK) {
        return errbuf[0] != '\0' ? errbuf : curl_easy_strerror(rc);
    }
    if (status != 200) {
        snprintf(errbuf, CURL_ERROR_SIZE, "HTTP %ld", status);
        return errbuf;
    }
    return NULL;
}

/* One read of both documents; a new snapshot on success. */
static int read_once(struct ecs_meta *m, const char **why, char *errbuf)
{
    struct body task, self;
    o2d_buf_init(&task.buf, m->max_body);
    o2d_buf_init(&self.buf, m->max_body);
    task.too_large = self.too_large = 0;
    int rv = O2D_ERR_INVALID;
    *why = get(m, m->task_url, &task, errbuf);
    if (*why != NULL) {
        goto out;
    }
    /* this container's own document only tells which container is ours: without it the
     * task's tags are still right */
    char errbuf2[CURL_ERROR_SIZE];
    int have_self = get(m, m->self_url, &self, errbuf2) == NULL;
    struct res_ecs *e = NULL;
    rv = res_ecs_parse(task.buf.data ? (const char *)task.buf.data : "", task.buf.len,
                       have_self ? (const char *)self.buf.data : NULL, have_self ? self.buf.len : 0,
                       &e, why);
    if (rv != O2D_OK) {
        if (*why == NULL) {
            *why = "out of memory";
        }
        goto out;
    }
    struct ecs_snap *s = o2d_calloc(1, sizeof(*s));
    if (s == NULL) {
        res_ecs_free(e);
        *why = "out of memory";
        rv = O2D_ERR_NOMEM;
        goto out;
    }
    atomic_init(&s->refs, 1);
    s->e = e;
    pthread_mutex_lock(&m->mu);
    struct ecs_snap *old = m->cur;
    m->cur = s;
    pthread_mutex_unlock(&m->mu);
    ecs_snap_put(old);
    rv = O2D_OK;
out:
    o2d_buf_cleanup(&task.buf);
    o2d_buf_cleanup(&self.buf);
    return rv;
}

static void *run(void *arg)
{
    struct ecs_meta *m = arg;
    int64_t retry = m->retry_ms;
    int failing = 0;
    char errbuf[CURL_ERROR_SIZE];
    for (;;) {
        const char *why = NULL;
        int64_t wait_ms;
        if (read_once(m, &why, errbuf) == O2D_OK) {
            atomic_fetch_add(&m->ok, 1);
            if (atomic_load(&m->ok) == 1 || failing) {
                const struct res_ecs *e = m->cur->e; /* only this thread replaces it */
                struct o2d_logline l;
                o2d_log_begin(&l, O2D_LOG_INFO, "ECS task metadata read");
                o2d_log_cstr(&l, "task_arn", res_ecs_task_arn(e));
                o2d_log_cstr(&l, "launch_type", res_ecs_fargate(e) ? "FARGATE" : "other");
                o2d_log_cstr(&l, "sidecar", res_ecs_sidecar(e) ? "true" : "false");
                o2d_log_end(&l);
            }
            failing = 0;
            retry = m->retry_ms;
            wait_ms = m->refresh_ms;
        } else {
            atomic_fetch_add(&m->failed, 1);
            if (atomic_load(&m->stopping)) {
                break;
            }
            if (!failing) {
                struct o2d_logline l;
                o2d_log_begin(&l, O2D_LOG_WARN,
                              "ECS task metadata unavailable: telemetry goes out without the "
                              "task's tags until a read succeeds");
                o2d_log_cstr(&l, "url", m->task_url);
                o2d_log_cstr(&l, "reason", why != NULL ? why : "unknown");
                o2d_log_end(&l);
            }
            failing = 1;
            wait_ms = retry;
            retry = retry * 2 < m->refresh_ms ? retry * 2 : m->refresh_ms;
        }
        struct timespec until;
        clock_gettime(CLOCK_MONOTONIC, &until);
        until.tv_sec += (time_t)(wait_ms / 1000);
        until.tv_nsec += (long)(wait_ms % 1000) * 1000000L;
        if (until.tv_nsec >= 1000000000L) {
            until.tv_sec++;
            until.tv_nsec -= 1000000000L;
        }
        pthread_mutex_lock(&m->mu);
        while (!m->stop && pthread_cond_timedwait(&m->cv, &m->mu, &until) == 0) {
        }
        int stop = m->stop;
        pthread_mutex_unlock(&m->mu);
        if (stop) {
            break;
        }
    }
    return NULL;
}

int ecs_meta_start(struct ecs_meta **out, const struct ecs_meta_config *cfg)
{
    *out = NULL;
    const char *uri = cfg->base_uri != NULL ? cfg->base_uri : "";
    size_t n = strlen(uri);
    while (n > 0 && uri[n - 1] == '/') {
        n--;
    }
    if (strncmp(uri, "http://", 7) != 0 || n <= 7 || n >= ECS_URI_MAX) {
        return O2D_ERR_INVALID;
    }
    struct ecs_meta *m = o2d_calloc(1, sizeof(*m));
    if (m == NULL) {
        return O2D_ERR_NOMEM;
    }
    snprintf(m->self_url, sizeof(m->self_url), "%.*s", (int)n, uri);
    snprintf(m->task_url, sizeof(m->task_url), "%.*s/task", (int)n, uri);
    m->refresh_ms = cfg->refresh_ms > 0 ? cfg->refresh_ms : ECS_DEFAULT_REFRESH_MS;
    if (m->refresh_ms < ECS_MIN_REFRESH_MS) {
        m->refresh_ms = ECS_MIN_REFRESH_MS;
    }
    m->retry_ms = cfg->retry_ms > 0 ? cfg->retry_ms : ECS_DEFAULT_RETRY_MS;
    m->timeout_ms = cfg->timeout_ms > 0 ? cfg->timeout_ms : ECS_DEFAULT_TIMEOUT_MS;
    m->max_body = cfg->max_body > 0 ? cfg->max_body : ECS_DEFAULT_MAX_BODY;
    pthread_mutex_init(&m->mu, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&m->cv, &ca);
    pthread_condattr_destroy(&ca);
    if (pthread_create(&m->thread, NULL, run, m) != 0) {
        pthread_cond_destroy(&m->cv);
        pthread_mutex_destroy(&m->mu);
        o2d_free(m);
        return O2D_ERR_SYSTEM;
    }
    *out = m;
    return O2D_OK;
}

void ecs_meta_stop(struct ecs_meta *m)
{
    if (m == NULL) {
        return;
    }
    atomic_store(&m->stopping, 1);
    pthread_mutex_lock(&m->mu);
    m->stop = 1;
    pthread_cond_signal(&m->cv);
    pthread_mutex_unlock(&m->mu);
    pthread_join(m->thread, NULL);
    ecs_snap_put(m->cur);
    pthread_cond_destroy(&m->cv);
    pthread_mutex_destroy(&m->mu);
    o2d_free(m);
}

struct ecs_snap *ecs_meta_get(struct ecs_meta *m)
{
    if (m == NULL) {
        return NULL;
    }
    pthread_mutex_lock(&m->mu);
    struct ecs_snap *s = m->cur;
    if (s != NULL) {
        atomic_fetch_add(&s->refs, 1);
    }
    pthread_mutex_unlock(&m->mu);
    return s;
}

const struct res_ecs *ecs_snap_task(const struct ecs_snap *s)
{
    return s != NULL ? s->e : NULL;
}

void ecs_meta_counts(struct ecs_meta *m, uint64_t *ok, uint64_t *failed)
{
    *ok = m != NULL ? atomic_load(&m->ok) : 0;
    *failed = m != NULL ? atomic_load(&m->failed) : 0;
}

int ecs_meta_env_fargate(void)
{
    const char *f = getenv("ECS_FARGATE"), *x = getenv("AWS_EXECUTION_ENV");
    return (f != NULL && f[0] != '\0') || (x != NULL && strcmp(x, "AWS_ECS_FARGATE") == 0);
}
