#!/usr/bin/env bash
# Builds the Debian package fraudwatch_<version>_amd64.deb with dpkg-deb
# (no debhelper: every file and maintainer script is spelled out here and in
# packaging/debian/, which keeps the package reviewable in one place).
#
#   scripts/package.sh                       release build in build-pkg/, .deb in dist/
#   scripts/package.sh --build-dir DIR       package an existing meson build (the tests)
#   scripts/package.sh --out DIR             where the .deb goes (default dist/)
#   scripts/package.sh --lintian             then run lintian on it (fails on E:/W:)
#
# The version is meson.build's project version.  What goes where:
#   /usr/bin/fraudwatch                      the program (stripped)
#   /etc/fraudwatch/*.conf                   config/*.conf adapted to the installed
#                                            paths (conffiles, root:fraudwatch 0640)
#   /etc/fraudwatch/rules/                   the rules the daemon runs: on first
#                                            install, links to the shipped ones
#   /usr/share/fraudwatch/rules/             the shipped rules (rules/)
#   /usr/share/fraudwatch/web/               the console's page (web/)
#   /usr/share/fraudwatch/{grafana,prometheus}/  the monitoring pack (contrib/)
#   /lib/systemd/system/                     contrib/systemd/*.service
#   /usr/share/man/man{1,5}/                 the generated man pages
#   /usr/share/doc/fraudwatch/               copyright, changelog, docs/*.md
#   /var/lib/fraudwatch                      state (created by postinst, owned by
#                                            the fraudwatch system user)
# Maintainer scripts: packaging/debian/{postinst,prerm,postrm}.
set -euo pipefail
cd "$(dirname "$0")/.."
src=$PWD

build=""
out=dist
lint=0
while (($#)); do
    case $1 in
        --build-dir) build=$2; shift ;;
        --out) out=$2; shift ;;
        --lintian) lint=1 ;;
        -h|--help) sed -n '2,25p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) echo "package.sh: unknown argument '$1' (see --help)" >&2; exit 2 ;;
    esac
    shift
done

for tool in dpkg-deb dpkg-shlibdeps fakeroot gzip strip; do
    command -v "$tool" >/dev/null || {
        echo "package.sh: $tool not found (scripts/deps.sh installs it)" >&2; exit 1; }
done

if [[ -z $build ]]; then
    build=build-pkg
    # Debian's hardening flags (fortify, stack protector, relro, bindnow).
    export DEB_BUILD_MAINT_OPTIONS=hardening=+all
    wipe=()
    [[ -f $build/build.ninja ]] && wipe=(--wipe)
    CFLAGS=$(dpkg-buildflags --get CFLAGS) CPPFLAGS=$(dpkg-buildflags --get CPPFLAGS) \
    LDFLAGS=$(dpkg-buildflags --get LDFLAGS) \
        meson setup "$build" "${wipe[@]}" --buildtype=release -Dtests=false -Ddaemon=enabled \
            --prefix=/usr >/dev/null
    ninja -C "$build" >/dev/null
fi
for f in "$build/fraudwatch" "$build/man/fraudwatch.1" "$build/man/fraudwatch.conf.5" \
         "$build/man/fraudwatch-rules.5"; do
    [[ -f $f ]] || { echo "package.sh: $f missing: build $build first (ninja -C $build)" >&2; exit 1; }
done

version=$(meson introspect --projectinfo "$build" |
          python3 -c 'import json,sys; print(json.load(sys.stdin)["version"])')
arch=$(dpkg --print-architecture)
# Reproducible: file times and the man pages' dates are the last commit's.
export SOURCE_DATE_EPOCH=${SOURCE_DATE_EPOCH:-$(git log -1 --format=%ct 2>/dev/null || date +%s)}

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
root=$work/root
install -d "$root/DEBIAN" "$root/usr/bin" "$root/etc/fraudwatch/rules" \
    "$root/usr/share/fraudwatch/rules" "$root/lib/systemd/system" \
    "$root/usr/share/man/man1" "$root/usr/share/man/man5" "$root/usr/share/doc/fraudwatch"

# ---- the program --------------------------------------------------------
install -m 0755 "$build/fraudwatch" "$root/usr/bin/fraudwatch"
strip --strip-unneeded --remove-section=.comment --remove-section=.note "$root/usr/bin/fraudwatch"

# ---- configuration: config/*.conf with the installed paths --------------
# Each replacement must match (else config/ changed and this script must
# follow): a silent miss would ship a daemon writing state into "/state".
adapt() {   # file from to
    python3 - "$1" "$2" "$3" <<'PY' || exit 1
import sys
p, a, b = sys.argv[1:]
s = open(p, encoding="utf-8").read()
if a not in s:
    sys.exit(f"package.sh: {p}: expected {a!r} to adapt (config/ changed: follow it here)")
open(p, "w", encoding="utf-8").write(s.replace(a, b))
PY
}
conffiles=()
for c in config/*.conf; do
    name=$(basename "$c")
    dst=$root/etc/fraudwatch/$name
    # 0644 as shipped (it holds no secret); postinst makes it root:fraudwatch
    # 0640, since a site's copy may name passwords.
    install -m 0644 "$c" "$dst"
    # Paths in comments and examples: the installed file, not the source tree.
    python3 - "$dst" <<'PY'
import re, sys
p = sys.argv[1]
s = open(p, encoding="utf-8").read()
s = re.sub(r"(?<![\w/])config/([\w.-]+\.conf)", r"/etc/fraudwatch/\1", s)
open(p, "w", encoding="utf-8").write(s)
PY
    if [[ $name == fraudwatch.conf ]]; then
        adapt "$dst" "rules.source = dir:rules" "rules.source = dir:/etc/fraudwatch/rules"
        adapt "$dst" "state.dir = state" "state.dir = /var/lib/fraudwatch"
        adapt "$dst" "Relative paths are relative to the working directory: run from the
# repository root." "Relative paths are relative to the working directory, /var/lib/fraudwatch
# under systemd (fraudwatch.service).  Installed by the fraudwatch package."
    fi
    if [[ $name == console.conf ]]; then
        adapt "$dst" "console.web_dir = web" "console.web_dir = /usr/share/fraudwatch/web"
    fi
    conffiles+=("/etc/fraudwatch/$name")
done
printf '%s\n' "${conffiles[@]}" > "$root/DEBIAN/conffiles"

# ---- rules, units, monitoring pack ---------------------------------------
install -m 0644 rules/*.json rules/*.list "$root/usr/share/fraudwatch/rules/"
install -D -m 0644 -t "$root/usr/share/fraudwatch/web" web/*   # the console's page
install -m 0644 contrib/systemd/*.service "$root/lib/systemd/system/"
install -D -m 0644 contrib/grafana/fraudwatch.json "$root/usr/share/fraudwatch/grafana/fraudwatch.json"
install -D -m 0644 contrib/prometheus/alerts.yml "$root/usr/share/fraudwatch/prometheus/alerts.yml"

# ---- man pages and documentation -----------------------------------------
gzip -9n -c "$build/man/fraudwatch.1" > "$root/usr/share/man/man1/fraudwatch.1.gz"
for p in fraudwatch.conf.5 fraudwatch-rules.5; do
    gzip -9n -c "$build/man/$p" > "$root/usr/share/man/man5/$p.gz"
done
doc=$root/usr/share/doc/fraudwatch
sed "s/@YEAR@/$(date -u -d "@$SOURCE_DATE_EPOCH" +%Y)/" packaging/debian/copyright > "$doc/copyright"
chmod 0644 "$doc/copyright"
# A native package: its changelog is the Debian-format one; the project's
# own CHANGELOG.md goes along as NEWS for people.
{
    printf 'fraudwatch (%s) unstable; urgency=medium\n\n' "$version"
    printf '  * Release %s; see /usr/share/doc/fraudwatch/NEWS.md.gz for what changed.\n\n' "$version"
    printf ' -- fraudwatch maintainers <fraudwatch@example.org>  %s\n' \
        "$(LC_ALL=C date -u -R -d "@$SOURCE_DATE_EPOCH")"
} | gzip -9n > "$doc/changelog.gz"
gzip -9n -c CHANGELOG.md > "$doc/NEWS.md.gz"
for d in docs/*.md; do
    gzip -9n -c "$d" > "$doc/$(basename "$d").gz"
done
if [[ -d docs/zh-CN ]]; then
    install -d "$doc/zh-CN"
    for d in docs/zh-CN/*.md; do gzip -9n -c "$d" > "$doc/zh-CN/$(basename "$d").gz"; done
fi

# ---- control ----------------------------------------------------------------
for s in postinst prerm postrm; do
    install -m 0755 "packaging/debian/$s" "$root/DEBIAN/$s"
done
install -d "$root/usr/share/lintian/overrides"
install -m 0644 packaging/debian/lintian-overrides "$root/usr/share/lintian/overrides/fraudwatch"

# Library dependencies, as dpkg-shlibdeps computes them from the binary.
mkdir -p "$work/shl/debian"
cp packaging/debian/control.in "$work/shl/debian/control"
shlibs=$(cd "$work/shl" && dpkg-shlibdeps -O "$root/usr/bin/fraudwatch" 2>/dev/null |
         sed -n 's/^shlibs:Depends=//p')
[[ -n $shlibs ]] || { echo "package.sh: dpkg-shlibdeps found no dependencies" >&2; exit 1; }
size=$(du -sk --exclude=DEBIAN "$root" | cut -f1)
sed -e "s/@VERSION@/$version/" -e "s/@ARCH@/$arch/" -e "s/@SIZE@/$size/" \
    -e "s/@SHLIBS@/$shlibs/" packaging/debian/control.in > "$root/DEBIAN/control"
(cd "$root" && find . -path ./DEBIAN -prune -o -type f -printf '%P\0' | sort -z |
     xargs -0 md5sum) > "$root/DEBIAN/md5sums"
chmod 0644 "$root/DEBIAN/control" "$root/DEBIAN/conffiles" "$root/DEBIAN/md5sums"

find "$root" -exec touch -h -d "@$SOURCE_DATE_EPOCH" {} +
mkdir -p "$out"
deb=$out/fraudwatch_${version}_${arch}.deb
fakeroot -- dpkg-deb --root-owner-group -Zxz --build "$root" "$deb" >/dev/null
echo "$deb"

if ((lint)); then
    command -v lintian >/dev/null || { echo "package.sh: lintian not found" >&2; exit 1; }
    # Errors and warnings fail; info and pedantic tags are printed only.
    lintian --info --display-info "$deb" >&2 || true
    if lintian --fail-on error,warning "$deb" >/dev/null; then
        echo "lintian: no errors or warnings" >&2
    else
        echo "package.sh: lintian reports errors or warnings (above)" >&2
        exit 1
    fi
fi
