#!/usr/bin/env bash
# Releases vX.Y.Z from main in two steps: prepare makes the release locally, publish pushes it.
#
#   scripts/release.sh vX.Y.Z [-- test command...]   prepare: checks, CHANGELOG, commit, tag
#                                                    vX.Y.Z, move the major tag vX; pushes nothing
#   scripts/release.sh publish vX.Y.Z                push main and both tags, then create the
#                                                    GitHub Release (gh) with the CHANGELOG section
#
# The release's entries are either under "## Unreleased" (prepare moves them under a new
# "## vX.Y.Z - <today>" heading and keeps an empty "## Unreleased" on top), or already under a
# prepared "## vX.Y.Z" or "## vX.Y.Z - <date>" heading with nothing under "## Unreleased" (prepare
# dates that heading today). Prepare refuses, changing nothing, unless: the tree is clean
# (untracked files included), HEAD is the branch main, the tag does not exist, no higher vX.*
# release exists (the major tag must not move backwards), the CHANGELOG has the release's entries
# in exactly one of those two places, `npm run build` leaves dist/ exactly as committed, and the
# tests pass. The test command defaults to `npm test`; the release workflow passes one that runs
# under sudo, because the integration tests start a private dockerd.
#
# Publish refuses unless the tag exists, the major tag points at it, and the CHANGELOG at the tag
# has a section for it. It pushes the tag's commit to main (refused by the remote if main moved
# on), the tag, and the major tag (forced: it moves), then runs `gh release create` with that
# section as the notes. Run again after a failure, it repeats only what is missing but the release.
set -euo pipefail

die() {
  echo "release: $*" >&2
  exit 1
}

usage="usage: scripts/release.sh vX.Y.Z [-- test command...] | scripts/release.sh publish vX.Y.Z"
mode=prepare
if [[ "${1:-}" == "publish" ]]; then
  mode=publish
  shift
fi
version="${1:-}"
[[ "$version" =~ ^v(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)$ ]] ||
  die "$usage  (got '${version}')"
major="v${BASH_REMATCH[1]}"
shift
# The lines of the CHANGELOG section headed "## <version>" or "## <version> - <date>" (from stdin),
# without the blank lines around them.
section_of() {
  awk -v version="$1" '/^## /{inside = ($2 == version && (NF == 2 || (NF == 4 && $3 == "-"))); next} inside' |
    sed -e '/./,$!d' | sed -e :a -e '/^\n*$/{$d;N;ba' -e '}'
}

cd "$(git rev-parse --show-toplevel)"

if [[ "$mode" == "publish" ]]; then
  [[ $# -eq 0 ]] || die "unexpected argument '$1' after publish $version"
  git rev-parse --quiet --verify "refs/tags/$version" >/dev/null || die "tag $version does not exist; prepare the release first: scripts/release.sh $version"
  commit="$(git rev-parse "$version^{commit}")"
  [[ "$(git rev-parse --quiet --verify "refs/tags/$major^{commit}" || true)" == "$commit" ]] ||
    die "$major does not point at $version; prepare moves it (scripts/release.sh $version)"
  notes_file="$(mktemp)"
  trap 'rm -f "$notes_file"' EXIT
  git show "$commit:CHANGELOG.md" 2>/dev/null | section_of "$version" >"$notes_file" || true
  [[ -s "$notes_file" ]] || die "CHANGELOG.md at $version has no '## $version' section to use as the release notes"
  command -v gh >/dev/null || die "the GitHub CLI (gh) is not on PATH; it creates the GitHub Release"

  echo "release: pushing $version's commit to main, the tag $version, and $major"
  git push origin "$commit:refs/heads/main"
  git push origin "refs/tags/$version"
  git push --force origin "refs/tags/$major"
  echo "release: creating the GitHub Release $version"
  gh release create "$version" --verify-tag --title "$version" --notes-file "$notes_file"
  echo "release: published $version; $major points at it."
  exit 0
fi

test_command=(npm test)
if [[ $# -gt 0 ]]; then
  [[ "$1" == "--" ]] || die "unexpected argument '$1'; a test command goes after --"
  shift
  [[ $# -gt 0 ]] || die "no test command after --"
  test_command=("$@")
fi

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
# The lines between "## Unreleased" and the next "## " heading, and a prepared section, if any.
unreleased_entries="$(awk '/^## /{inside = ($0 == "## Unreleased"); next} inside && NF' CHANGELOG.md)"
prepared_headings="$(awk -v version="$version" '/^## /{if ($2 == version && (NF == 2 || (NF == 4 && $3 == "-"))) n++} END {print n + 0}' CHANGELOG.md)"
[[ "$prepared_headings" -le 1 ]] || die "CHANGELOG.md has $prepared_headings '## $version' headings; keep one"
if [[ "$prepared_headings" -eq 1 ]]; then
  [[ -z "$unreleased_entries" ]] ||
    die "CHANGELOG.md has entries under both '## Unreleased' and '## $version'; move them into one of the two"
  [[ -n "$(section_of "$version" <CHANGELOG.md)" ]] || die "CHANGELOG.md has nothing under '## $version'; describe the release first"
else
  [[ -n "$unreleased_entries" ]] || die "CHANGELOG.md has nothing under '## Unreleased'; describe the release first"
fi

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
if [[ "$prepared_headings" -eq 1 ]]; then
  # The prepared section gets the date of the release.
  awk -v version="$version" -v heading="## $version - $today" '
    /^## / && $2 == version && (NF == 2 || (NF == 4 && $3 == "-")) { print heading; next }
    { print }
  ' CHANGELOG.md >"$changelog_tmp"
else
  # Keep an empty "## Unreleased" on top for the next changes; what was under it now sits under
  # the version heading.
  awk -v heading="## $version - $today" '
    $0 == "## Unreleased" && !done { print; print ""; print heading; done = 1; next }
    { print }
  ' CHANGELOG.md >"$changelog_tmp"
fi
cat "$changelog_tmp" >CHANGELOG.md

made="tagged $(git rev-parse --short HEAD) (the CHANGELOG was ready as committed)"
if [[ -n "$(git status --porcelain -- CHANGELOG.md)" ]]; then
  git add CHANGELOG.md
  git commit --quiet -m "Release $version" -- CHANGELOG.md
  made="made commit $(git rev-parse --short HEAD)"
fi
git tag -a "$version" -m "Release $version"
# The major tag is what users write (org/deploy-action@v1); it follows the newest release.
git tag -f "$major" "$version^{commit}" >/dev/null

echo
echo "release: $made, tag $version, and moved $major to it."
echo "Nothing was pushed. To publish (the release workflow does): scripts/release.sh publish $version"
echo "which runs:"
echo "  git push origin $version^{commit}:refs/heads/main"
echo "  git push origin refs/tags/$version"
echo "  git push --force origin refs/tags/$major"
echo "  gh release create $version --verify-tag --title $version --notes-file <the '## $version' section of CHANGELOG.md>"
