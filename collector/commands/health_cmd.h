/*
 * health_cmd.h: the `otel2dd health [--timeout T] [URL]` subcommand (health_cmd.c), the
 * container health check that needs no curl or shell in the image.
 */
#ifndef O2D_HEALTH_CMD_H
#define O2D_HEALTH_CMD_H

/* argv[0] is "health". Returns the process exit code: 0 when URL answered 200, else 1 with
 * one line on stderr saying why (bad arguments included: Docker reserves exit code 2). */
int health_main(int argc, char **argv);

#endif
