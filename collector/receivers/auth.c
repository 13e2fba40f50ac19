/*
 * auth.c: the bearer token store (auth.h). Follows the Collector's bearertokenauth extension
 * (opentelemetry-collector-contrib extension/bearertokenauthextension/bearertokenauth.go):
 * the header value is "<scheme> <token>", several tokens are accepted at once so that one can
 * be rotated without downtime, `filename` wins over `token`/`tokens` and its lines are
 * trimmed. Differences, on purpose: the scheme is compared without regard to case (RFC 9110
 * 11.1), digests rather than the tokens are compared (so the comparison has one length and
 * stops at none of them), blank and '#' lines of the file are skipped (the Collector would
 * accept an empty token), and the file is polled by stat() rather than watched with
 * inotify, which also follows a Kubernetes-style symlink swap or an atomic rename.
 *
 * Left to others: which requests are checked and what they are answered (the receivers), the
 * counters (ingest.c).
 */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>

#include <openssl/crypto.h>
#include <openssl/sha.h>

#include "auth.h"
#include "config.h"
#include "o2d.h"
#include "o2d_alloc.h"
#include "o2d_log.h"

#define DIGEST_LEN SHA256_DIGEST_LENGTH

struct auth_token {
    uint8_t digest[DIGEST_LEN];
    int tenant; /* index into auth.tenants, -1 for none */
};

/* What the file looked like when last read: a change in any field means read it again. */
struct file_id {
    dev_t dev;
    ino_t ino;
    off_t size;
    struct timespec mtime;
};

struct auth {
    char scheme[32];
    pthread_rwlock_t lock;
    /* Under lock. */
    struct auth_token tokens[AUTH_MAX_TOKENS];
    size_t n_tokens;
    char tenants[AUTH_MAX_TENANTS][AUTH_TENANT_MAX + 1];
    int n_tenants; /* only grows */
    /* The file and its watcher. */
    char filename[256];
    struct file_id seen;
    int failing; /* the last look failed: said once, until a load succeeds */
    atomic_uint_fast64_t loads;
    pthread_t thread;
    int thread_on;
    pthread_mutex_t stop_mu;
    pthread_cond_t stop_cv;
    int stop;
};

static const char *const failure_names[AUTH_FAIL_N] = {
    [AUTH_FAIL_MISSING] = "missing",
    [AUTH_FAIL_SCHEME] = "bad_scheme",
    [AUTH_FAIL_TOKEN] = "wrong_token",
};

static const char reason_missing[] = "missing authorization header: send 'authorization: Bearer "
                                     "<token>' (OTEL_EXPORTER_OTLP_HEADERS=authorization=Bearer%20"
                                     "<token>)";
static const char reason_scheme[] = "authorization header is not 'Bearer <token>'";
static const char reason_token[] = "the bearer token is not valid";

const char *auth_failure_name(enum auth_failure f)
{
    return (int)f >= 0 && f < AUTH_FAIL_N ? failure_names[f] : "unknown";
}

static void digest(const char *s, size_t n, uint8_t out[DIGEST_LEN])
{
    SHA256((const unsigned char *)s, n, out);
}

/* Under the write lock (or before any thread runs): the index of tenant name[0..n),
 * registered when new; -1 when the registry is full. */
static int tenant_index(struct auth *a, const char *name, size_t n)
{
    for (int i = 0; i < a->n_tenants; i++) {
        if (strlen(a->tenants[i]) == n && memcmp(a->tenants[i], name, n) == 0) {
            return i;
        }
    }
    if (a->n_tenants >= AUTH_MAX_TENANTS) {
        return -1;
    }
    memcpy(a->tenants[a->n_tenants], name, n);
    a->tenants[a->n_tenants][n] = '\0';
    return a->n_tenants++;
}

/* A parsed set, before it replaces the current one. Tenant names point into the text. */
struct pending {
    uint8_t digest[AUTH_MAX_TOKENS][DIGEST_LEN];
    const char *name[AUTH_MAX_TOKENS];
    size_t name_len[AUTH_MAX_TOKENS];
    size_t n;
};

/* Adds s[0..len) to p: O2D_ERR_CONFIG with a message naming `where` (never the token). */
static int pending_add(struct pending *p, const char *s, size_t len, const char *where, char *err,
                       size_t errlen)
{
    const char *name, *token, *why;
    size_t name_len, token_len;
    if (o2d_config_parse_token_entry(s, len, &name, &name_len, &token, &token_len, &why) !=
        O2D_OK) {
        snprintf(err, errlen, "%s: %s", where, why);
        return O2D_ERR_CONFIG;
    }
    if (p->n >= AUTH_MAX_TOKENS) {
        snprintf(err, errlen, "%s: more than %d tokens", where, AUTH_MAX_TOKENS);
        return O2D_ERR_CONFIG;
    }
    digest(token, token_len, p->digest[p->n]);
    p->name[p->n] = name;
    p->name_len[p->n] = name_len;
    p->n++;
    return O2D_OK;
}

/* The file's entries into p (text is the file's bytes, NUL-terminated, kept by the caller). */
static int parse_file(struct pending *p, const char *path, char *text, char *err, size_t errlen)
{
    unsigned line = 0;
    for (char *s = text; *s != '\0';) {
        char *nl = strchr(s, '\n');
        size_t len = nl != NULL ? (size_t)(nl - s) : strlen(s);
        line++;
        const char *b = s;
        size_t n = len;
        while (n > 0 && (*b == ' ' || *b == '\t' || *b == '\r')) {
            b++;
            n--;
        }
        while (n > 0 && (b[n - 1] == ' ' || b[n - 1] == '\t' || b[n - 1] == '\r')) {
            n--;
        }
        if (n > 0 && b[0] != '#') {
            char where[300];
            snprintf(where, sizeof(where), "%s:%u", path, line);
            int rv = pending_add(p, b, n, where, err, errlen);
            if (rv != O2D_OK) {
                return rv;
            }
        }
        s += len + (nl != NULL);
    }
    if (p->n == 0) {
        snprintf(err, errlen, "%s: holds no token", path);
        return O2D_ERR_CONFIG;
    }
    return O2D_OK;
}

/* Reads the file whole (at most AUTH_FILE_MAX) into a NUL-terminated heap copy, and its id. */
static int read_file(const char *path, char **out, struct file_id *id, char *err, size_t errlen)
{
    int rv = O2D_ERR_CONFIG;
    char *buf = NULL;
    FILE *f = fopen(path, "rb");
    struct stat st;
    if (f == NULL || fstat(fileno(f), &st) != 0) {
        snprintf(err, errlen, "cannot read %s: %s", path, strerror(errno));
        goto out;
    }
    if (st.st_size > AUTH_FILE_MAX) {
        snprintf(err, errlen, "%s is larger than %d bytes", path, AUTH_FILE_MAX);
        goto out;
    }
    buf = o2d_malloc((size_t)st.st_size + 1);
    if (buf == NULL) {
        snprintf(err, errlen, "out of memory reading %s", path);
        rv = O2D_ERR_NOMEM;
        goto out;
    }
    size_t n = fread(buf, 1, (size_t)st.st_size, f);
    if (ferror(f)) {
        snprintf(err, errlen, "cannot read %s: %s", path, strerror(errno));
        goto out;
    }
    buf[n] = '\0';
    id->dev = st.st_dev;
    id->ino = st.st_ino;
    id->size = st.st_size;
    id->mtime = st.st_mtim;
    *out = buf;
    buf = NULL;
    rv = O2D_OK;
out:
    if (f != NULL) {
        fclose(f);
    }
    if (buf != NULL) {
        OPENSSL_cleanse(buf, (size_t)st.st_size + 1);
        o2d_free(buf);
    }
    return rv;
}

/* Replaces the current set with p, under the write lock. */
static void install(struct auth *a, const struct pending *p)
{
    pthread_rwlock_wrlock(&a->lock);
    for (size_t i = 0; i < p->n; i++) {
        memcpy(a->tokens[i].digest, p->digest[i], DIGEST_LEN);
        a->tokens[i].tenant = p->name[i] != NULL ? tenant_index(a, p->name[i], p->name_len[i]) : -1;
    }
    a->n_tokens = p->n;
    pthread_rwlock_unlock(&a->lock);
}

/* Reads and installs the file; on failure nothing changes. */
static int load_file(struct auth *a, char *err, size_t errlen)
{
    char *text = NULL;
    struct file_id id;
    struct pending *p = o2d_calloc(1, sizeof(*p));
    if (p == NULL) {
        snprintf(err, errlen, "out of memory");
        return O2D_ERR_NOMEM;
    }
    int rv = read_file(a->filename, &text, &id, err, errlen);
    if (rv == O2D_OK) {
        /* Read: an invalid text is not read again until the file changes. */
        a->seen = id;
        rv = parse_file(p, a->filename, text, err, errlen);
    }
    if (rv == O2D_OK) {
        install(a, p);
        atomic_fetch_add(&a->loads, 1);
    }
    if (text != NULL) {
        OPENSSL_cleanse(text, strlen(text));
        o2d_free(text);
    }
    OPENSSL_cleanse(p, sizeof(*p));
    o2d_free(p);
    return rv;
}

int auth_new(struct auth **out, const char *scheme, const char *const *entries, size_t n,
             const char *filename, char *err, size_t errlen)
{
    int rv = O2D_ERR_NOMEM;
    struct pending *p = NULL;
    *out = NULL;
    struct auth *a = o2d_calloc(1, sizeof(*a));
    if (a == NULL) {
        snprintf(err, errlen, "out of memory");
        goto out;
    }
    snprintf(a->scheme, sizeof(a->scheme), "%s",
             scheme != NULL && scheme[0] != '\0' ? scheme : "Bearer");
    pthread_rwlock_init(&a->lock, NULL);
    pthread_mutex_init(&a->stop_mu, NULL);
    pthread_cond_init(&a->stop_cv, NULL);
    if (filename != NULL && filename[0] != '\0') {
        snprintf(a->filename, sizeof(a->filename), "%s", filename);
        rv = load_file(a, err, errlen);
        if (rv != O2D_OK) {
            goto out;
        }
    } else {
        p = o2d_calloc(1, sizeof(*p));
        if (p == NULL) {
            snprintf(err, errlen, "out of memory");
            goto out;
        }
        for (size_t i = 0; i < n; i++) {
            char where[64];
            snprintf(where, sizeof(where), "extensions.bearertokenauth token %zu", i + 1);
            rv = pending_add(p, entries[i], strlen(entries[i]), where, err, errlen);
            if (rv != O2D_OK) {
                goto out;
            }
        }
        if (p->n == 0) {
            snprintf(err, errlen, "extensions.bearertokenauth needs token, tokens or filename");
            rv = O2D_ERR_CONFIG;
            goto out;
        }
        install(a, p);
    }
    *out = a;
    a = NULL;
    rv = O2D_OK;
out:
    if (p != NULL) {
        OPENSSL_cleanse(p, sizeof(*p));
        o2d_free(p);
    }
    auth_free(a);
    return rv;
}

static int same_id(const struct file_id *x, const struct stat *st)
{
    return x->dev == st->st_dev && x->ino == st->st_ino && x->size == st->st_size &&
           x->mtime.tv_sec == st->st_mtim.tv_sec && x->mtime.tv_nsec == st->st_mtim.tv_nsec;
}

/* One look at the file from the watcher thread. */
static void poll_file(struct auth *a)
{
    char err[512];
    struct stat st;
    int rv;
    if (stat(a->filename, &st) != 0) {
        snprintf(err, sizeof(err), "cannot read %s: %s", a->filename, strerror(errno));
        rv = O2D_ERR_CONFIG;
    } else if (same_id(&a->seen, &st)) {
        return;
    } else {
        rv = load_file(a, err, sizeof(err));
    }
    struct o2d_logline l;
    if (rv != O2D_OK) {
        if (!a->failing) {
            a->failing = 1;
            o2d_log_begin(&l, O2D_LOG_WARN,
                          "bearer token file unusable: keeping the tokens loaded before");
            o2d_log_cstr(&l, "error", err);
            o2d_log_end(&l);
        }
        return;
    }
    a->failing = 0;
    pthread_rwlock_rdlock(&a->lock);
    size_t n = a->n_tokens;
    pthread_rwlock_unlock(&a->lock);
    o2d_log_begin(&l, O2D_LOG_INFO, "bearer token file reloaded");
    o2d_log_cstr(&l, "filename", a->filename);
    o2d_log_uint(&l, "tokens", n);
    o2d_log_end(&l);
}

static void *watch_main(void *arg)
{
    struct auth *a = arg;
    pthread_mutex_lock(&a->stop_mu);
    while (!a->stop) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_nsec += (long)AUTH_POLL_MS * 1000000L;
        ts.tv_sec += ts.tv_nsec / 1000000000L;
        ts.tv_nsec %= 1000000000L;
        pthread_cond_timedwait(&a->stop_cv, &a->stop_mu, &ts);
        if (a->stop) {
            break;
        }
        pthread_mutex_unlock(&a->stop_mu);
        poll_file(a);
        pthread_mutex_lock(&a->stop_mu);
    }
    pthread_mutex_unlock(&a->stop_mu);
    return NULL;
}

int auth_start(struct auth *a)
{
    if (a == NULL || a->filename[0] == '\0' || a->thread_on) {
        return O2D_OK;
    }
    if (pthread_create(&a->thread, NULL, watch_main, a) != 0) {
        return O2D_ERR_SYSTEM;
    }
    a->thread_on = 1;
    return O2D_OK;
}

void auth_free(struct auth *a)
{
    if (a == NULL) {
        return;
    }
    if (a->thread_on) {
        pthread_mutex_lock(&a->stop_mu);
        a->stop = 1;
        pthread_cond_signal(&a->stop_cv);
        pthread_mutex_unlock(&a->stop_mu);
        pthread_join(a->thread, NULL);
    }
    pthread_rwlock_destroy(&a->lock);
    pthread_mutex_destroy(&a->stop_mu);
    pthread_cond_destroy(&a->stop_cv);
    OPENSSL_cleanse(a->tokens, sizeof(a->tokens));
    o2d_free(a);
}

int auth_check(struct auth *a, const char *value, size_t len, int *tenant, enum auth_failure *why,
               const char **reason)
{
    *tenant = -1;
    if (value == NULL) {
        *why = AUTH_FAIL_MISSING;
        *reason = reason_missing;
        return O2D_ERR_UNAUTHENTICATED;
    }
    /* "<scheme> 1*SP <token>", blanks around it ignored. */
    while (len > 0 && (*value == ' ' || *value == '\t')) {
        value++;
        len--;
    }
    while (len > 0 && (value[len - 1] == ' ' || value[len - 1] == '\t')) {
        len--;
    }
    if (len == 0) {
        *why = AUTH_FAIL_MISSING;
        *reason = reason_missing;
        return O2D_ERR_UNAUTHENTICATED;
    }
    size_t sl = strlen(a->scheme);
    if (len <= sl || strncasecmp(value, a->scheme, sl) != 0 || value[sl] != ' ') {
        *why = AUTH_FAIL_SCHEME;
        *reason = reason_scheme;
        return O2D_ERR_UNAUTHENTICATED;
    }
    const char *tok = value + sl;
    size_t tl = len - sl;
    while (tl > 0 && *tok == ' ') {
        tok++;
        tl--;
    }
    uint8_t d[DIGEST_LEN];
    digest(tok, tl, d);
    /* Every configured digest is compared, whatever matched before. */
    int found = -1;
    int found_tenant = -1;
    pthread_rwlock_rdlock(&a->lock);
    for (size_t i = 0; i < a->n_tokens; i++) {
        int eq = CRYPTO_memcmp(d, a->tokens[i].digest, DIGEST_LEN) == 0;
        found = eq ? (int)i : found;
        found_tenant = eq ? a->tokens[i].tenant : found_tenant;
    }
    pthread_rwlock_unlock(&a->lock);
    if (found < 0) {
        *why = AUTH_FAIL_TOKEN;
        *reason = reason_token;
        return O2D_ERR_UNAUTHENTICATED;
    }
    *tenant = found_tenant;
    return O2D_OK;
}

int auth_tenant_count(struct auth *a)
{
    if (a == NULL) {
        return 0;
    }
    pthread_rwlock_rdlock(&a->lock);
    int n = a->n_tenants;
    pthread_rwlock_unlock(&a->lock);
    return n;
}

const char *auth_tenant_name(struct auth *a, int i, char *buf)
{
    buf[0] = '\0';
    if (a == NULL) {
        return buf;
    }
    pthread_rwlock_rdlock(&a->lock);
    if (i >= 0 && i < a->n_tenants) {
        memcpy(buf, a->tenants[i], AUTH_TENANT_MAX + 1);
    }
    pthread_rwlock_unlock(&a->lock);
    return buf;
}

int auth_tenant_find(struct auth *a, const char *name, size_t len)
{
    if (a == NULL || len == 0 || len > AUTH_TENANT_MAX) {
        return -1;
    }
    int found = -1;
    pthread_rwlock_rdlock(&a->lock);
    for (int i = 0; i < a->n_tenants && found < 0; i++) {
        if (strlen(a->tenants[i]) == len && memcmp(a->tenants[i], name, len) == 0) {
            found = i;
        }
    }
    pthread_rwlock_unlock(&a->lock);
    return found;
}

uint64_t auth_loads(struct auth *a)
{
    return atomic_load(&a->loads);
}
