#!/bin/sh
# The whole test suite, from a clean clone on a fresh Debian 12 machine:
# installs what is missing, builds, runs unit and end-to-end tests, then builds again with
# AddressSanitizer + UndefinedBehaviorSanitizer and runs everything once more, and finally
# runs every libFuzzer target (clang, with both sanitizers) for a short fixed time each.
set -eu
cd "$(dirname "$0")/.."
JOBS=$(nproc 2>/dev/null || echo 2)

./configs/install-deps.sh test
if [ -f tests/e2e/js/package-lock.json ]; then
    (cd tests/e2e/js && npm ci --no-audit --no-fund --loglevel=error)
fi

cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo
cmake --build build -j"$JOBS"
ctest --test-dir build --no-tests=error --output-on-failure -j"$JOBS"

cmake -S . -B build-asan -DCMAKE_BUILD_TYPE=Debug -DO2D_SANITIZE=ON
cmake --build build-asan -j"$JOBS"
ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1 \
    ctest --test-dir build-asan --no-tests=error --output-on-failure -j"$JOBS"
# A short fuzz run of every target, each on a copy of its seed corpus (libFuzzer adds what it
# finds to the corpus directory it is given; the repository's stays as it is). A crash, a leak
# or a sanitizer report fails the run and leaves its input under build-fuzz/crashes/.
FUZZ_SECONDS=${FUZZ_SECONDS:-20}
cmake -S . -B build-fuzz -DCMAKE_C_COMPILER=clang -DCMAKE_BUILD_TYPE=RelWithDebInfo \
    -DO2D_FUZZ=ON -DO2D_SANITIZE=ON
targets=""
for f in tests/fuzz/fuzz_*.c; do
    targets="$targets $(basename "$f" .c)"
done
# shellcheck disable=SC2086
cmake --build build-fuzz -j"$JOBS" --target $targets
mkdir -p build-fuzz/crashes
for t in $targets; do
    corpus=$(mktemp -d)
    cp -R "tests/fuzz/corpus/${t#fuzz_}/." "$corpus/"
    if ! ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1 \
        "build-fuzz/fuzz/$t" -max_total_time="$FUZZ_SECONDS" -timeout=10 -rss_limit_mb=2048 \
        -print_final_stats=1 -artifact_prefix="build-fuzz/crashes/$t-" "$corpus" \
        >"build-fuzz/$t.log" 2>&1; then
        tail -n 60 "build-fuzz/$t.log"
        rm -rf "$corpus"
        echo "$t: the fuzzer found a crash (input in build-fuzz/crashes/)" >&2
        exit 1
    fi
    rm -rf "$corpus"
    echo "$t: $(grep -m1 'stat::number_of_executed_units' "build-fuzz/$t.log" | tr -s ' ') in ${FUZZ_SECONDS}s"
done
echo "all tests passed"
