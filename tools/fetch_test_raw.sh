#!/usr/bin/env bash
# Fetch a real camera raw file for the raw-reading tests: IMG_5952.CR2 (Canon, RGGB, 12-bit) ships in Debian's source
# package 'rawtran'. The source entries are built from this machine's own apt configuration (each configured 'deb'
# entry, deb822 or one-line, repeated as 'deb-src'), so the mirror is whatever the machine is set up with; they live
# in a temporary apt configuration, leaving the system's sources and lists untouched.
# Usage: tools/fetch_test_raw.sh [DEST_DIR]   (default ~/.cache/edgeprune/raw)
#        tools/fetch_test_raw.sh --print-sources   (print the deb-src entries it would use, fetch nothing)
set -euo pipefail
print_only=0
if [ "${1:-}" = --print-sources ]; then print_only=1; shift; fi
dest=${1:-${EDGEPRUNE_RAW_CACHE:-$HOME/.cache/edgeprune/raw}}
[ $print_only = 0 ] && [ -f "$dest/IMG_5952.CR2" ] && { echo "$dest/IMG_5952.CR2"; exit 0; }
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/parts" "$work/lists/partial"

# where this machine's apt keeps its sources (normally /etc/apt/sources.list and /etc/apt/sources.list.d/)
SRCLIST=/etc/apt/sources.list SRCPARTS=/etc/apt/sources.list.d/
eval "$(apt-config shell SRCLIST Dir::Etc::sourcelist/f SRCPARTS Dir::Etc::sourceparts/d)"
shopt -s nullglob
# deb822 stanzas whose Types include 'deb' (and not 'Enabled: no'), with Types set to deb-src; comments dropped
deb822=("$SRCPARTS"*.sources)
if [ ${#deb822[@]} -gt 0 ]; then
    awk '
        function flush() { if (keep && !disabled && n) { for (i = 1; i <= n; i++) print buf[i]; print "" }
                           n = 0; keep = 0; disabled = 0 }
        FNR == 1 { flush() }
        /^[[:space:]]*#/ { next }
        /^[[:space:]]*$/ { flush(); next }
        tolower($0) ~ /^types:/ { if ((" " substr($0, index($0, ":") + 1) " ") ~ /[[:space:]]deb[[:space:]]/) {
                                      keep = 1; buf[++n] = "Types: deb-src" }
                                  next }
        tolower($0) ~ /^enabled:[[:space:]]*no/ { disabled = 1 }
        { buf[++n] = $0 }
        END { flush() }' "${deb822[@]}" > "$work/parts/src.sources"
fi
# one-line entries: 'deb [options] URI suite components' -> 'deb-src ...'
one_line=()
[ -f "$SRCLIST" ] && one_line+=("$SRCLIST")
one_line+=("$SRCPARTS"*.list)
if [ ${#one_line[@]} -gt 0 ]; then
    sed -n 's/^[[:space:]]*deb[[:space:]]/deb-src /p' "${one_line[@]}" > "$work/parts/src.list"
fi
if ! grep -qs '^Types: deb-src\|^deb-src ' "$work/parts/src.sources" "$work/parts/src.list"; then
    echo "this machine's apt configuration ($SRCLIST, $SRCPARTS) has no 'deb' entry to fetch sources from" >&2
    exit 1
fi
if [ $print_only = 1 ]; then cat "$work/parts/"src.*; exit 0; fi
mkdir -p "$dest"

opts=(-o "APT::Sandbox::User=root" -o "Dir::Etc::SourceList=/dev/null" -o "Dir::Etc::SourceParts=$work/parts"
      -o "Dir::State::Lists=$work/lists")
apt-get -qq "${opts[@]}" update >/dev/null
(cd "$work" && apt-get -qq "${opts[@]}" source --download-only rawtran >/dev/null 2>&1 || true)
tarball=$(ls "$work"/rawtran_*.orig.tar.gz 2>/dev/null | head -1)
[ -n "$tarball" ] || { echo "could not download rawtran's source through this machine's apt sources" >&2; exit 1; }
tar xzf "$tarball" -C "$work" --wildcards '*/doc/IMG_5952.CR2'
mv "$work"/rawtran-*/doc/IMG_5952.CR2 "$dest/IMG_5952.CR2.partial" && mv "$dest/IMG_5952.CR2.partial" "$dest/IMG_5952.CR2"
echo "$dest/IMG_5952.CR2"
