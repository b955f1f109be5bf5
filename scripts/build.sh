#!/usr/bin/env bash
# Bundles the action's two entry points with ncc into one directory (default: dist/):
#   <out>/index.js       the main step   (action.yml runs.main)
#   <out>/post/index.js  the post step   (action.yml runs.post)
# Two bundles, so that the post step can never run the deploy story: what it is, is decided by
# which file the runner starts, not by a saved state that a cancel during start-up may not have
# written. Built into a scratch directory first, so a failed build leaves the old bundle whole.
set -euo pipefail
cd "$(dirname "$0")/.."
# ncc from the project, also when the script runs outside `npm run`.
export PATH="$PWD/node_modules/.bin:$PATH"
out="${1:-dist}"
scratch="$(mktemp -d .build-XXXXXX)"
trap 'rm -rf "$scratch"' EXIT
ncc build src/index.ts -o "$scratch/main" --license licenses.txt --target es2022 --minify --quiet
ncc build src/post-index.ts -o "$scratch/main/post" --license licenses.txt --target es2022 --minify --quiet
# The post bundle's packages are a subset of the main bundle's: one licence file covers both.
rm -f "$scratch/main/post/licenses.txt"
rm -rf "$out"
mkdir -p "$(dirname "$out")"
mv "$scratch/main" "$out"
