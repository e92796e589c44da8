#!/usr/bin/env bash
# Vendor CodeMirror 5 at the given version: static/vendor/update-codemirror.sh 5.65.21
set -euo pipefail
version="${1:?usage: $0 VERSION}"
here="$(cd "$(dirname "$0")" && pwd)"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
(cd "$work" && npm pack --silent "codemirror@$version" >/dev/null && tar xzf codemirror-*.tgz)
target="$here/codemirror-$version"
mkdir -p "$target/lib" "$target/mode/python" "$target/addon/edit"
cp "$work/package/lib/codemirror.js" "$work/package/lib/codemirror.css" "$target/lib/"
cp "$work/package/mode/python/python.js" "$target/mode/python/"
cp "$work/package/addon/edit/matchbrackets.js" "$target/addon/edit/"
cp "$work/package/LICENSE" "$target/LICENSE"
echo "vendored CodeMirror $version into $target"
ls -d "$here"/codemirror-* | grep -v "codemirror-$version\$" | sed 's/^/old, delete when done: /' || true
