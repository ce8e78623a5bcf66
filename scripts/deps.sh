#!/usr/bin/env bash
# Installs the Debian 12 packages fraudwatch needs to build, test and demo.
# Idempotent and quiet when everything is already there.  Needs root (or sudo).
#
#   scripts/deps.sh            build + test dependencies
#   scripts/deps.sh --kafka    plus what the local Kafka broker needs (JDK, Maven, kcat)
set -euo pipefail

pkgs=(build-essential meson ninja-build pkg-config python3
      libpcre2-dev libcjson-dev librdkafka-dev libhiredis-dev libcmocka-dev
      libmicrohttpd-dev redis-server kcat curl valgrind clang libclang-rt-14-dev
      gnuplot-nox
      # packaging and its tests (scripts/package.sh, tests/test_man.py,
      # test_systemd.py, integration/test_package.py, test_monitoring.py)
      dpkg-dev fakeroot lintian man-db groff-base systemd prometheus openssl
      # the console (libcrypt: yescrypt; libcurl: webhooks) and its browser test
      libcrypt-dev chromium chromium-driver python3-selenium fonts-wqy-microhei
      libcurl4-openssl-dev)
if [[ "${1:-}" == "--kafka" ]]; then
    pkgs+=(default-jdk-headless maven)
fi

missing=()
for p in "${pkgs[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[[ ${#missing[@]} -eq 0 ]] && exit 0

sudo=""
[[ $(id -u) -ne 0 ]] && sudo="sudo"
echo "deps: installing ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
$sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
