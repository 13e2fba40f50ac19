/*
 * translate_cmd.h: the `otel2dd translate` subcommand (translate_cmd.c).
 */
#ifndef O2D_TRANSLATE_CMD_H
#define O2D_TRANSLATE_CMD_H

/* argv[0] is "translate". Returns the process exit code. */
int translate_main(int argc, char **argv);

#endif
