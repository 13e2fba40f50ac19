#!/bin/sh
# The whole test suite, from a clean clone on a fresh Debian 12 machine:
# installs what is missing, builds, runs unit and end-to-end tests, then builds again with
# AddressSanitizer + UndefinedBehaviorSanitizer and runs everything once more.
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
echo "all tests passed"
