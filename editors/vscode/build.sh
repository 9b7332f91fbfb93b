#!/usr/bin/env bash
# Builds and tests the VS Code extension: install the pinned dependencies, compile the
# TypeScript, run the TextMate grammar tests. CI calls this; it needs node 20 and npm.
set -euo pipefail
cd "$(dirname "$0")"
if [ -f package-lock.json ]; then
  npm ci --no-audit --no-fund
else
  npm install --no-audit --no-fund
fi
npm run compile
npm run test:grammar
npm run test:snap
echo "editors/vscode: compiled, grammar tests and token snapshots passed"
