/*
 * auth.h: the bearer token store both receivers check requests against
 * (`extensions.bearertokenauth`, the Collector's bearertokenauth extension in shape:
 * opentelemetry-collector-contrib extension/bearertokenauthextension, key names `token`,
 * `tokens`, `filename`, `scheme`; the header value is "<scheme> <token>", scheme "Bearer").
 *
 * Each configured token may name its tenant: an entry "name:token" is token `token` of tenant
 * `name`; an entry without ':' is a token without a tenant (its requests are then attributed
 * to their first resource's service.name, ingest.c). ':' cannot be part of a token: RFC 6750
 * 2.1's b64token has no ':' (nor blanks), which is also what the loader checks
 * (o2d_config_parse_token_entry, config.h, shared with the configuration's checks).
 *
 * Only the SHA-256 digest of each token is kept. A presented token is hashed and its digest
 * compared with every configured digest with CRYPTO_memcmp, all of them each time: how long
 * the answer takes does not depend on how much of a token matched, nor on which one did.
 *
 * With `filename` (which wins over token/tokens, as in the Collector) the file holds one entry
 * a line (blank lines and lines starting with '#' are skipped). A thread of its own looks at
 * the file's identity (device, inode, size, modification time) every AUTH_POLL_MS and reads it
 * again when it changed; a file that cannot be read or holds an invalid entry keeps the tokens
 * already loaded, and says so once per streak of failures. The request path only takes a read
 * lock.
 *
 * Tenant names are registered as they appear (configuration, then each reload) and never
 * forgotten, up to AUTH_MAX_TENANTS: an index stays valid for the process's life, which makes
 * it a bounded metric label. Tokens never appear in a log line or a message.
 */
#ifndef O2D_AUTH_H
#define O2D_AUTH_H

#include <stddef.h>
#include <stdint.h>

#define AUTH_MAX_TOKENS  64
#define AUTH_MAX_TENANTS 16
#define AUTH_TENANT_MAX  63  /* bytes of a tenant name */
#define AUTH_TOKEN_MAX   255 /* bytes of a token */
#define AUTH_FILE_MAX    (64 * 1024)
#define AUTH_POLL_MS     500

struct auth;

/* Why a request was not authenticated: a closed set, for metric labels. */
enum auth_failure {
    AUTH_FAIL_MISSING = 0, /* no authorization header */
    AUTH_FAIL_SCHEME = 1,  /* not "<scheme> <token>" */
    AUTH_FAIL_TOKEN = 2,   /* a token that is not configured */
    AUTH_FAIL_N
};
const char *auth_failure_name(enum auth_failure f);

/*
 * A store of the tokens entries[0..n) ("name:token" or "token"), or of the file `filename`
 * when not empty (read now: a start-up failure is a configuration error). `scheme` is the
 * header's scheme ("Bearer" when NULL or empty), compared without regard to case. `what`
 * names the configuration in messages. O2D_ERR_CONFIG with err filled (never with a token's
 * text) when an entry is invalid, there is none, or the file cannot be read.
 */
int auth_new(struct auth **out, const char *scheme, const char *const *entries, size_t n,
             const char *filename, char *err, size_t errlen);
/* Starts the file watcher when there is a file; O2D_OK otherwise too. */
int auth_start(struct auth *a);
/* Stops the watcher and frees; NULL is a no-op. */
void auth_free(struct auth *a);

/*
 * Checks an authorization header value (value[0..len), NULL when the header is absent).
 * O2D_OK with *tenant the token's tenant index (-1 when its entry names none), or
 * O2D_ERR_UNAUTHENTICATED with *why and *reason (static, safe to send back). Thread-safe.
 */
int auth_check(struct auth *a, const char *value, size_t len, int *tenant, enum auth_failure *why,
               const char **reason);

/* The number of tenant names registered so far, and the name of index i (a copy into buf of
 * AUTH_TENANT_MAX + 1 bytes; "" when out of range). Thread-safe. */
int auth_tenant_count(struct auth *a);
const char *auth_tenant_name(struct auth *a, int i, char *buf);
/* The index of a registered tenant called name[0..len), or -1. Thread-safe. */
int auth_tenant_find(struct auth *a, const char *name, size_t len);

/* How many times the file was loaded (1 after auth_new with a file), for tests and logs. */
uint64_t auth_loads(struct auth *a);

#endif
