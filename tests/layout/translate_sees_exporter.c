/*
 * translate_sees_exporter.c: a file in translate's position that includes an exporter
 * header. It must not build: exporters sit above translate (tests/layout/CMakeLists.txt).
 */
#include "exporter.h"

int layout_translate_sees_exporter(void);
int layout_translate_sees_exporter(void)
{
    return 0;
}
