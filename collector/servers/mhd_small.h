/*
 * mhd_small.h: what otel2dd's small libmicrohttpd servers share (health, metrics): one
 * internal polling thread, every request answered on MHD's first call from its request line
 * alone (no body is read), and small connection, memory and time limits so that a
 * misbehaving prober stays cheap. Also MHD's diagnostics as our log lines, for every server.
 */
#ifndef O2D_MHD_SMALL_H
#define O2D_MHD_SMALL_H

#include <microhttpd.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

struct mhd_small_limits {
    unsigned int connections; /* at once; more are refused by MHD */
    unsigned int timeout_s;   /* a connection idle this long is closed */
    size_t conn_memory;       /* per connection: bounds the request line and headers */
};

/*
 * Binds endpoint ("host:port"), starts a daemon that calls `handler(cls, ...)` and logs
 * {"msg":"listening","server":<server>,"endpoint":...,"port":N}. `server` is a static name
 * (also used in MHD's log lines). On failure *out is NULL, err says why, and the status is
 * returned.
 */
int mhd_small_start(struct MHD_Daemon **out, uint16_t *port, const char *server,
                    const char *endpoint, const struct mhd_small_limits *lim,
                    MHD_AccessHandlerCallback handler, void *cls, char *err, size_t errlen);

/*
 * Queues one answer: `owned` (len bytes from o2d_malloc, freed by MHD after sending, or here
 * on failure) or else the static NUL-terminated `body`; Content-Type `ctype`,
 * Cache-Control: no-store, and Allow when `allow` is set.
 */
enum MHD_Result mhd_small_answer(struct MHD_Connection *conn, unsigned int code, const char *ctype,
                                 uint8_t *owned, size_t len, const char *body, const char *allow);

/* MHD_OPTION_EXTERNAL_LOGGER for any of our daemons; `cls` is the server's static name. */
void mhd_small_log(void *cls, const char *fmt, va_list ap);

#endif
