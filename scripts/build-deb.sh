#!/usr/bin/env bash
# build-deb.sh: builds the Debian packages (libnginx-mod-http-fhir-bulk, fhir-bulk) with
# dpkg-buildpackage and debhelper (debian/), for the nginx installed on this machine, into
# build/deb/ (DEB_DIR), then runs lintian on them when it is installed.
#
# debian/rules builds with the project's Makefile. By default in build/ (`make deb` builds
# it first): the packaged binaries are the ones the tests ran. DEB_BUILD=<dir> builds in a
# tree of its own instead, configured with dpkg-buildflags (hardening: _FORTIFY_SOURCE,
# relro, bindnow) and without tests or benchmarks, kept between runs (a second run rebuilds
# only what changed). Needs no network. Binary packages only (no source package, unsigned).
set -euo pipefail

REPO=$(cd "$(dirname "$0")/.." && pwd)
DEB_DIR=${DEB_DIR:-$REPO/build/deb}
if [ -n "${DEB_BUILD:-}" ]; then
    cmake_args="-DCMAKE_BUILD_TYPE=RelWithDebInfo -DFHIRBULK_BUILD_TESTS=OFF -DFHIRBULK_BUILD_BENCHMARKS=OFF"
else
    DEB_BUILD=$REPO/build
    cmake_args=
fi
cd "$REPO"

command -v dpkg-buildpackage >/dev/null || { echo "build-deb: dpkg-buildpackage missing (make deps)" >&2; exit 1; }

# One version: core/util/version.h; debian/changelog must name the same upstream version.
version=$(sed -n 's/^#define FHIRBULK_VERSION "\(.*\)"$/\1/p' core/util/version.h)
deb_version=$(dpkg-parsechangelog -S Version)
[ "${deb_version%%-*}" = "$version" ] ||
    { echo "build-deb: debian/changelog says $deb_version, core/util/version.h $version" >&2; exit 1; }

mkdir -p "$DEB_DIR"
rm -f "$DEB_DIR"/*.deb "$DEB_DIR"/*.ddeb "$DEB_DIR"/*.changes "$DEB_DIR"/*.buildinfo
arch=$(dpkg --print-architecture)
log=$DEB_DIR/dpkg-buildpackage.log
start=$(date +%s)
# -b: binary packages only; .changes and .buildinfo go to DEB_DIR instead of the parent
# directory (dh_builddeb --destdir in debian/rules for the packages themselves).
if ! FHIRBULK_DEB_BUILD="$DEB_BUILD" FHIRBULK_DEB_DIR="$DEB_DIR" \
    FHIRBULK_DEB_CMAKE_ARGS="$cmake_args" \
    dpkg-buildpackage -b -us -uc \
        --buildinfo-file="$DEB_DIR/fhir-bulk_${deb_version}_$arch.buildinfo" \
        --changes-file="$DEB_DIR/fhir-bulk_${deb_version}_$arch.changes" \
        --buildinfo-option=-u"$DEB_DIR" --changes-option=-u"$DEB_DIR" >"$log" 2>&1; then
    tail -40 "$log" >&2
    echo "build-deb: dpkg-buildpackage failed (full log: $log)" >&2
    exit 1
fi
# dh_clean after the build: nothing of the packaging stays in debian/.
fakeroot debian/rules clean >/dev/null 2>&1 || true
echo "build-deb: $(cd "$DEB_DIR" && ls ./*.deb | tr '\n' ' ')in $DEB_DIR ($(($(date +%s) - start)) s)"

if command -v lintian >/dev/null; then
    # Errors and warnings fail; overrides are justified in debian/*.lintian-overrides.
    lintian --fail-on error,warning \
        "$DEB_DIR/fhir-bulk_${deb_version}_$arch.changes" ||
        { echo "build-deb: lintian found problems (above)" >&2; exit 1; }
    echo "build-deb: lintian clean"
else
    echo "build-deb: lintian not installed, packages not checked (make deps)"
fi
