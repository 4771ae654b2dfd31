#!/usr/bin/env bash
# System packages the tests drive for real: Orthanc with its DICOMweb and python plugins and python3-jwt (the
# sandbox's DICOM data plane, and the self-hosted target with its share filter), nginx (the self-hosted
# target's proxy), Debian's Chromium (the browser that runs the built OHIF viewer through Playwright), NSS's
# certutil (to make that Chromium trust a test CA the normal way), wrk (bench/orthanc_share_bench.py) and
# systemd-analyze (the rendered units are checked with it; no systemd needs to run).
#
# Idempotent: when every program is already there it changes nothing and runs no apt at all, so calling it
# before each test run costs milliseconds. Needs root (CI runs as root) or sudo.
#
# The orthanc and nginx packages come with system services (port 8042, and nginx's default site on port 80).
# provision never uses them: the tests run their own processes on their own ports. No service is started
# during the installation (policy-rc.d), and any that runs afterwards is stopped and disabled.
set -euo pipefail

packages=(orthanc orthanc-dicomweb orthanc-python python3-jwt nginx chromium libnss3-tools wrk systemd)
missing=()
command -v Orthanc >/dev/null 2>&1 || missing+=(orthanc)
[ -e /usr/share/orthanc/plugins/libOrthancDicomWeb.so ] || missing+=(orthanc-dicomweb)
[ -e /usr/share/orthanc/plugins/libOrthancPython.so ] || missing+=(orthanc-python)
/usr/bin/python3 -c 'import jwt' >/dev/null 2>&1 || missing+=(python3-jwt)
command -v nginx >/dev/null 2>&1 || [ -x /usr/sbin/nginx ] || missing+=(nginx)
command -v chromium >/dev/null 2>&1 || missing+=(chromium)
command -v certutil >/dev/null 2>&1 || missing+=(libnss3-tools)
command -v wrk >/dev/null 2>&1 || missing+=(wrk)
command -v systemd-analyze >/dev/null 2>&1 || missing+=(systemd)

if [ ${#missing[@]} -eq 0 ]; then
    exit 0
fi

sudo=()
if [ "$(id -u)" -ne 0 ]; then
    command -v sudo >/dev/null 2>&1 || { echo "install-system-deps: need root to install ${missing[*]}" >&2; exit 1; }
    sudo=(sudo)
fi

stop_services() {
    if command -v systemctl >/dev/null 2>&1 && [ -d /run/systemd/system ]; then
        for service in orthanc nginx; do
            if systemctl is-active --quiet "$service" 2>/dev/null || systemctl is-enabled --quiet "$service" 2>/dev/null; then
                "${sudo[@]}" systemctl disable --now "$service" >/dev/null 2>&1 || true
            fi
        done
    elif command -v service >/dev/null 2>&1; then
        for service in orthanc nginx; do
            "${sudo[@]}" service "$service" stop >/dev/null 2>&1 || true
        done
    fi
}

echo "install-system-deps: installing ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
apt=(-o DPkg::Lock::Timeout=300)
# Keep the packages' services from starting while they are installed (the usual container convention),
# unless the machine already has its own policy.
policy=/usr/sbin/policy-rc.d
own_policy=false
if [ ! -e "$policy" ]; then
    printf '#!/bin/sh\nexit 101\n' | "${sudo[@]}" tee "$policy" >/dev/null
    "${sudo[@]}" chmod 755 "$policy"
    own_policy=true
fi
cleanup() { if [ "$own_policy" = true ]; then "${sudo[@]}" rm -f "$policy"; fi; }
trap cleanup EXIT

# The package lists may be stale or absent on a fresh machine; refresh them once.
"${sudo[@]}" apt-get "${apt[@]}" update -qq
# --no-install-recommends keeps Chromium's footprint down (no fonts beyond the basics, no extra plugins)
"${sudo[@]}" apt-get "${apt[@]}" install -y -qq --no-install-recommends "${packages[@]}" >/dev/null
stop_services

command -v Orthanc >/dev/null && command -v chromium >/dev/null && command -v certutil >/dev/null \
    && [ -x /usr/sbin/nginx ] && command -v wrk >/dev/null && command -v systemd-analyze >/dev/null \
    && [ -e /usr/share/orthanc/plugins/libOrthancDicomWeb.so ] \
    && [ -e /usr/share/orthanc/plugins/libOrthancPython.so ] \
    && /usr/bin/python3 -c 'import jwt' \
    || { echo "install-system-deps: installation incomplete" >&2; exit 1; }
