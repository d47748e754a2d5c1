#!/usr/bin/env bash
# tests/python_standin.sh -- builds a STAND-IN for the official `python:3.10-slim` image with buildah.
#
# This is NOT the official Docker Hub image, and it never takes that name: it is
# `localhost/python-standin:3.10-slim`, labelled io.standin=true and io.standin.of=<the official
# name>, and builds use it with `--build-arg BASE_IMAGE=localhost/python-standin:3.10-slim`
# (`make images` and the image tests' fixtures in tests/fixtures_images.py). It exists because no
# registry may be reachable (CI sandboxes, this project's machines): it behaves like the official
# image (Debian bookworm minbase + CPython 3.10 in /usr/local + pip/setuptools/wheel, PATH and LANG
# as the official image, CMD python3), made from what the machine has:
#   * Debian bookworm via `debootstrap --variant=minbase` from the mirror apt uses here;
#   * this machine's CPython 3.10, copied to /usr/local with its prefix rewritten.
# The official image's recipe (docker-library/python, 3.10/slim-bookworm/Dockerfile) builds CPython
# from source with --enable-shared into /usr/local on debian:bookworm-slim and removes the tests,
# static library and Tk; debian:bookworm-slim is debuerreotype's minbase with the apt/dpkg "slim"
# settings copied below.
# Differences: the CPython build is the host's (pyenv: --enable-shared with an rpath), there is no
# dbm.gnu/dbm.ndbm/_tkinter, no GPG_KEY/PYTHON_SHA256 env, and packages are bookworm's point release.
#
# Idempotent: exits at once when the image exists (FORCE=1 rebuilds it). Caches, under
# ${PY_STANDIN_CACHE:-~/.cache/python-standin} (outside any checkout, shared by every run):
#   debs-<key>.tgz       debootstrap --make-tarball output (the .debs; no network needed to re-bootstrap)
#   image-<key>.oci.tar  the finished stand-in as an oci-archive (reloaded when the image is missing)
# <key> hashes the recipe version, the suite, the mirror, the package list and the Python build.
#
# Environment:
#   FORCE=1                 rebuild the image even if it exists (re-bootstraps from the cached .debs)
#   PY_STANDIN_CACHE=DIR    cache dir (default ~/.cache/python-standin)
#   STANDIN_PYTHON=EXE      the CPython 3.10 to copy (default: python3.10 on PATH if it runs, else
#                           $PYENV_ROOT/versions/3.10*/bin/python3.10)
#   STANDIN_MIRROR=URL      Debian mirror (default: the one in /etc/apt/sources.list[.d])
#   STANDIN_UPGRADE=1       also apply bookworm-updates/bookworm-security inside the stand-in (network)
# Needs root (debootstrap, chroot, rootful buildah storage), buildah and debootstrap
# (`apt-get install buildah debootstrap`; `make test` installs them).
set -euo pipefail

RECIPE_VERSION=4          # bump when the recipe below changes: invalidates the cache key
SUITE=bookworm
NAME=localhost/python-standin:3.10-slim
OFFICIAL=docker.io/library/python:3.10-slim
CACHE=${PY_STANDIN_CACHE:-$HOME/.cache/python-standin}
find_python310() {  # python3.10 on PATH may be a pyenv shim that fails outside a pyenv-managed dir
  local c
  for c in ${STANDIN_PYTHON:-} python3.10 "${PYENV_ROOT:-$HOME/.pyenv}"/versions/3.10*/bin/python3.10 \
           /usr/local/bin/python3.10 /usr/bin/python3.10; do
    [[ -n $c ]] && "$c" -c 'import sys; assert sys.version_info[:2] == (3, 10)' >/dev/null 2>&1 \
      && { printf '%s\n' "$c"; return 0; }
  done
  return 1
}
# Runtime libraries of CPython's extension modules (ldd on python3.10 and lib-dynload/*.so; _tkinter
# is dropped like in the official slim image), plus what the official image has: ca-certificates,
# netbase, tzdata.
PACKAGES=ca-certificates,netbase,tzdata,libssl3,libsqlite3-0,libffi8,libbz2-1.0,liblzma5,zlib1g,libreadline8,libncursesw6,libtinfo6,libuuid1,libexpat1,libcrypt1,libnsl2,libtirpc3,libgdbm6

log() { printf '[standin %(%H:%M:%S)T] %s\n' -1 "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

[[ $(id -u) -eq 0 ]] || die "run as root (debootstrap, chroot and rootful buildah storage)"
command -v buildah >/dev/null || die "buildah missing: apt-get install -y buildah"
command -v debootstrap >/dev/null || die "debootstrap missing: apt-get install -y debootstrap"


image_exists() { buildah inspect --type image "$1" >/dev/null 2>&1; }

if [[ ${FORCE:-0} != 1 ]] && image_exists "$NAME"; then
  log "stand-in $NAME already present (FORCE=1 rebuilds)"
  exit 0
fi

# --- inputs and cache key ------------------------------------------------------------------------
PYEXE=$(find_python310) || die "no CPython 3.10 found (set STANDIN_PYTHON)"
PYPREFIX=$("$PYEXE" -c 'import sys; print(sys.prefix)')
PYVERSION=$("$PYEXE" -c 'import platform; print(platform.python_version())')
[[ $PYVERSION == 3.10.* ]] || die "$PYEXE is $PYVERSION, not 3.10"
[[ -x $PYPREFIX/bin/python3.10 ]] || die "no $PYPREFIX/bin/python3.10"

mirror_from_apt() {
  local f
  # deb822 sources: first URIs of a stanza whose Suites include the bare suite name.
  for f in /etc/apt/sources.list.d/*.sources; do
    [[ -f $f ]] || continue
    awk -v s="$SUITE" 'BEGIN{RS=""} $0 ~ ("Suites:[^\n]*[ \t]" s "([ \t]|\n|$)") {
        if (match($0, /URIs:[ \t]*[^ \t\n]+/)) { u=substr($0,RSTART,RLENGTH); sub(/URIs:[ \t]*/,"",u); print u; exit } }' "$f"
  done
  # one-line sources
  { grep -hsE "^deb[[:space:]]+(\[[^]]*\][[:space:]]+)?[a-z]+://[^[:space:]]+[[:space:]]+$SUITE[[:space:]]" \
    /etc/apt/sources.list /etc/apt/sources.list.d/*.list | awk '{for(i=2;i<=NF;i++) if ($i ~ /:\/\//) {print $i; exit}}' || true; }
}
MIRROR=${STANDIN_MIRROR:-$(mirror_from_apt | head -n1)}
[[ -n $MIRROR ]] || die "no Debian mirror for $SUITE in /etc/apt/sources.list[.d]; set STANDIN_MIRROR"
SECURITY_MIRROR=${MIRROR%/debian}/debian-security

KEY=$(printf '%s\n' "$RECIPE_VERSION" "$SUITE" "$MIRROR" "$PACKAGES" "$PYVERSION" "$PYPREFIX" \
        "$(stat -c %Y "$PYPREFIX/bin/python3.10")" "${STANDIN_UPGRADE:-0}" | sha256sum | cut -c1-12)
DEBS_TGZ=$CACHE/debs-$SUITE-$(printf '%s\n' "$SUITE" "$MIRROR" "$PACKAGES" | sha256sum | cut -c1-12).tgz
IMAGE_ARCHIVE=$CACHE/image-$KEY.oci.tar
mkdir -p "$CACHE"
log "python $PYVERSION from $PYPREFIX; mirror $MIRROR; cache $CACHE (key $KEY)"

tag_standin() {  # $1 = image id
  buildah tag "$1" "$NAME"
  log "stand-in ready: $NAME ($(cut -c1-12 <<<"$1"))"
}

# --- fast path: reload the finished image from the cache ----------------------------------------
if [[ ${FORCE:-0} != 1 && -s $IMAGE_ARCHIVE ]]; then
  log "loading cached $IMAGE_ARCHIVE"
  id=$(buildah pull -q "oci-archive:$IMAGE_ARCHIVE")
  tag_standin "$id"
  exit 0
fi

OLD_ID=$(buildah inspect --type image --format '{{.FromImageID}}' "$NAME" 2>/dev/null || true)

# --- 1. Debian bookworm minbase --------------------------------------------------------------------
WORK=$(mktemp -d "${TMPDIR:-/var/tmp}/standin.XXXXXX")
ROOT=$WORK/rootfs
CTR=
cleanup() {
  local rc=$?
  # debootstrap mounts /proc and /sys in the target and normally unmounts them; make sure.
  for m in "$ROOT/proc" "$ROOT/sys" "$ROOT/dev/pts" "$ROOT/dev"; do
    mountpoint -q "$m" 2>/dev/null && umount -l "$m" || true
  done
  [[ -n $CTR ]] && buildah rm "$CTR" >/dev/null 2>&1 || true
  rm -rf --one-file-system "$WORK"
  exit $rc
}
trap cleanup EXIT

if [[ ! -s $DEBS_TGZ ]]; then
  log "downloading bookworm minbase + runtime libraries (debootstrap --make-tarball)"
  debootstrap --variant=minbase --include="$PACKAGES" --make-tarball="$DEBS_TGZ.part" \
    "$SUITE" "$WORK/mk" "$MIRROR" >"$WORK/make-tarball.log" 2>&1 \
    || { tail -20 "$WORK/make-tarball.log" >&2; die "debootstrap --make-tarball failed"; }
  mv "$DEBS_TGZ.part" "$DEBS_TGZ"
  rm -rf "$WORK/mk"
fi
log "bootstrapping from $DEBS_TGZ"
debootstrap --variant=minbase --include="$PACKAGES" --unpack-tarball="$DEBS_TGZ" \
  "$SUITE" "$ROOT" "$MIRROR" >"$WORK/debootstrap.log" 2>&1 \
  || { tail -30 "$WORK/debootstrap.log" >&2; die "debootstrap failed"; }

# What debuerreotype's "slim" images (the official debian:bookworm-slim) add.
cat >"$ROOT/etc/apt/apt.conf.d/docker-clean" <<'EOF'
DPkg::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
APT::Update::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
Dir::Cache::pkgcache "";
Dir::Cache::srcpkgcache "";
EOF
echo 'Acquire::Languages "none";' >"$ROOT/etc/apt/apt.conf.d/docker-no-languages"
printf 'Acquire::GzipIndexes "true";\nAcquire::CompressionTypes::Order:: "gz";\n' >"$ROOT/etc/apt/apt.conf.d/docker-gzip-indexes"
echo 'APT::AutoRemove::SuggestsImportant "false";' >"$ROOT/etc/apt/apt.conf.d/docker-autoremove-suggests"
cat >"$ROOT/etc/dpkg/dpkg.cfg.d/docker" <<'EOF'
path-exclude /usr/share/doc/*
path-include /usr/share/doc/*/copyright
path-exclude /usr/share/man/*
path-exclude /usr/share/groff/*
path-exclude /usr/share/info/*
path-exclude /usr/share/lintian/*
path-exclude /usr/share/linda/*
path-exclude /usr/share/locale/*
EOF
printf '#!/bin/sh\nexit 101\n' >"$ROOT/usr/sbin/policy-rc.d"; chmod 755 "$ROOT/usr/sbin/policy-rc.d"
rm -f "$ROOT/etc/apt/sources.list"
cat >"$ROOT/etc/apt/sources.list.d/debian.sources" <<EOF
Types: deb
URIs: $MIRROR
Suites: $SUITE $SUITE-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb
URIs: $SECURITY_MIRROR
Suites: $SUITE-security
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
EOF
rm -rf "$ROOT"/usr/share/doc/* "$ROOT"/usr/share/man/* "$ROOT"/usr/share/info/* "$ROOT"/usr/share/locale/*

# --- 2. CPython 3.10 into /usr/local -----------------------------------------------------------------
log "copying CPython $PYVERSION to /usr/local"
# As the official image: no tests, no bytecode, no static libpython, no _tkinter (no Tk in slim).
# site-packages is left empty here: pip/setuptools are reinstalled below so their scripts and
# RECORDs point at /usr/local. The host's *.pth files (e.g. proxy-CA injection) stay out.
tar -C "$PYPREFIX" -cf - \
    --exclude='lib/python3.10/site-packages/*' --exclude='__pycache__' \
    --exclude='lib/python3.10/test' --exclude='lib/python3.10/*/test' --exclude='lib/python3.10/*/tests' \
    --exclude='lib/python3.10/idlelib/idle_test' --exclude='libpython*.a' \
    --exclude='lib/python3.10/lib-dynload/_tkinter*' \
    --exclude='bin/pip*' --exclude='bin/python3.10-gdb.py' \
    bin include lib share | tar -C "$ROOT/usr/local" -xf - --no-same-owner
# pyenv's prefix baked in text files (sysconfig data, python-config, Makefile, .pc, shebangs).
grep -rlIZ -- "$PYPREFIX" "$ROOT/usr/local" | xargs -0 -r sed -i "s#$PYPREFIX#/usr/local#g"
# The binaries' RPATH still names the pyenv prefix (absent in the image): ldconfig's cache finds
# libpython3.10.so.1.0 in /usr/local/lib (listed in /etc/ld.so.conf.d/libc.conf).
for n in python python3; do ln -sfn python3.10 "$ROOT/usr/local/bin/$n"; done
for n in python-config python3-config; do ln -sfn python3.10-config "$ROOT/usr/local/bin/$n"; done
chroot "$ROOT" /sbin/ldconfig

missing=$(chroot "$ROOT" /bin/sh -c 'for f in /usr/local/bin/python3.10 /usr/local/lib/python3.10/lib-dynload/*.so; do ldd "$f" | grep "not found" | sed "s|^|$f: |"; done' || true)
[[ -z $missing ]] || die "libraries missing in the stand-in:"$'\n'"$missing"

# --- 3. pip/setuptools/wheel, Python checks ------------------------------------------------------
log "installing pip from ensurepip's bundled wheel"
chroot "$ROOT" /usr/bin/env -i PATH=/usr/local/bin:/usr/bin:/bin LANG=C.UTF-8 \
  /usr/local/bin/python3.10 -m ensurepip --default-pip >"$WORK/ensurepip.log" 2>&1 \
  || { cat "$WORK/ensurepip.log" >&2; die "ensurepip failed"; }
# The official 3.10 image has setuptools 65.5.1 and wheel too: fetch them through the proxy, with the
# host's CA bundle and DNS copied in for this step only (removed below, never in the image).
cp --remove-destination /etc/resolv.conf "$ROOT/etc/resolv.conf"
install -m 644 /etc/ssl/certs/ca-certificates.crt "$ROOT/tmp/host-ca.crt"
if ! chroot "$ROOT" /usr/bin/env -i PATH=/usr/local/bin:/usr/bin:/bin LANG=C.UTF-8 HOME=/root \
      PIP_CERT=/tmp/host-ca.crt PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_DEFAULT_TIMEOUT=120 \
      /usr/local/bin/python3.10 -m pip install -q --no-cache-dir --no-compile --root-user-action=ignore \
      'setuptools==65.5.1' 'wheel<0.46' >"$WORK/pip.log" 2>&1; then
  cat "$WORK/pip.log" >&2
  log "WARNING: could not fetch setuptools 65.5.1/wheel (offline?); keeping ensurepip's setuptools, no wheel"
fi
if [[ ${STANDIN_UPGRADE:-0} == 1 ]]; then
  log "applying $SUITE-updates and $SUITE-security"
  chroot "$ROOT" /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin DEBIAN_FRONTEND=noninteractive \
    sh -c 'apt-get update -qq && apt-get -y -qq upgrade && rm -rf /var/lib/apt/lists/*' >&2
fi
rm -f "$ROOT/tmp/host-ca.crt"
: >"$ROOT/etc/resolv.conf"     # container runtimes bind-mount their own
chroot "$ROOT" /usr/bin/env -i PATH=/usr/local/bin:/usr/bin:/bin LANG=C.UTF-8 /usr/local/bin/python3.10 -c '
import ssl, sqlite3, ctypes, lzma, bz2, zlib, uuid, readline, sys
assert sys.prefix == "/usr/local", sys.prefix
print("stand-in python", sys.version.split()[0], ssl.OPENSSL_VERSION, "sqlite", sqlite3.sqlite_version)' >&2
find "$ROOT/usr/local" -depth -name __pycache__ -type d -exec rm -rf {} +
rm -rf "$ROOT"/var/lib/apt/lists/* "$ROOT"/var/cache/apt/*.bin "$ROOT"/var/cache/apt/archives/*.deb \
       "$ROOT"/var/log/* "$ROOT"/root/.cache "$ROOT"/tmp/* "$ROOT"/var/cache/debconf/*-old
rm -rf "${ROOT:?}"/dev/* "${ROOT:?}"/proc/* "${ROOT:?}"/sys/* "${ROOT:?}"/run/*

# --- 4. into buildah storage ------------------------------------------------------------------------
log "importing rootfs into buildah storage"
CTR=$(buildah from --name "standin-$KEY-$$" scratch)
MNT=$(buildah mount "$CTR")
tar -C "$ROOT" --numeric-owner --xattrs -cf - . | tar -C "$MNT" --numeric-owner --xattrs -xpf -
buildah umount "$CTR" >/dev/null
buildah config \
  --os linux --arch amd64 \
  --env PATH=/usr/local/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
  --env LANG=C.UTF-8 \
  --env PYTHON_VERSION="$PYVERSION" \
  --cmd '["python3"]' \
  --label io.standin=true \
  --label io.standin.of="$OFFICIAL" \
  --label io.standin.recipe="$(basename "$0") v$RECIPE_VERSION key $KEY" \
  --label org.opencontainers.image.title="STAND-IN for python:3.10-slim (not the official image)" \
  --label org.opencontainers.image.description="Debian $SUITE minbase (debootstrap, $MIRROR) + CPython $PYVERSION copied from $PYPREFIX to /usr/local; built by $(basename "$0")" \
  --label org.opencontainers.image.version="$PYVERSION" \
  --created-by "tests/python_standin.sh (stand-in for python:3.10-slim)" \
  "$CTR"
id=$(buildah commit -q --rm "$CTR" "$NAME")
CTR=
tag_standin "$id"
# FORCE=1: drop the image it replaces (kept if containers or other images still use it).
[[ -n $OLD_ID && $OLD_ID != "$id"* ]] && buildah rmi "$OLD_ID" >/dev/null 2>&1 || true
log "saving $IMAGE_ARCHIVE"
rm -f "$CACHE"/image-*.oci.tar
buildah push -q "$id" "oci-archive:$IMAGE_ARCHIVE.part:$NAME" && mv "$IMAGE_ARCHIVE.part" "$IMAGE_ARCHIVE"
