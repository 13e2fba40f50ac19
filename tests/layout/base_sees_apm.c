/*
 * base_sees_apm.c: a file in translate/base's position that includes an APM header. It must
 * not build: translate/base is below every other folder (tests/layout/CMakeLists.txt).
 */
#include "apm.h"

int layout_base_sees_apm(void);
int layout_base_sees_apm(void)
{
    return 0;
}
