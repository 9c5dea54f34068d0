#!/usr/bin/env sh
# Copy the pinned npm packages Varde serves into app/static/vendor, each with its licence.
# Run after changing package.json (make vendor); the result is committed, so `make run` needs no npm.
set -eu
cd "$(dirname "$0")/.."
npm ci --no-audit --no-fund --loglevel=error
dest=app/static/vendor/htmx
mkdir -p "$dest"
cp node_modules/htmx.org/dist/htmx.min.js "$dest/htmx.min.js"
cp node_modules/htmx.org/LICENSE "$dest/LICENSE"
node -e 'console.log(require("./node_modules/htmx.org/package.json").version)' > "$dest/VERSION"
echo "vendored htmx.org $(cat "$dest/VERSION")"
