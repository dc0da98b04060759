#!/usr/bin/env bash
# The project's one test command (README, CI): build what is missing, then lint and test.
#   bash scripts/test.sh [pytest args...]
# 1. .venv: CPU torch FIRST (a bare torch requirement would pull a multi-GB CUDA build), then
#    the project with every extra; skipped while a stamp keyed by pyproject.toml is current.
# 2. .venv-swift: OpenStack Swift (its S3 layer checks real SigV4 signatures) in its own venv.
# 3. ruff format --check, ruff check.
# 4. scripts/check_extras.sh: the README's promises per install, on fresh venvs (base install
#    without torch; the quick start's server command as written, then its hub commands).
#    LEXICON_SKIP_EXTRAS=1 skips it in a local inner loop; CI always runs it.
# 5. pytest. "No tests collected" counts as a failure.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

PYTHON=${PYTHON:-python3}
TORCH_PIN="torch==2.13.0"
VENV=.venv
SWIFT_VENV=.venv-swift
STAMP=$VENV/.lexicon-install-stamp

say() { printf '\n==> %s\n' "$*"; }

if [ ! -x "$VENV/bin/python" ]; then
  say "creating $VENV with $($PYTHON --version)"
  "$PYTHON" -m venv "$VENV"
fi

want_stamp="$( { cat pyproject.toml; echo "$TORCH_PIN"; "$VENV/bin/python" --version; } \
  | sha256sum | cut -d' ' -f1)"
if [ "$(cat "$STAMP" 2>/dev/null || true)" = "$want_stamp" ]; then
  say "$VENV is current (pyproject.toml unchanged since the last install)"
else
  say "installing $TORCH_PIN (CPU wheel) into $VENV"
  "$VENV/bin/python" -m pip install --quiet "$TORCH_PIN"
  say "installing the project with all extras: pip install -e '.[all]'"
  "$VENV/bin/python" -m pip install --quiet -e '.[all]'
  if "$VENV/bin/python" -m pip show torchvision timm open_clip_torch >/dev/null 2>&1; then
    echo "torchvision/timm/open_clip got installed; the project must not depend on them" >&2
    exit 1
  fi
  echo "$want_stamp" > "$STAMP"
fi

if [ ! -x "$SWIFT_VENV/bin/swift-proxy-server" ]; then
  say "creating $SWIFT_VENV with OpenStack Swift (pip install swift)"
  rm -rf "$SWIFT_VENV"
  "$PYTHON" -m venv "$SWIFT_VENV"
  "$SWIFT_VENV/bin/python" -m pip install --quiet swift
else
  say "$SWIFT_VENV is present"
fi

# The web pages are tested in a real browser: Debian's chromium, driven by Playwright through
# executable_path (Playwright's own browser download cannot reach its host here).
if ! command -v chromium >/dev/null 2>&1; then
  say "installing Debian's chromium for the browser tests (apt-get)"
  if [ "$(id -u)" = 0 ]; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
  else
    echo "chromium is missing and this is not root: tests/web will fail under CI=true" >&2
  fi
fi

say "ruff format --check ."
"$VENV/bin/ruff" format --check .
say "ruff check ."
"$VENV/bin/ruff" check .

if [ "${LEXICON_SKIP_EXTRAS:-0}" = 1 ] && [ "${CI:-}" != true ]; then
  say "skipping scripts/check_extras.sh (LEXICON_SKIP_EXTRAS=1)"
else
  say "scripts/check_extras.sh: the README's install promises on fresh venvs"
  bash scripts/check_extras.sh
fi

say "pytest $*"
rc=0
"$VENV/bin/python" -m pytest "$@" || rc=$?
if [ "$rc" -eq 5 ]; then
  echo "pytest collected no tests: that is a failure here (check the path or -k/-m filter)" >&2
fi
exit "$rc"
