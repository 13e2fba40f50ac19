/*
 * delivery_sees_destination.c: a file in exporters/delivery's position that includes a
 * destination's header. It must not build: the delivery layer serves every destination and
 * sits below them (tests/layout/CMakeLists.txt).
 */
#include "datadog.h"

int layout_delivery_sees_destination(void);
int layout_delivery_sees_destination(void)
{
    return 0;
}
