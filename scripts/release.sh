#!/usr/bin/env bash
# Releases vX.Y.Z from main: checks, CHANGELOG, commit, tag vX.Y.Z, move the major tag vX.
# It never pushes; it prints the push commands (the release workflow runs them).
#
#   scripts/release.sh vX.Y.Z [-- test command...]
#
# Refuses, changing nothing, unless: the tree is clean (untracked files included), HEAD is the
# branch main, the tag does not exist, no higher vX.* release exists (the major tag must not move
# backwards), CHANGELOG.md has entries under "## Unreleased", `npm run build` leaves dist/ exactly
# as committed, and the tests pass. The test command defaults to `npm test`; the release workflow
# passes one that runs under sudo, because the integration tests start a private dockerd.
set -euo pipefail

die() {
  echo "release: $*" >&2
  exit 1
}

version="${1:-}"
[[ "$version" =~ ^v(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)$ ]] ||
  die "usage: scripts/release.sh vX.Y.Z [-- test command...]  (got '${version}')"
major="v${BASH_REMATCH[1]}"
shift
test_command=(npm test)
if [[ $# -gt 0 ]]; then
  [[ "$1" == "--" ]] || die "unexpected argument '$1'; a test command goes after --"
  shift
  [[ $# -gt 0 ]] || die "no test command after --"
  test_command=("$@")
fi

cd "$(git rev-parse --show-toplevel)"

[[ -z "$(git status --porcelain)" ]] || {
  git status --short >&2
  die "the working tree is not clean; commit or stash first"
}
branch="$(git symbolic-ref --quiet --short HEAD || true)"
[[ "$branch" == "main" ]] || die "releases are made from main, not '${branch:-a detached HEAD}'"
if git rev-parse --quiet --verify "refs/tags/$version" >/dev/null; then
  die "tag $version exists already"
fi
newest_same_major="$(git tag --list "${major}.*" | grep -E '^v[0-9]+\.[0-9]+\.[0-9]+$' | sort -V | tail -n 1 || true)"
if [[ -n "$newest_same_major" ]] &&
  [[ "$(printf '%s\n%s\n' "$newest_same_major" "$version" | sort -V | tail -n 1)" != "$version" ]]; then
  die "$newest_same_major is newer than $version; moving $major to $version would move it backwards"
fi

[[ -f CHANGELOG.md ]] || die "CHANGELOG.md does not exist"
grep -qx '## Unreleased' CHANGELOG.md || die "CHANGELOG.md has no '## Unreleased' heading"
# The lines between "## Unreleased" and the next "## " heading must say something.
unreleased_entries="$(awk '/^## /{inside = ($0 == "## Unreleased"); next} inside && NF' CHANGELOG.md)"
[[ -n "$unreleased_entries" ]] || die "CHANGELOG.md has nothing under '## Unreleased'; describe the release first"

echo "release: building, to check that dist/ is up to date"
npm run build
if [[ -n "$(git status --porcelain -- dist/)" ]]; then
  git status --short -- dist/ >&2
  die "npm run build changed dist/; commit the fresh bundle first (the action runs dist/, not src/)"
fi

echo "release: running the tests: ${test_command[*]}"
"${test_command[@]}" || die "the tests failed"
# Tests must not have left anything behind that the release commit would silently leave out.
[[ -z "$(git status --porcelain)" ]] || {
  git status --short >&2
  die "the build or the tests changed the working tree"
}

today="$(date -u +%Y-%m-%d)"
changelog_tmp="$(mktemp)"
trap 'rm -f "$changelog_tmp"' EXIT
# Keep an empty "## Unreleased" on top for the next changes; what was under it now sits under
# the version heading.
awk -v heading="## $version - $today" '
  $0 == "## Unreleased" && !done { print; print ""; print heading; done = 1; next }
  { print }
' CHANGELOG.md >"$changelog_tmp"
cat "$changelog_tmp" >CHANGELOG.md

git add CHANGELOG.md
git commit --quiet -m "Release $version" -- CHANGELOG.md
git tag -a "$version" -m "Release $version"
# The major tag is what users write (org/deploy-action@v1); it follows the newest release.
git tag -f "$major" "$version^{commit}" >/dev/null

echo
echo "release: made commit $(git rev-parse --short HEAD), tag $version, and moved $major to it."
echo "Nothing was pushed. To publish:"
echo "  git push origin main"
echo "  git push origin refs/tags/$version"
echo "  git push --force origin refs/tags/$major"
