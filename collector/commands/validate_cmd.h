/*
 * validate_cmd.h: the `otel2dd validate` subcommand (validate_cmd.c).
 */
#ifndef O2D_VALIDATE_CMD_H
#define O2D_VALIDATE_CMD_H

/* argv[0] is "validate". Returns the process exit code: 0 valid, 1 invalid, 2 usage. */
int validate_main(int argc, char **argv);

#endif
