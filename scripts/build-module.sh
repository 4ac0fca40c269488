#!/usr/bin/env bash
# build-module.sh: builds ngx_http_fhir_bulk_module.so with nginx's own build system, from a
# copy of Debian's /usr/share/nginx/src (configure writes into its source tree, which is
# root-owned and shared), with the flags of Debian's nginx binary (conf_flags, --with-compat),
# so the module loads into the stock /usr/sbin/nginx. Reconfigures only when needed.
set -euo pipefail

REPO=$(cd "$(dirname "$0")/.." && pwd)
BUILD=${BUILD:-$REPO/build}
export FHIR_BULK_CORE_LIB=$BUILD/libfhirbulk_core.a
SRC=$BUILD/nginx-src
OBJS=$BUILD/nginx

[ -f "$BUILD/libfhirbulk_core.a" ] || { echo "build-module: build the core first (make core)" >&2; exit 1; }
[ -f /usr/share/nginx/src/conf_flags ] || { echo "build-module: nginx-dev is not installed (make deps)" >&2; exit 1; }

stamp=$OBJS/.configured
if [ ! -f "$OBJS/Makefile" ] || [ "$REPO/config" -nt "$stamp" ] || [ /usr/share/nginx/src/conf_flags -nt "$stamp" ]; then
    rm -rf "$SRC" "$OBJS"
    cp -r /usr/share/nginx/src "$SRC"
    cd "$SRC"
    # shellcheck disable=SC1091
    . ./conf_flags
    ./configure \
        --with-cc-opt="$(dpkg-buildflags --get CFLAGS) -fPIC $(dpkg-buildflags --get CPPFLAGS)" \
        --with-ld-opt="$(dpkg-buildflags --get LDFLAGS) -fPIC" \
        "${NGX_CONF_FLAGS[@]}" \
        --add-dynamic-module="$REPO" \
        --builddir="$OBJS" >"$BUILD/nginx-configure.log" 2>&1 ||
        { tail -30 "$BUILD/nginx-configure.log" >&2; exit 1; }
    touch "$stamp"
fi

cd "$SRC"
make -s -f "$OBJS/Makefile" modules >"$BUILD/nginx-make.log" 2>&1 ||
    { cat "$BUILD/nginx-make.log" >&2; exit 1; }
grep -i "warning" "$BUILD/nginx-make.log" >&2 || true

# The dh_nginx smoke test: the stock binary loads the module.
conf=$(mktemp)
trap 'rm -f "$conf"' EXIT
printf 'load_module %s;\nevents {}\n' "$OBJS/ngx_http_fhir_bulk_module.so" >"$conf"
/usr/sbin/nginx -g 'error_log /dev/null; pid /dev/null;' -t -q -c "$conf" ||
    { echo "build-module: the stock nginx cannot load the module" >&2; exit 1; }
