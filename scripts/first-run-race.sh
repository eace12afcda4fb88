#!/usr/bin/env bash
# Two first runs of ./tornado-lora in a fresh clone at the same time must both succeed (issue 12): the jar build
# is serialized by a flock in the launcher, and the run that waited reuses the jar. Clones this checkout's HEAD
# into a temporary folder (a full build: minutes), runs `devices` twice at once, and exits 1 unless both exit 0.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
git clone -q "$root" "$tmp/clone"
[ -f "$root/.mvn/maven.config" ] && mkdir -p "$tmp/clone/.mvn" && cp "$root/.mvn/maven.config" "$tmp/clone/.mvn/"
(cd "$tmp/clone" && ./tornado-lora devices >"$tmp/a.out" 2>&1; echo $? >"$tmp/a.rc") &
(cd "$tmp/clone" && ./tornado-lora devices >"$tmp/b.out" 2>&1; echo $? >"$tmp/b.rc") &
wait
status=0
for r in a b; do
  echo "run $r: exit $(cat "$tmp/$r.rc")"
  if [ "$(cat "$tmp/$r.rc")" != 0 ]; then cat "$tmp/$r.out"; status=1; fi
done
exit $status
