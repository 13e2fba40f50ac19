/*
 * o2d_status.c: names for the status enum. Kept apart from the mappings to wire codes,
 * which belong to the receivers (collector/receivers/status_map.c).
 */
#include "o2d.h"

const char *o2d_strerror(int status)
{
    switch (status) {
    case O2D_OK:
        return "ok";
    case O2D_ERR_INVALID:
        return "invalid input";
    case O2D_ERR_TOO_LARGE:
        return "input too large";
    case O2D_ERR_UNSUPPORTED:
        return "unsupported encoding";
    case O2D_ERR_BUSY:
        return "busy, retry later";
    case O2D_ERR_NOMEM:
        return "out of memory, retry later";
    case O2D_ERR_NOT_FOUND:
        return "not found";
    case O2D_ERR_TIMEOUT:
        return "deadline exceeded";
    case O2D_ERR_SHUTDOWN:
        return "shutting down";
    case O2D_ERR_INTERNAL:
        return "internal error";
    case O2D_ERR_SYSTEM:
        return "system error";
    case O2D_ERR_CONFIG:
        return "configuration error";
    case O2D_ERR_UNAUTHENTICATED:
        return "unauthenticated";
    case O2D_ERR_TENANT_BUSY:
        return "tenant holds its share of a queue";
    default:
        return o2d_is_fatal(status) ? "fatal error" : "unknown error";
    }
}
