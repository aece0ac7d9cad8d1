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

/// `a · t` for each target `t`, each bit for bit equal to [`dot`]`(a, t)`. Four products run
/// side by side: one [`dot`] is a chain of dependent additions (its lanes must be summed in
/// order to stay exact), so on its own it waits on the adder; four independent chains fill
/// that wait. The exact similarity matrices and reranks of resolve are mostly this.
pub fn dots(a: &[f32], targets: &[&[f32]]) -> Vec<f32> {
    let mut out = Vec::with_capacity(targets.len());
    #[cfg(target_arch = "x86_64")]
    {
        if std::arch::is_x86_feature_detected!("avx2") {
            // SAFETY: the CPU supports AVX2, checked just above.
            unsafe { dots_avx2(a, targets, &mut out) };
            return out;
        }
    }
    dots_one_at_a_time(a, targets, &mut out);
    out
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn dots_avx2(a: &[f32], targets: &[&[f32]], out: &mut Vec<f32>) {
    use std::arch::x86_64::*;
    let mut fours = targets.chunks_exact(4);
    for t in &mut fours {
        let n = t.iter().fold(a.len(), |n, t| n.min(t.len()));
        let whole = n - n % 8;
        let mut acc = [_mm256_setzero_ps(); 4];
        let mut c = 0;
        while c < whole {
            // SAFETY: `c + 8 <= whole <= n`, within `a` and every target.
            let x = _mm256_loadu_ps(a.as_ptr().add(c));
            for (acc, t) in acc.iter_mut().zip(t) {
                let y = _mm256_loadu_ps(t.as_ptr().add(c));
                // A product, then a sum: `dot`'s lane arithmetic exactly (no fused multiply-add).
                *acc = _mm256_add_ps(*acc, _mm256_mul_ps(x, y));
            }
            c += 8;
        }
        for (acc, t) in acc.iter().zip(t) {
            let mut lanes = [0f32; 8];
            _mm256_storeu_ps(lanes.as_mut_ptr(), *acc);
            let tail: f32 = a[whole..n]
                .iter()
                .zip(&t[whole..n])
                .map(|(x, y)| x * y)
                .sum();
            out.push(lanes.iter().sum::<f32>() + tail);
        }
    }
    out.extend(fours.remainder().iter().map(|t| dot_lanes(a, t)));
}

/// [`dots`] without AVX2: one product at a time.
fn dots_one_at_a_time(a: &[f32], targets: &[&[f32]], out: &mut Vec<f32>) {
    out.extend(targets.iter().map(|t| dot_lanes(a, t)));
}

/// `a · b` summed in another order than [`dot`]: four independent 8-lane accumulators, fused
/// multiply-adds where the CPU has them. On 128 cached floats it took 10 ns against
/// [`dot`]'s 14 (Zen 3), and it equals [`dot`] only up to rounding (the last bits differ).
/// For an approximate neighbour index, whose proposals are reranked with [`dot`]: its
/// distances are most of an index's build and search, and an index is approximate by design.
/// Still a function of its inputs alone, so an index built twice on the same data is the same
/// index.
pub fn dot_unordered(a: &[f32], b: &[f32]) -> f32 {
    #[cfg(target_arch = "x86_64")]
    {
        if std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma")
        {
            // SAFETY: the CPU supports AVX2 and FMA, checked just above.
            return unsafe { dot_unordered_fma(a, b) };
        }
    }
    dot_lanes(a, b)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn dot_unordered_fma(a: &[f32], b: &[f32]) -> f32 {
    use std::arch::x86_64::*;
    let n = a.len().min(b.len());
    let (pa, pb) = (a.as_ptr(), b.as_ptr());
    let mut acc = [_mm256_setzero_ps(); 4];
    let mut i = 0;
    // SAFETY (all loads): every load reads 8 floats at `i` with `i + 8 <= n`, inside both slices.
    while i + 32 <= n {
        for (k, acc) in acc.iter_mut().enumerate() {
            let (x, y) = (
                _mm256_loadu_ps(pa.add(i + 8 * k)),
                _mm256_loadu_ps(pb.add(i + 8 * k)),
            );
            *acc = _mm256_fmadd_ps(x, y, *acc);
        }
        i += 32;
    }
    while i + 8 <= n {
        let (x, y) = (_mm256_loadu_ps(pa.add(i)), _mm256_loadu_ps(pb.add(i)));
        acc[0] = _mm256_fmadd_ps(x, y, acc[0]);
        i += 8;
    }
    let sum = _mm256_add_ps(_mm256_add_ps(acc[0], acc[1]), _mm256_add_ps(acc[2], acc[3]));
    let mut lanes = [0f32; 8];
    _mm256_storeu_ps(lanes.as_mut_ptr(), sum);
    let tail: f32 = a[i..n].iter().zip(&b[i..n]).map(|(x, y)| x * y).sum();
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

    fn vectors(n: usize, len: usize, seed: u32) -> Vec<Vec<f32>> {
        // A small LCG: arbitrary, reproducible floats with no exact sums.
        let mut x = seed;
        (0..n)
            .map(|_| {
                (0..len)
                    .map(|_| {
                        x = x.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
                        (x >> 8) as f32 / (1 << 24) as f32 - 0.5
                    })
                    .collect()
            })
            .collect()
    }

    #[test]
    fn dots_equal_dot_bit_for_bit() {
        for len in [0, 3, 8, 19, 128, 512] {
            let a = &vectors(1, len, 1)[0];
            let targets = vectors(11, len, 2);
            let refs: Vec<&[f32]> = targets.iter().map(Vec::as_slice).collect();
            let batched = dots(a, &refs);
            let single: Vec<f32> = refs.iter().map(|t| dot(a, t)).collect();
            assert_eq!(
                batched.iter().map(|v| v.to_bits()).collect::<Vec<_>>(),
                single.iter().map(|v| v.to_bits()).collect::<Vec<_>>(),
                "length {len}"
            );
        }
    }

    #[test]
    fn dot_unordered_agrees_with_dot_up_to_rounding() {
        for len in [0, 5, 8, 40, 128, 515] {
            let v = vectors(2, len, 3);
            let (ordered, unordered) = (dot(&v[0], &v[1]), dot_unordered(&v[0], &v[1]));
            let scale: f32 = v[0].iter().zip(&v[1]).map(|(x, y)| (x * y).abs()).sum();
            assert!(
                (ordered - unordered).abs() <= 1e-5 * scale.max(1.0),
                "length {len}: {ordered} vs {unordered}"
            );
        }
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
