#!/bin/sh
# Installs, from Debian 12's packages, what otel2dd needs and is missing.
#   configs/install-deps.sh         to build and run
#   configs/install-deps.sh test    to build and run the whole test suite as well
# Runs apt-get as root, through sudo when not root. Installs nothing that is already there.
set -eu

BUILD="cmake make gcc pkg-config libprotobuf-c-dev protobuf-c-compiler libnghttp2-dev
libmicrohttpd-dev libgnutls28-dev libcurl4-openssl-dev libssl-dev libmsgpack-dev libcmocka-dev zlib1g-dev
libzstd-dev libpcre2-dev libyaml-dev libjansson-dev ca-certificates"
TEST="clang libclang-rt-14-dev nghttp2-client curl python3 python3-grpcio python3-protobuf
protobuf-compiler python3-yaml python3-h2 python3-msgpack python3-prometheus-client
python3-zstandard
podman runc debootstrap docker-compose python3-botocore haproxy chromium"

want="$BUILD"
[ "${1:-}" = test ] && want="$BUILD $TEST"
# Node.js and npm run the OpenTelemetry JS SDK in the tests; keep a newer one if present.
if [ "${1:-}" = test ] && ! command -v npm >/dev/null 2>&1; then
    want="$want nodejs npm"
fi

missing=""
for p in $want; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" ||
        missing="$missing $p"
done
[ -z "$missing" ] && exit 0

SUDO=""
[ "$(id -u)" -ne 0 ] && SUDO="sudo"
echo "installing:$missing" >&2
$SUDO env DEBIAN_FRONTEND=noninteractive apt-get update -qq
# shellcheck disable=SC2086
$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $missing
