#!/bin/sh
# run.sh: the otel2dd receiver benchmark. Builds nothing: pass the binary (default
# build/otel2dd). Generates the request bodies with the OpenTelemetry JS SDK when missing,
# then runs bench.py (loadgen or h2load against a fresh otel2dd per scenario). See README.md.
#
#   tests/bench/run.sh [path/to/otel2dd] [--extra] [--dd] [--duration S] [--scenario NAME] ...
set -eu
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
BODIES=${BENCH_BODIES:-$HERE/out/bodies}

if [ ! -s "$BODIES/t100.grpc" ] || [ ! -s "$BODIES/m280.rounds" ] ||
   [ ! -s "$BODIES/l100.grpc" ] || [ ! -s "$BODIES/bodies.json" ] ||
   [ ! -s "$BODIES/apm.bodies" ] || [ ! -s "$BODIES/llm.bodies" ] ||
   [ ! -s "$BODIES/apm1000.bodies" ] ||
   [ "$HERE/gen_bodies.js" -nt "$BODIES/bodies.json" ]; then
    if [ ! -d "$ROOT/tests/e2e/js/node_modules" ]; then
        echo "run.sh: installing the JS SDK (npm ci in tests/e2e/js)" >&2
        (cd "$ROOT/tests/e2e/js" && npm ci --no-audit --no-fund >&2)
    fi
    node "$HERE/gen_bodies.js" "$BODIES" >&2
fi
exec /usr/bin/python3 "$HERE/bench.py" --bodies "$BODIES" "$@"
