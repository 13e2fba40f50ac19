/*
 * redact_sees_config.c: in translate/redact's position, includes the configuration's header.
 * The redaction processor is pure: collector/config builds its struct redact_config, it never
 * reads the configuration itself. Must fail to build.
 */
#include "config.h"
