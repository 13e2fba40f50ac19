/*
 * receivers_see_pipeline.c: a file in collector/receivers' position that includes the
 * pipeline's header. It must not build: ingest hands requests to the pipeline through a
 * callback, and pipeline.h sits above the receivers (tests/layout/CMakeLists.txt).
 */
#include "pipeline.h"

int layout_receivers_see_pipeline(void);
int layout_receivers_see_pipeline(void)
{
    return 0;
}
