/*
 * allowed.c: the control case, in translate/base's position with a header of its own
 * folder. It must build, so the other cases fail because of their include alone.
 */
#include "o2d_buf.h"

size_t layout_allowed(const struct o2d_buf *b);
size_t layout_allowed(const struct o2d_buf *b)
{
    return b->len;
}
