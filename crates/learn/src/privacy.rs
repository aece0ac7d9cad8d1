//! Differentially private customer reports: counts and sums over the unified customer table
//! with Laplace noise, for sharing outside (a brand partner, a marketplace).
//!
//! The unit of privacy is one customer row. Each customer falls in exactly one group and
//! adds 1 to its group's count and at most `clip` to its sum (monetary values are clipped
//! to [0, clip] first), so by parallel composition the count histogram has L1 sensitivity 1
//! and the sum histogram sensitivity `clip`. The budget ε is split evenly: ε/2 for the counts
//! (noise scale 2/ε) and ε/2 for the sums (scale 2·clip/ε); averages are computed from the
//! noisy values (post-processing costs no budget). The groups come from a fixed list (all
//! segments, or 1..=n platforms for the project's platforms), never from the data, so which
//! groups appear reveals nothing. Noisy values are rounded and clamped at zero (again
//! post-processing).
//!
//! Caveats, stated in the report: a person whose accounts identity resolution failed to
//! link counts as several customers, so the guarantee per *person* is ε times that number;
//! and each release spends ε again — publish one report per period, not one per request.
//!
//! Laplace sampling is written here (inverse CDF from a uniform draw of the operating
//! system–seeded generator) because `rand_distr` has no Laplace distribution.

use rand::Rng;
use serde::Serialize;

use crate::LearnError;
use shopfuse_identity::SEGMENTS;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReportGrouping {
    Segment,
    /// Number of platforms a customer uses.
    Platforms,
}

#[derive(Debug, Clone, Serialize)]
pub struct DpGroup {
    pub group: String,
    pub customers: f64,
    pub monetary_sum: f64,
    pub monetary_mean: Option<f64>,
}

#[derive(Debug, Clone, Serialize)]
pub struct DpReport {
    pub grouping: String,
    /// `None`: exact figures, for internal use only.
    pub epsilon: Option<f64>,
    pub clip: f64,
    pub count_sensitivity: f64,
    pub sum_sensitivity: f64,
    /// Laplace scale b of the count and sum noise (standard deviation √2·b).
    pub count_noise_scale: Option<f64>,
    pub sum_noise_scale: Option<f64>,
    pub groups: Vec<DpGroup>,
    pub note: String,
}

/// One draw of Laplace(0, scale).
pub fn laplace(scale: f64, rng: &mut impl Rng) -> f64 {
    // u in (-0.5, 0.5), excluding the endpoints where ln(0) would be taken.
    let mut u: f64 = rng.random::<f64>() - 0.5;
    while u.abs() >= 0.5 {
        u = rng.random::<f64>() - 0.5;
    }
    -scale * u.signum() * (1.0 - 2.0 * u.abs()).ln()
}

/// `customers`: per customer (segment, number of platforms, monetary value in the base
/// currency). `platforms` is the number of platforms the project declares (public).
pub fn customer_report(
    customers: &[(String, usize, f64)],
    grouping: ReportGrouping,
    platforms: usize,
    epsilon: Option<f64>,
    clip: f64,
    rng: &mut impl Rng,
) -> Result<DpReport, LearnError> {
    check_privacy_settings(epsilon, clip)?;
    let domain = grouping.domain(platforms);
    let (counts, sums) = grouped_totals(customers, grouping, &domain, platforms, epsilon, clip);
    let (count_scale, sum_scale) = match epsilon {
        Some(e) => (Some(2.0 / e), Some(2.0 * clip / e)),
        None => (None, None),
    };
    let groups = domain
        .into_iter()
        .enumerate()
        .map(|(g, group)| {
            let (count, sum) = match (count_scale, sum_scale) {
                (Some(bc), Some(bs)) => (
                    (counts[g] + laplace(bc, rng)).round().max(0.0),
                    (sums[g] + laplace(bs, rng)).round().max(0.0),
                ),
                _ => (counts[g], (sums[g] * 100.0).round() / 100.0),
            };
            DpGroup {
                group,
                customers: count,
                monetary_sum: sum,
                monetary_mean: (count >= 1.0).then(|| (sum / count * 100.0).round() / 100.0),
            }
        })
        .collect();
    let note = match epsilon {
        Some(e) => format!(
            "ε = {e} per release (ε/2 counts, ε/2 sums), one customer changes one count by 1 and one sum by at most {clip} (values clipped to [0, {clip}]); a person split across k customers is protected at k·ε"
        ),
        None => "exact figures, not differentially private: for internal use only".into(),
    };
    Ok(DpReport {
        grouping: match grouping {
            ReportGrouping::Segment => "segment".into(),
            ReportGrouping::Platforms => "platforms".into(),
        },
        epsilon,
        clip,
        count_sensitivity: 1.0,
        sum_sensitivity: clip,
        count_noise_scale: count_scale,
        sum_noise_scale: sum_scale,
        groups,
        note,
    })
}

/// Refuses a privacy budget or clipping bound that is not a positive number.
fn check_privacy_settings(epsilon: Option<f64>, clip: f64) -> Result<(), LearnError> {
    if let Some(e) = epsilon {
        if !(e.is_finite() && e > 0.0) {
            return Err(LearnError::Invalid(format!(
                "--dp-epsilon must be a positive number (is {e}); 0.1–1 is usual for a public release"
            )));
        }
    }
    if !(clip.is_finite() && clip > 0.0) {
        return Err(LearnError::Invalid(format!(
            "--dp-clip must be a positive amount in the base currency (is {clip})"
        )));
    }
    Ok(())
}

impl ReportGrouping {
    /// Every group the report shows, including empty ones (the domain is public; which groups
    /// are non-empty is not).
    fn domain(self, platforms: usize) -> Vec<String> {
        match self {
            ReportGrouping::Segment => SEGMENTS.iter().map(|s| s.to_string()).collect(),
            ReportGrouping::Platforms => (1..=platforms.max(1))
                .map(|n| format!("{n} platform{}", if n == 1 { "" } else { "s" }))
                .collect(),
        }
    }
}

/// Customers and monetary value per group of `domain`, before noise.
fn grouped_totals(
    customers: &[(String, usize, f64)],
    grouping: ReportGrouping,
    domain: &[String],
    platforms: usize,
    epsilon: Option<f64>,
    clip: f64,
) -> (Vec<f64>, Vec<f64>) {
    let group_of = |(segment, used, _): &(String, usize, f64)| -> Option<usize> {
        match grouping {
            ReportGrouping::Segment => domain.iter().position(|d| d == segment),
            ReportGrouping::Platforms => Some(used.clamp(&1, &platforms.max(1)) - 1),
        }
    };
    let mut counts = vec![0.0; domain.len()];
    let mut sums = vec![0.0; domain.len()];
    for c in customers {
        if let Some(g) = group_of(c) {
            counts[g] += 1.0;
            // Clipping bounds the sensitivity; exact internal figures need no bound.
            sums[g] += if epsilon.is_some() {
                c.2.clamp(0.0, clip)
            } else {
                c.2
            };
        }
    }
    (counts, sums)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;

    #[test]
    fn laplace_noise_has_the_calibrated_spread() {
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        let n = 200_000;
        let draws: Vec<f64> = (0..n).map(|_| laplace(2.0, &mut rng)).collect();
        let mean = draws.iter().sum::<f64>() / n as f64;
        let mean_abs = draws.iter().map(|x| x.abs()).sum::<f64>() / n as f64;
        // Laplace(0, b): mean 0, E|X| = b.
        assert!(mean.abs() < 0.03, "mean {mean}");
        assert!((mean_abs - 2.0).abs() < 0.03, "E|X| {mean_abs}");
    }

    fn customers() -> Vec<(String, usize, f64)> {
        (0..1000)
            .map(|i| {
                (
                    SEGMENTS[i % 3].to_string(),
                    1 + i % 2,
                    if i == 0 { 1e9 } else { 100.0 },
                )
            })
            .collect()
    }

    #[test]
    fn exact_report_counts_every_customer_once_and_clips_sums() {
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        let r = customer_report(
            &customers(),
            ReportGrouping::Segment,
            4,
            None,
            500.0,
            &mut rng,
        )
        .unwrap();
        assert_eq!(r.groups.len(), SEGMENTS.len());
        assert_eq!(r.groups.iter().map(|g| g.customers).sum::<f64>(), 1000.0);
        assert_eq!(r.groups[0].monetary_sum, 1e9 + 333.0 * 100.0);
        // Under differential privacy the billionaire adds at most the clip (noise of scale
        // 2·500/1e6 is far below the rounding).
        let dp = customer_report(
            &customers(),
            ReportGrouping::Segment,
            4,
            Some(1e6),
            500.0,
            &mut rng,
        )
        .unwrap();
        assert_eq!(dp.groups[0].monetary_sum, 500.0 + 333.0 * 100.0);
        assert_eq!(dp.groups[0].customers, 334.0);
        assert_eq!(r.groups[8].customers, 0.0);
        let p = customer_report(
            &customers(),
            ReportGrouping::Platforms,
            4,
            None,
            500.0,
            &mut rng,
        )
        .unwrap();
        assert_eq!(p.groups.len(), 4);
        assert_eq!(p.groups[0].customers, 500.0);
    }

    #[test]
    fn noisy_report_stays_near_the_truth_and_differs_between_releases() {
        let mut rng = ChaCha8Rng::seed_from_u64(7);
        let exact = customer_report(
            &customers(),
            ReportGrouping::Segment,
            4,
            None,
            500.0,
            &mut rng,
        )
        .unwrap();
        let a = customer_report(
            &customers(),
            ReportGrouping::Segment,
            4,
            Some(1.0),
            500.0,
            &mut rng,
        )
        .unwrap();
        let b = customer_report(
            &customers(),
            ReportGrouping::Segment,
            4,
            Some(1.0),
            500.0,
            &mut rng,
        )
        .unwrap();
        assert_eq!(a.count_noise_scale, Some(2.0));
        assert_eq!(a.sum_noise_scale, Some(1000.0));
        let moved: f64 = a
            .groups
            .iter()
            .zip(&exact.groups)
            .map(|(x, y)| (x.customers - y.customers).abs())
            .sum();
        // Nine groups with noise of scale 2: far below 9 × 20 in any plausible draw.
        assert!(moved < 180.0, "{moved}");
        assert!(a.groups.iter().all(|g| g.customers >= 0.0));
        assert_ne!(
            a.groups.iter().map(|g| g.customers).collect::<Vec<_>>(),
            b.groups.iter().map(|g| g.customers).collect::<Vec<_>>()
        );
        assert!(
            customer_report(&[], ReportGrouping::Segment, 4, Some(0.0), 1.0, &mut rng).is_err()
        );
    }
}
