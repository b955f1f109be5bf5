#!/usr/bin/env bash
# Bundles the action's two entry points with ncc into one directory (default: dist/):
#   <out>/index.js       the main step   (action.yml runs.main)
#   <out>/post/index.js  the post step   (action.yml runs.post)
#   <out>/licenses.txt   the third-party notices of both bundles
# Two bundles, so that the post step can never run the deploy story: what it is, is decided by
# which file the runner starts, not by a saved state that a cancel during start-up may not have
# written. Built into a scratch directory first, so a failed build leaves the old bundle whole.
set -euo pipefail
cd "$(dirname "$0")/.."
# ncc and tsx from the project (devDependencies), also when the script runs outside `npm run`.
export PATH="$PWD/node_modules/.bin:$PATH"
out="${1:-dist}"
scratch="$(mktemp -d "$PWD/.build-XXXXXX")"
trap 'rm -rf "$scratch"' EXIT
# webpack's stats say which files went into each bundle; they stay in the scratch directory.
ncc build src/index.ts -o "$scratch/main" --stats-out "$scratch/main.stats.json" --target es2022 --minify --quiet
ncc build src/post-index.ts -o "$scratch/main/post" --stats-out "$scratch/post.stats.json" --target es2022 --minify --quiet
# One notices file for both bundles, from the packages webpack bundled (not ncc's --license,
# which names only some of them).
tsx scripts/third-party-notices.ts "$scratch/main/licenses.txt" "$scratch/main.stats.json" "$scratch/post.stats.json"
rm -rf "$out"
mkdir -p "$(dirname "$out")"
mv "$scratch/main" "$out"
