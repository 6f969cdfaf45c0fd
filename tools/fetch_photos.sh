#!/usr/bin/env bash
# A folder of real colour photographs from Debian packages, laid out as `edgeprune prune --data` reads an SR folder:
# DEST/train/ and DEST/val/ (held out). Photos from opencv-doc (OpenCV's sample images) and libjxl-testdata
# (lossless photos); screenshots, diagrams, greyscale and synthetic images are left out. `apt-get download` needs
# no root install and leaves the system untouched. None of these are the scikit-image photos edgeprune validates on
# by default.
# Usage: tools/fetch_photos.sh DEST_DIR
set -euo pipefail
dest=${1:?usage: tools/fetch_photos.sh DEST_DIR}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
(cd "$work" && apt-get download -qq opencv-doc libjxl-testdata >/dev/null 2>&1) || {
    echo "error: apt-get download opencv-doc libjxl-testdata failed (needs Debian's package registry)" >&2; exit 2; }
for deb in "$work"/*.deb; do dpkg-deb -x "$deb" "$work/x"; done
cv=$work/x/usr/share/doc/opencv-doc/examples/data
jxl=$work/x/usr/share/libjxl-testdata
train=(
    "$cv/aero1.jpg" "$cv/aero3.jpg" "$cv/apple.jpg" "$cv/building.jpg" "$cv/butterfly.jpg" "$cv/home.jpg"
    "$cv/leuvenA.jpg" "$cv/leuvenB.jpg" "$cv/messi5.jpg" "$cv/orange.jpg" "$cv/squirrel_cls.jpg" "$cv/graf1.png"
    "$cv/rubberwhale1.png" "$cv/aloeL.jpg" "$work/x/usr/share/doc/opencv-doc/examples/alphamat/input_images/plant.jpg"
    "$jxl/jxl/flower/flower.png" "$jxl/external/wesaturate/500px/cvo9xd_keong_macan_srgb8.png"
    "$jxl/external/wesaturate/500px/tmshre_riaphotographs_srgb8.png"
)
val=("$cv/baboon.jpg" "$cv/fruits.jpg" "$jxl/external/wesaturate/500px/u76c0g_bliznaca_srgb8.png" "$jxl/jxl/hdr_room.png")
mkdir -p "$dest/train" "$dest/val"
cp "${train[@]}" "$dest/train/"
cp "${val[@]}" "$dest/val/"
echo "$dest: $(ls "$dest/train" | wc -l) training and $(ls "$dest/val" | wc -l) held-out photos"
