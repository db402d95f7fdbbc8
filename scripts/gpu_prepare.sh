#!/usr/bin/env bash
# Pack what scripts/gpu_check.sh needs on a bare CUDA machine (no diffusers, decord or ffmpeg) into the git-ignored
# .gpu/, small enough to travel with the working tree (the device tool carries at most 64 MiB). It runs
# ../shared/gpu/prepare.sh with one change: the ffmpeg binary. imageio-ffmpeg 0.8.1's (ffmpeg 7, 48 MB xz-compressed)
# puts .gpu at about 66 MiB; imageio-ffmpeg 0.4.9's static ffmpeg 4.2.2 (libx264 included) is 19 MB. prepare.sh keeps
# an .gpu/ff/ff.xz that is already there, so this one is put there first. Then, through the device tool:
#   run(command="bash scripts/gpu_check.sh", carry=[".gpu"], timeout_s=560)
set -euo pipefail
cd "$(dirname "$0")/.."
mkdir -p .gpu/ff
grep -qx '/.gpu/' .git/info/exclude 2>/dev/null || { mkdir -p .git/info; echo '/.gpu/' >> .git/info/exclude; }
if [ ! -f .gpu/ff/ff.xz ]; then
  tmp=$(mktemp -d)
  python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
    --platform manylinux2010_x86_64 --platform manylinux_2_17_x86_64 -d "$tmp" imageio-ffmpeg==0.4.9 2>&1 \
    | grep -v WARNING || true
  (cd "$tmp" && python3 -m zipfile -e imageio_ffmpeg-0.4.9-*.whl site)
  xz -6 -T2 -c "$tmp"/site/imageio_ffmpeg/binaries/ffmpeg-linux64-v4.2.2 > .gpu/ff/ff.xz
  rm -rf "$tmp"
fi
bash ../shared/gpu/prepare.sh
total=$(du -sb .gpu | cut -f1)
echo "gpu_prepare.sh: .gpu is $((total / 1048576)) MiB (the device tool carries at most 64 MiB with the tree)"
