//! The recommenders. Each scores every item for a user from the user's training row; the
//! evaluation and serving code rank, exclude and explain.
//!
//! - Popularity: decayed interaction strength per item (the baseline every paper reports).
//! - Item-kNN: cosine between item columns, the `neighbours` nearest kept per item.
//! - EASE (Steck 2019): the closed-form item-item model B = I − P·diag(1/diag(P)),
//!   P = (XᵀX + λI)⁻¹, inverted with faer's Cholesky.
//! - iALS (Hu, Koren, Volinsky 2008): implicit-feedback matrix factorisation, confidence
//!   1 + α·x, each user's and item's factors an exact ridge solve (faer Cholesky).
//! - Content: cosine between the user's strength-weighted mean title vector and each item's
//!   title vector, the only score an item nobody has touched yet can get.
//! - Hybrid: a weighted sum of the others, each normalised per user to a maximum of 1.
//!
//! The sparse accumulation loops (Gram matrix, co-occurrence) are written here: they are a
//! few lines over our CSR layout and no crate does them better; the dense algebra (inverse,
//! factor solves, Gram of the factors) is faer's.

use std::sync::Arc;

use faer::linalg::solvers::{DenseSolveCore, Solve};
use faer::{Mat, Side};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rayon::prelude::*;
use shopfuse_core::config::RecsConfig;
use shopfuse_core::vector::dot;
use shopfuse_core::Embeddings;

use super::data::Interaction;
use crate::LearnError;

const DAY_US: f64 = 86_400_000_000.0;

/// User × item interaction strengths in compressed rows: the sum of the event weights,
/// each halved per `half_life_days` before `now`, as ln(1 + w) so that a hundred views do
/// not outweigh a purchase by a hundred times.
#[derive(Debug, Clone)]
pub struct TrainMatrix {
    pub n_users: usize,
    pub n_items: usize,
    pub indptr: Vec<usize>,
    pub indices: Vec<u32>,
    pub values: Vec<f32>,
}

impl TrainMatrix {
    pub fn build<'a>(
        n_users: usize,
        n_items: usize,
        interactions: impl Iterator<Item = &'a Interaction>,
        config: &RecsConfig,
        now: i64,
    ) -> TrainMatrix {
        let mut cells: Vec<(u32, u32, f64)> = interactions
            .map(|i| {
                let age = ((now - i.at) as f64 / DAY_US).max(0.0);
                let w = i.action.weight(config) * 0.5f64.powf(age / config.half_life_days);
                (i.user, i.item, w)
            })
            .collect();
        Self::from_cells(n_users, n_items, &mut cells)
    }

    /// From (user, item, raw weight) cells; repeated cells are summed.
    pub fn from_cells(n_users: usize, n_items: usize, cells: &mut [(u32, u32, f64)]) -> Self {
        cells.sort_unstable_by_key(|c| (c.0, c.1));
        let mut indptr = vec![0usize; n_users + 1];
        let mut indices = Vec::with_capacity(cells.len());
        let mut values: Vec<f64> = Vec::with_capacity(cells.len());
        let mut last: Option<(u32, u32)> = None;
        for &(u, i, w) in cells.iter() {
            if last == Some((u, i)) {
                *values.last_mut().expect("a previous cell") += w;
            } else {
                indices.push(i);
                values.push(w);
                indptr[u as usize + 1] += 1;
                last = Some((u, i));
            }
        }
        for u in 0..n_users {
            indptr[u + 1] += indptr[u];
        }
        TrainMatrix {
            n_users,
            n_items,
            indptr,
            indices,
            values: values.iter().map(|w| (1.0 + w).ln() as f32).collect(),
        }
    }

    pub fn row(&self, u: usize) -> (&[u32], &[f32]) {
        let (a, b) = (self.indptr[u], self.indptr[u + 1]);
        (&self.indices[a..b], &self.values[a..b])
    }

    pub fn nnz(&self) -> usize {
        self.indices.len()
    }

    /// Item × user.
    pub fn transpose(&self) -> TrainMatrix {
        let mut cells: Vec<(u32, u32, f64)> = Vec::with_capacity(self.nnz());
        for u in 0..self.n_users {
            let (items, values) = self.row(u);
            for (&i, &x) in items.iter().zip(values) {
                cells.push((i, u as u32, x as f64));
            }
        }
        cells.sort_unstable_by_key(|c| (c.0, c.1));
        let mut indptr = vec![0usize; self.n_items + 1];
        for c in &cells {
            indptr[c.0 as usize + 1] += 1;
        }
        for i in 0..self.n_items {
            indptr[i + 1] += indptr[i];
        }
        TrainMatrix {
            n_users: self.n_items,
            n_items: self.n_users,
            indptr,
            indices: cells.iter().map(|c| c.1).collect(),
            values: cells.iter().map(|c| c.2 as f32).collect(),
        }
    }
}

/// Scales `scores` so that the largest magnitude is 1 (all zeros stay zeros): how the hybrid
/// and the evaluation put models with different score ranges on one footing.
pub fn scale_to_unit_max(scores: &mut [f32]) {
    let max = scores.iter().fold(0f32, |m, s| m.max(s.abs()));
    if max > 0.0 {
        scores.iter_mut().for_each(|s| *s /= max);
    }
}

pub trait Recommender: Send + Sync {
    fn name(&self) -> &'static str;

    /// Writes a score for every item into `out` (length = items) for user `user`, whose
    /// training row is `(items, values)`. Only the order of the scores matters.
    fn score(&self, user: usize, items: &[u32], values: &[f32], out: &mut [f32]);

    /// How strongly having item `j` in one's history recommends item `i`, for reasons.
    fn support(&self, _i: usize, _j: usize) -> Option<f32> {
        None
    }
}

pub struct Popularity {
    pub strength: Vec<f32>,
}

impl Popularity {
    pub fn fit(x: &TrainMatrix) -> Self {
        let mut strength = vec![0f32; x.n_items];
        for (&i, &v) in x.indices.iter().zip(&x.values) {
            strength[i as usize] += v;
        }
        Popularity { strength }
    }

    /// Strength scaled to [0, 1].
    pub fn normalised(&self) -> Vec<f32> {
        let max = self.strength.iter().cloned().fold(0f32, f32::max);
        self.strength
            .iter()
            .map(|s| if max > 0.0 { s / max } else { 0.0 })
            .collect()
    }
}

impl Recommender for Popularity {
    fn name(&self) -> &'static str {
        "popularity"
    }
    fn score(&self, _: usize, _: &[u32], _: &[f32], out: &mut [f32]) {
        out.copy_from_slice(&self.strength);
    }
}

pub struct ItemKnn {
    neighbours: Vec<Vec<(u32, f32)>>,
}

impl ItemKnn {
    /// The items most similar to `item`, most similar first, with their cosine.
    pub fn neighbours(&self, item: usize) -> &[(u32, f32)] {
        &self.neighbours[item]
    }

    pub fn fit(x: &TrainMatrix, xt: &TrainMatrix, k: usize) -> Self {
        let norms: Vec<f32> = (0..xt.n_users)
            .map(|i| xt.row(i).1.iter().map(|v| v * v).sum::<f32>().sqrt())
            .collect();
        let neighbours = (0..x.n_items)
            .into_par_iter()
            .map_init(
                || (vec![0f32; x.n_items], Vec::<u32>::new()),
                |(acc, touched), i| {
                    let (users, xi) = xt.row(i);
                    for (&u, &a) in users.iter().zip(xi) {
                        let (items, xu) = x.row(u as usize);
                        for (&j, &b) in items.iter().zip(xu) {
                            if acc[j as usize] == 0.0 {
                                touched.push(j);
                            }
                            acc[j as usize] += a * b;
                        }
                    }
                    let mut sims: Vec<(u32, f32)> = touched
                        .iter()
                        .filter(|&&j| j as usize != i)
                        .map(|&j| {
                            let d = norms[i] * norms[j as usize];
                            (j, if d > 0.0 { acc[j as usize] / d } else { 0.0 })
                        })
                        .collect();
                    for &j in touched.iter() {
                        acc[j as usize] = 0.0;
                    }
                    touched.clear();
                    let by_sim = |a: &(u32, f32), b: &(u32, f32)| b.1.total_cmp(&a.1);
                    if sims.len() > k {
                        sims.select_nth_unstable_by(k, by_sim);
                        sims.truncate(k);
                    }
                    sims.sort_by(|a, b| by_sim(a, b).then(a.0.cmp(&b.0)));
                    sims
                },
            )
            .collect();
        ItemKnn { neighbours }
    }
}

impl Recommender for ItemKnn {
    fn name(&self) -> &'static str {
        "item-knn"
    }
    fn score(&self, _: usize, items: &[u32], values: &[f32], out: &mut [f32]) {
        out.fill(0.0);
        for (&j, &x) in items.iter().zip(values) {
            for &(i, s) in &self.neighbours[j as usize] {
                out[i as usize] += x * s;
            }
        }
    }
    fn support(&self, i: usize, j: usize) -> Option<f32> {
        self.neighbours[j]
            .iter()
            .find(|(n, _)| *n as usize == i)
            .map(|(_, s)| *s)
            .or(Some(0.0))
    }
}

pub struct Ease {
    n: usize,
    /// Row-major items × items; row j is what having j contributes to every item.
    b: Vec<f32>,
}

impl Ease {
    /// Bytes of the dense matrices EASE needs for `n` items (Gram and inverse in f64, B in
    /// f32), so callers can refuse sizes that do not fit.
    pub fn memory_bytes(n: usize) -> usize {
        n * n * (8 + 8 + 4)
    }

    pub fn fit(x: &TrainMatrix, lambda: f64) -> Result<Self, LearnError> {
        let n = x.n_items;
        let mut gram = Mat::<f64>::zeros(n, n);
        for u in 0..x.n_users {
            let (items, values) = x.row(u);
            for (&i, &a) in items.iter().zip(values) {
                for (&j, &b) in items.iter().zip(values) {
                    gram[(i as usize, j as usize)] += (a * b) as f64;
                }
            }
        }
        for i in 0..n {
            gram[(i, i)] += lambda;
        }
        let p = gram
            .llt(Side::Lower)
            .map_err(|e| {
                LearnError::Invalid(format!(
                    "EASE: XᵀX + λI is not positive definite ({e:?}); raise [recs] ease_lambda"
                ))
            })?
            .inverse();
        drop(gram);
        let mut b = vec![0f32; n * n];
        b.par_chunks_mut(n.max(1)).enumerate().for_each(|(j, row)| {
            for (i, cell) in row.iter_mut().enumerate() {
                // B[j, i] = −P[j, i] / P[i, i], zero diagonal.
                if i != j {
                    *cell = (-p[(j, i)] / p[(i, i)]) as f32;
                }
            }
        });
        Ok(Ease { n, b })
    }
}

impl Recommender for Ease {
    fn name(&self) -> &'static str {
        "ease"
    }
    fn score(&self, _: usize, items: &[u32], values: &[f32], out: &mut [f32]) {
        out.fill(0.0);
        for (&j, &x) in items.iter().zip(values) {
            let row = &self.b[j as usize * self.n..(j as usize + 1) * self.n];
            for (o, b) in out.iter_mut().zip(row) {
                *o += x * b;
            }
        }
    }
    fn support(&self, i: usize, j: usize) -> Option<f32> {
        Some(self.b[j * self.n + i])
    }
}

pub struct Ials {
    factors: usize,
    users: Vec<f32>,
    items: Vec<f32>,
}

impl Ials {
    pub fn fit(x: &TrainMatrix, xt: &TrainMatrix, config: &RecsConfig, seed: u64) -> Self {
        let f = config.factors;
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let mut items: Vec<f32> = (0..x.n_items * f)
            .map(|_| rng.random_range(-0.05f32..0.05))
            .collect();
        let mut users = vec![0f32; x.n_users * f];
        for _ in 0..config.iterations {
            users = Self::half_step(x, &items, f, config);
            items = Self::half_step(xt, &users, f, config);
        }
        Ials {
            factors: f,
            users,
            items,
        }
    }

    /// New factors for every row of `rows` with `fixed` (the other side's factors) held.
    fn half_step(rows: &TrainMatrix, fixed: &[f32], f: usize, config: &RecsConfig) -> Vec<f32> {
        let m = fixed.len() / f;
        let fixed_mat = Mat::<f64>::from_fn(m, f, |r, c| fixed[r * f + c] as f64);
        let mut gram = fixed_mat.transpose() * &fixed_mat;
        for d in 0..f {
            gram[(d, d)] += config.regularization;
        }
        let mut out = vec![0f32; rows.n_users * f];
        out.par_chunks_mut(f).enumerate().for_each(|(r, target)| {
            let (cols, values) = rows.row(r);
            if cols.is_empty() {
                return;
            }
            let mut a = gram.clone();
            let mut b = Mat::<f64>::zeros(f, 1);
            for (&c, &x) in cols.iter().zip(values) {
                let y = &fixed[c as usize * f..(c as usize + 1) * f];
                let conf = 1.0 + config.alpha * x as f64;
                for p in 0..f {
                    let yp = y[p] as f64;
                    b[(p, 0)] += conf * yp;
                    let s = (conf - 1.0) * yp;
                    for q in 0..f {
                        a[(p, q)] += s * y[q] as f64;
                    }
                }
            }
            // A is the Gram of real vectors plus λI: positive definite.
            if let Ok(llt) = a.llt(Side::Lower) {
                let solved = llt.solve(&b);
                for (p, t) in target.iter_mut().enumerate() {
                    *t = solved[(p, 0)] as f32;
                }
            }
        });
        out
    }

    fn item(&self, i: usize) -> &[f32] {
        &self.items[i * self.factors..(i + 1) * self.factors]
    }
}

impl Recommender for Ials {
    fn name(&self) -> &'static str {
        "ials"
    }
    fn score(&self, user: usize, _: &[u32], _: &[f32], out: &mut [f32]) {
        let f = self.factors;
        let u = &self.users[user * f..(user + 1) * f];
        for (i, o) in out.iter_mut().enumerate() {
            *o = dot(u, self.item(i));
        }
    }
    fn support(&self, i: usize, j: usize) -> Option<f32> {
        Some(dot(self.item(i), self.item(j)))
    }
}

pub struct Content {
    vectors: Embeddings,
}

impl Content {
    /// `vectors` holds one row per item (zero for an item without a title).
    pub fn new(mut vectors: Embeddings) -> Self {
        for i in 0..vectors.len() {
            let row = vectors.row_mut(i);
            let norm = row.iter().map(|v| v * v).sum::<f32>().sqrt();
            if norm > 0.0 {
                row.iter_mut().for_each(|v| *v /= norm);
            }
        }
        Content { vectors }
    }
}

impl Recommender for Content {
    fn name(&self) -> &'static str {
        "content"
    }
    fn score(&self, _: usize, items: &[u32], values: &[f32], out: &mut [f32]) {
        let mut profile = vec![0f32; self.vectors.dim()];
        for (&j, &x) in items.iter().zip(values) {
            for (p, v) in profile.iter_mut().zip(self.vectors.row(j as usize)) {
                *p += x * v;
            }
        }
        for (i, o) in out.iter_mut().enumerate() {
            *o = dot(&profile, self.vectors.row(i));
        }
    }
    fn support(&self, i: usize, j: usize) -> Option<f32> {
        Some(dot(self.vectors.row(i), self.vectors.row(j)))
    }
}

/// A weighted blend of other models, each normalised per user to a maximum of 1.
pub struct Hybrid {
    pub parts: Vec<(Arc<dyn Recommender>, f32)>,
}

impl Hybrid {
    /// The same blend with its popularity part counted on `context` (e.g. one platform's
    /// behaviour, when ranking that platform's shelf).
    pub fn with_popularity_of(&self, context: &TrainMatrix) -> Hybrid {
        Hybrid {
            parts: self
                .parts
                .iter()
                .map(|(m, w)| {
                    if m.name() == "popularity" {
                        (
                            Arc::new(Popularity::fit(context)) as Arc<dyn Recommender>,
                            *w,
                        )
                    } else {
                        (m.clone(), *w)
                    }
                })
                .collect(),
        }
    }
}

impl Recommender for Hybrid {
    fn name(&self) -> &'static str {
        "hybrid"
    }
    fn score(&self, user: usize, items: &[u32], values: &[f32], out: &mut [f32]) {
        out.fill(0.0);
        let mut part = vec![0f32; out.len()];
        for (model, w) in &self.parts {
            if *w == 0.0 {
                continue;
            }
            model.score(user, items, values, &mut part);
            scale_to_unit_max(&mut part);
            for (o, s) in out.iter_mut().zip(&part) {
                *o += w * s;
            }
        }
    }
    /// The item-to-item view of the heaviest part that has one.
    fn support(&self, i: usize, j: usize) -> Option<f32> {
        let mut parts: Vec<&(Arc<dyn Recommender>, f32)> =
            self.parts.iter().filter(|p| p.1 > 0.0).collect();
        parts.sort_by(|a, b| b.1.total_cmp(&a.1));
        parts.iter().find_map(|(m, _)| m.support(i, j))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Two taste groups: users 0–3 take items 0–2, users 4–7 items 3–5; user 8 holds item 0
    /// only and should be offered the rest of group one first.
    fn grouped() -> TrainMatrix {
        let mut cells = Vec::new();
        for u in 0..8u32 {
            let base = if u < 4 { 0 } else { 3 };
            for i in 0..3u32 {
                if (u + i) % 4 != 3 {
                    cells.push((u, base + i, 1.0));
                }
            }
        }
        cells.push((8, 0, 1.0));
        TrainMatrix::from_cells(9, 6, &mut cells)
    }

    fn ranks_group_one_first(model: &dyn Recommender, x: &TrainMatrix) {
        let (items, values) = x.row(8);
        let mut out = vec![0f32; 6];
        model.score(8, items, values, &mut out);
        let top = crate::recs::top_k(&out, 2, |i| i == 0);
        assert_eq!(
            top.iter()
                .copied()
                .collect::<std::collections::BTreeSet<_>>(),
            [1, 2].into(),
            "{} scores {out:?}",
            model.name()
        );
    }

    #[test]
    fn learned_models_find_the_users_group() {
        let x = grouped();
        let xt = x.transpose();
        // Two factors for two taste groups: with more, nine users are memorised.
        let config = RecsConfig {
            factors: 2,
            iterations: 10,
            ..Default::default()
        };
        ranks_group_one_first(&ItemKnn::fit(&x, &xt, 10), &x);
        ranks_group_one_first(&Ease::fit(&x, 1.0).unwrap(), &x);
        ranks_group_one_first(&Ials::fit(&x, &xt, &config, 1), &x);
    }

    #[test]
    fn repeated_cells_are_summed_and_transposed() {
        let mut cells = vec![(0, 1, 1.0), (0, 1, 2.0), (1, 0, 1.0)];
        let x = TrainMatrix::from_cells(2, 2, &mut cells);
        assert_eq!(x.row(0).0, &[1]);
        assert!((x.row(0).1[0] - 4f32.ln()).abs() < 1e-6);
        let xt = x.transpose();
        assert_eq!(xt.row(1).0, &[0]);
        assert_eq!(xt.row(0).0, &[1]);
    }

    #[test]
    fn ease_matches_its_closed_form_on_a_small_case() {
        // X = [[1,1],[1,0]] (values ln 2): G = XᵀX + λI; B = I − P/diag(P) off-diagonal.
        let mut cells = vec![(0, 0, 1.0), (0, 1, 1.0), (1, 0, 1.0)];
        let x = TrainMatrix::from_cells(2, 2, &mut cells);
        let v = 2f64.ln().powi(2);
        let lambda = 0.5;
        let (g00, g01, g11) = (2.0 * v + lambda, v, v + lambda);
        let det = g00 * g11 - g01 * g01;
        let (p00, p01, p11) = (g11 / det, -g01 / det, g00 / det);
        let ease = Ease::fit(&x, lambda).unwrap();
        assert!((ease.support(1, 0).unwrap() as f64 - (-p01 / p11)).abs() < 1e-5);
        assert!((ease.support(0, 1).unwrap() as f64 - (-p01 / p00)).abs() < 1e-5);
        assert_eq!(ease.support(0, 0), Some(0.0));
    }
}
