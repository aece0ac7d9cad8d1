//! Vector math shared by the stages: dot product, cosine, top-k selection. One home, so the
//! neighbour search of resolve and the scoring of recommendations rank the same way.

/// Cosine similarity; 0 when either vector is all zeros.
pub fn cosine(a: &[f32], b: &[f32]) -> f32 {
    let (mut dot, mut na, mut nb) = (0.0f64, 0.0f64, 0.0f64);
    for (x, y) in a.iter().zip(b) {
        dot += f64::from(*x) * f64::from(*y);
        na += f64::from(*x) * f64::from(*x);
        nb += f64::from(*y) * f64::from(*y);
    }
    if na == 0.0 || nb == 0.0 {
        0.0
    } else {
        (dot / (na.sqrt() * nb.sqrt())) as f32
    }
}

/// Dot product of two f32 slices in eight independent lanes, so the compiler vectorises it
/// (a single running sum is a dependency chain it may not reorder). The neighbour search of a
/// large catalogue is mostly this function, so where the CPU has AVX2 the same code runs
/// compiled for it (one 256-bit register per eight lanes; the same sums in the same order, so
/// the same result bit for bit).
pub fn dot(a: &[f32], b: &[f32]) -> f32 {
    #[cfg(target_arch = "x86_64")]
    {
        if std::arch::is_x86_feature_detected!("avx2") {
            // SAFETY: the CPU supports AVX2, checked just above.
            return unsafe { dot_avx2(a, b) };
        }
    }
    dot_lanes(a, b)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn dot_avx2(a: &[f32], b: &[f32]) -> f32 {
    dot_lanes(a, b)
}

#[inline(always)]
fn dot_lanes(a: &[f32], b: &[f32]) -> f32 {
    let mut lanes = [0f32; 8];
    let (ca, cb) = (a.chunks_exact(8), b.chunks_exact(8));
    let tail: f32 = ca
        .remainder()
        .iter()
        .zip(cb.remainder())
        .map(|(x, y)| x * y)
        .sum();
    for (x, y) in ca.zip(cb) {
        for k in 0..8 {
            lanes[k] += x[k] * y[k];
        }
    }
    lanes.iter().sum::<f32>() + tail
}

/// The `k` best candidates of `scores` (highest first, ties by index), skipping `excluded`.
pub fn top_k(scores: &[f32], k: usize, excluded: impl Fn(usize) -> bool) -> Vec<usize> {
    let mut idx: Vec<usize> = (0..scores.len())
        .filter(|&i| !excluded(i) && scores[i].is_finite())
        .collect();
    let by_score = |a: &usize, b: &usize| scores[*b].total_cmp(&scores[*a]).then(a.cmp(b));
    if idx.len() > k {
        idx.select_nth_unstable_by(k, by_score);
        idx.truncate(k);
    }
    idx.sort_by(by_score);
    idx
}

/// The `k` largest of `(similarity, index)`, best first; ties to the smaller index.
pub fn top_k_of(mut scored: Vec<(f32, usize)>, k: usize) -> Vec<usize> {
    let order = |a: &(f32, usize), b: &(f32, usize)| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1));
    let k = k.min(scored.len());
    if k == 0 {
        return Vec::new();
    }
    scored.select_nth_unstable_by(k - 1, order);
    scored.truncate(k);
    scored.sort_by(order);
    scored.into_iter().map(|(_, j)| j).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dot_in_lanes_matches_the_plain_sum_on_exact_values() {
        let a: Vec<f32> = (0..19).map(|i| i as f32).collect();
        let b: Vec<f32> = (0..19).map(|i| (i % 3) as f32).collect();
        let plain: f32 = a.iter().zip(&b).map(|(x, y)| x * y).sum();
        assert_eq!(dot(&a, &b), plain);
    }

    #[test]
    fn top_k_orders_by_score_ties_by_index() {
        let s = [0.1, 0.9, 0.5, 0.9, f32::NAN, 0.7];
        assert_eq!(top_k(&s, 3, |_| false), vec![1, 3, 5]);
        assert_eq!(top_k(&s, 3, |i| i == 1), vec![3, 5, 2]);
        assert_eq!(top_k(&s, 10, |_| false), vec![1, 3, 5, 2, 0]);
        assert!(top_k(&s, 0, |_| false).is_empty());
        let pairs = vec![(0.2, 7), (0.9, 3), (0.9, 1), (0.5, 0)];
        assert_eq!(top_k_of(pairs, 3), vec![1, 3, 0]);
    }
}
