#!/usr/bin/env bash
# Fetch a real camera raw file for the raw-reading tests from Debian's package registry: IMG_5952.CR2 (Canon, RGGB,
# 12-bit) ships in the source package 'rawtran'. Uses a temporary apt configuration (deb-src), leaving the system's
# sources untouched. Usage: tools/fetch_test_raw.sh [DEST_DIR]   (default ~/.cache/edgeprune/raw)
set -euo pipefail
dest=${1:-${EDGEPRUNE_RAW_CACHE:-$HOME/.cache/edgeprune/raw}}
[ -f "$dest/IMG_5952.CR2" ] && { echo "$dest/IMG_5952.CR2"; exit 0; }
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/parts" "$work/lists/partial" "$dest"
cat > "$work/parts/src.sources" <<SRC
Types: deb-src
URIs: http://deb.debian.org/debian
Suites: bookworm
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
SRC
opts=(-o "APT::Sandbox::User=root" -o "Dir::Etc::SourceList=/dev/null" -o "Dir::Etc::SourceParts=$work/parts" -o "Dir::State::Lists=$work/lists")
apt-get -qq "${opts[@]}" update >/dev/null
(cd "$work" && apt-get -qq "${opts[@]}" source --download-only rawtran >/dev/null 2>&1 || true)
tarball=$(ls "$work"/rawtran_*.orig.tar.gz 2>/dev/null | head -1)
[ -n "$tarball" ] || { echo "could not download rawtran's source from Debian" >&2; exit 1; }
tar xzf "$tarball" -C "$work" --wildcards '*/doc/IMG_5952.CR2'
mv "$work"/rawtran-*/doc/IMG_5952.CR2 "$dest/IMG_5952.CR2.partial" && mv "$dest/IMG_5952.CR2.partial" "$dest/IMG_5952.CR2"
echo "$dest/IMG_5952.CR2"
