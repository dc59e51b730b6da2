#!/usr/bin/env bash
# Refresh tests/data/corpus/feedparser/ from feedparser's own test documents (its sdist on PyPI).
#
#   scripts/fetch-parser-corpus.sh            # the feedparser version installed in .venv
#   scripts/fetch-parser-corpus.sh 6.0.14     # a given version
#
# Run by hand, never by the tests: the corpus is committed (about 2,200 small XML files, under
# 1 MB), so the suite stays offline. feedparser and its tests are BSD-2-Clause; its LICENSE is
# copied next to the documents, with SOURCE naming the version and the sdist's sha256.
set -euo pipefail
cd "$(dirname "$0")/.."
python=.venv/bin/python
version="${1:-$("$python" -c 'import importlib.metadata as m; print(m.version("feedparser"))')}"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

"$python" -m pip download --quiet --no-binary :all: --no-deps "feedparser==$version" -d "$work"
sdist="$work/feedparser-$version.tar.gz"
tar -xzf "$sdist" -C "$work"
source_dir="$work/feedparser-$version"

dest=tests/data/corpus/feedparser
rm -rf "$dest"
mkdir -p "$dest"
# Only the XML documents: the compressed bodies test HTTP decoding, which fetch.py does.
(cd "$source_dir/tests" && find . -type f -name '*.xml' -print0 | tar --null -T - -cf -) |
    tar -xf - -C "$dest"
cp "$source_dir/LICENSE" "$dest/LICENSE"
cat > "$dest/SOURCE" <<SOURCE
feedparser $version test documents (tests/**/*.xml from the sdist), BSD-2-Clause: see LICENSE.
sdist: https://pypi.org/project/feedparser/$version/
sha256: $(sha256sum "$sdist" | cut -d' ' -f1)
refreshed by: scripts/fetch-parser-corpus.sh $version
SOURCE
count=$(find "$dest" -name '*.xml' | wc -l)
size=$(du -sh --apparent-size "$dest" | cut -f1)
echo "wrote $count documents ($size) to $dest"
