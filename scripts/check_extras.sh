#!/usr/bin/env bash
# What the README promises each install gives, executed as written on fresh venvs.
#
# Why: CI installed '.[all]', which hid that the server extra lacked Pillow — the README's quick
# start died on a fresh machine while CI was green. So, in a fresh copy of the tree:
#   1. the base install (pip install -e .): `hub --help`, `hub inspect`, `hub convert` work, and
#      torch is not installed;
#   2. the README quick start's first command, word for word (taken from README.md), installs the
#      server extra (no torch) and serves until /readyz answers ready; then the README's "in
#      another shell" block runs as written: create-user, hub login, push, pull --to-webui, search.
#   bash scripts/check_extras.sh            (about 2-3 minutes; pip needs its package index)
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
PYTHON=${PYTHON:-python3}
REPO=$PWD
WORK=$(mktemp -d /tmp/lexicon-extras.XXXXXX)
SERVER_PID=
cleanup() {
  if [ -n "$SERVER_PID" ]; then kill -- "-$SERVER_PID" 2>/dev/null || true; fi
  rm -rf "$WORK"
}
trap cleanup EXIT
say() { printf '\n==> extras: %s\n' "$*"; }
fail() { echo "check_extras: $*" >&2; exit 1; }

TREE=$WORK/tree
mkdir -p "$TREE" "$WORK/home"
# a fresh copy of the tree as a clone has it (tracked and not-ignored files only)
git ls-files -co --exclude-standard -z | tar --null -T - -cf - | tar -C "$TREE" -xf -

# the two README blocks, verbatim: quick start command 1, and the "in another shell" block
"$PYTHON" - "$REPO/README.md" "$WORK" <<'EOF'
import re, sys
text = open(sys.argv[1]).read()
start = text.index("## Quick start")
section = text[start:text.index("\n## ", start + 3)]
blocks = re.findall(r"```bash\n(.*?)```", section, re.S)
lines = blocks[0].splitlines()
serve = lines[lines.index(next(l for l in lines if l.startswith("# 1."))) + 1]
assert "lexicon-registry serve" in serve, serve
open(f"{sys.argv[2]}/quickstart1.sh", "w").write(serve + "\n")
open(f"{sys.argv[2]}/quickstart-use.sh", "w").write("set -euo pipefail\n" + blocks[1])
EOF

say "base install (pip install -e .): hub --help, inspect, convert — no torch"
"$PYTHON" -m venv "$WORK/base"
"$WORK/base/bin/pip" install --quiet -e "$TREE"
if "$WORK/base/bin/python" -c "import torch" 2>/dev/null; then fail "the base install pulled torch"; fi
"$WORK/base/bin/hub" --help >/dev/null
if [ -f "$REPO/../shared/realworld/a1111_bad-hands-5.pt" ]; then
  cp "$REPO/../shared/realworld/a1111_bad-hands-5.pt" "$WORK/bad-hands-5.pt"
else  # no community files here: make a 6-vector SD1 embedding and write it as A1111 .pt
  (cd "$WORK" && "$WORK/base/bin/python" -c '
import numpy as np
from client.core.canonical import canonical_bytes
from client.core.embedding import Embedding
vectors = np.random.default_rng(5).standard_normal((6, 768)).astype(np.float32)
e = Embedding.from_tensors({"emb_params": vectors}, token="bad-hands-5", source_format="test")
open("made.safetensors", "wb").write(canonical_bytes(e))')
  "$WORK/base/bin/hub" convert "$WORK/made.safetensors" "$WORK/bad-hands-5.pt" --to a1111
fi
"$WORK/base/bin/hub" inspect "$WORK/bad-hands-5.pt" | tee "$WORK/inspect.txt"
grep -q "sd1" "$WORK/inspect.txt" || fail "hub inspect did not name the family"
for fmt in canonical kohya; do
  "$WORK/base/bin/hub" convert "$WORK/bad-hands-5.pt" "$WORK/out-$fmt.safetensors" --to "$fmt"
done
"$WORK/base/bin/hub" convert "$WORK/bad-hands-5.pt" "$WORK/out-diffusers" --to diffusers
test -s "$WORK/out-kohya.safetensors" || fail "hub convert wrote nothing"

say "README quick start, command 1 as written: $(cat "$WORK/quickstart1.sh")"
if (exec 3<>/dev/tcp/127.0.0.1/8000) 2>/dev/null; then
  fail "port 8000 is taken; the quick start serves there"
fi
cp "$WORK/bad-hands-5.pt" "$TREE/bad-hands-5.pt"
# its own process group, so that cleanup stops pip or the server, whichever is running
HOME="$WORK/home" setsid bash -c 'cd "$1" && exec bash "$2"' _ "$TREE" "$WORK/quickstart1.sh" \
  >"$WORK/serve.log" 2>&1 &
SERVER_PID=$!
ready=
for _ in $(seq 1 600); do
  if ! kill -0 "$SERVER_PID" 2>/dev/null; then
    tail -30 "$WORK/serve.log" >&2
    fail "the quick start's serve command exited before /readyz answered"
  fi
  if "$WORK/base/bin/python" -c '
import httpx, sys
r = httpx.get("http://127.0.0.1:8000/readyz", timeout=2)
sys.exit(0 if r.status_code == 200 and r.json().get("ready") is True else 1)' 2>/dev/null; then
    ready=1
    break
  fi
  sleep 1
done
[ -n "$ready" ] || { tail -30 "$WORK/serve.log" >&2; fail "/readyz never answered ready"; }
if "$TREE/.venv/bin/python" -c "import torch" 2>/dev/null; then fail "the server extra pulled torch"; fi

say "README: create-user, hub login, push, pull --to-webui, search — as written"
(cd "$TREE" && HOME="$WORK/home" bash "$WORK/quickstart-use.sh") | tee "$WORK/use.log"
ls "$WORK/home/stable-diffusion-webui/embeddings/" | grep -q . || fail "pull --to-webui wrote nothing"
grep -q "alice/bad-hands" "$WORK/use.log" || fail "hub search did not list alice/bad-hands"
say "every README promise held"
