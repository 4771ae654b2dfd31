#!/usr/bin/env bash
# System packages the end-to-end tests drive for real: Orthanc with its DICOMweb plugin (the sandbox's DICOM
# data plane), Debian's Chromium (the browser that runs the built OHIF viewer through Playwright) and NSS's
# certutil (to make that Chromium trust the sandbox's CA the normal way).
#
# Idempotent: when every program is already there it changes nothing and runs no apt at all, so calling it
# before each test run costs milliseconds. Needs root (CI runs as root) or sudo.
set -euo pipefail

packages=(orthanc orthanc-dicomweb chromium libnss3-tools)
missing=()
command -v Orthanc >/dev/null 2>&1 || missing+=(orthanc)
[ -e /usr/share/orthanc/plugins/libOrthancDicomWeb.so ] || missing+=(orthanc-dicomweb)
command -v chromium >/dev/null 2>&1 || missing+=(chromium)
command -v certutil >/dev/null 2>&1 || missing+=(libnss3-tools)

if [ ${#missing[@]} -eq 0 ]; then
    exit 0
fi

sudo=()
if [ "$(id -u)" -ne 0 ]; then
    command -v sudo >/dev/null 2>&1 || { echo "install-system-deps: need root to install ${missing[*]}" >&2; exit 1; }
    sudo=(sudo)
fi

echo "install-system-deps: installing ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
# The package lists may be stale or absent on a fresh machine; refresh them once.
"${sudo[@]}" apt-get -o DPkg::Lock::Timeout=300 update -qq
# --no-install-recommends keeps Chromium's footprint down (no fonts beyond the basics, no extra plugins);
# the Debian orthanc package would start a system service, which a container has no init for: we never use it.
"${sudo[@]}" apt-get -o DPkg::Lock::Timeout=300 install -y -qq --no-install-recommends "${packages[@]}" >/dev/null

# The package's own service (if an init system started it) would hold port 8042 and /var/lib/orthanc;
# the tests run their own Orthanc processes with their own ports and storage, so stop it where we can.
if command -v systemctl >/dev/null 2>&1 && systemctl is-active --quiet orthanc 2>/dev/null; then
    "${sudo[@]}" systemctl stop orthanc || true
    "${sudo[@]}" systemctl disable orthanc || true
fi

command -v Orthanc >/dev/null && command -v chromium >/dev/null && command -v certutil >/dev/null \
    && [ -e /usr/share/orthanc/plugins/libOrthancDicomWeb.so ] \
    || { echo "install-system-deps: installation incomplete" >&2; exit 1; }
