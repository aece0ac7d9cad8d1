//! **Alerts**: when the negative share of a golden product's reviews — overall or on one
//! aspect — jumps against its own history. Windows of `window_days` end every 7 days; a
//! window is flagged when it has enough mentions, its negative share is at least `min_jump`
//! above the history's, and the exact one-sided binomial probability of so many negative
//! mentions at the history's share is at most `max_p_value`. The history is every earlier mention of the same product and aspect, shrunk
//! towards the aspect's negative share over the whole catalogue (10 pseudo-mentions), so a
//! product with little history is compared with what is usual for the aspect. Consecutive
//! flagged windows make one alert.

use std::collections::BTreeMap;

use serde::Serialize;
use shopfuse_core::config::SentimentConfig;

const DAY_US: i64 = 86_400_000_000;
const PRIOR_WEIGHT: f64 = 10.0;

/// One mention to monitor: a review's overall polarity (`aspect = "overall"`) or one aspect
/// clause's.
#[derive(Debug, Clone)]
pub struct Mention {
    pub golden_id: String,
    pub aspect: String,
    pub at: i64,
    pub negative: bool,
    pub platform: String,
    /// Index of the review (for examples), and how negative it is (1 − p_positive).
    pub review: usize,
    pub negativity: f64,
}

/// A raised alert.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Alert {
    pub golden_id: String,
    pub aspect: String,
    pub window_start: i64,
    pub window_end: i64,
    /// Mentions and negative ones in the strongest window.
    pub mentions: usize,
    pub negative: usize,
    pub negative_share: f64,
    pub baseline_share: f64,
    pub z: f64,
    pub p_value: f64,
    /// Platforms of the negative mentions in the alert's span, with counts.
    pub platforms: String,
    /// The most negative reviews in the span (indices), most negative first.
    pub examples: Vec<usize>,
}

/// Every alert of `mentions`.
pub fn alerts(mentions: &[Mention], config: &SentimentConfig) -> Vec<Alert> {
    let mut series: BTreeMap<(&str, &str), Vec<&Mention>> = BTreeMap::new();
    let mut aspect_totals: BTreeMap<&str, (f64, f64)> = BTreeMap::new();
    for m in mentions {
        series
            .entry((m.golden_id.as_str(), m.aspect.as_str()))
            .or_default()
            .push(m);
        let t = aspect_totals.entry(m.aspect.as_str()).or_default();
        t.0 += m.negative as u8 as f64;
        t.1 += 1.0;
    }
    let mut out = Vec::new();
    for ((_, aspect), mut list) in series {
        list.sort_by_key(|m| m.at);
        let (neg, n) = aspect_totals[aspect];
        let prior = (neg / n).clamp(0.01, 0.99);
        out.extend(alerts_of(&list, prior, config));
    }
    out
}

struct Window {
    start: i64,
    end: i64,
    mentions: usize,
    negative: usize,
    baseline: f64,
    z: f64,
    p_value: f64,
}

fn alerts_of(list: &[&Mention], prior: f64, config: &SentimentConfig) -> Vec<Alert> {
    let (Some(first), Some(last)) = (list.first(), list.last()) else {
        return Vec::new();
    };
    let width = config.alert_window_days as i64 * DAY_US;
    let mut flagged: Vec<Window> = Vec::new();
    let mut end = first.at + width;
    while end <= last.at + 7 * DAY_US {
        let start = end - width;
        let before = list.partition_point(|m| m.at < start);
        let upto = list.partition_point(|m| m.at < end);
        let history_neg = list[..before].iter().filter(|m| m.negative).count() as f64;
        let baseline = (history_neg + PRIOR_WEIGHT * prior) / (before as f64 + PRIOR_WEIGHT);
        let window = &list[before..upto];
        let negative = window.iter().filter(|m| m.negative).count();
        let n = window.len();
        if n >= config.alert_min_reviews.max(1) {
            let share = negative as f64 / n as f64;
            let sd = (n as f64 * baseline * (1.0 - baseline)).sqrt();
            let z = (negative as f64 - n as f64 * baseline) / sd.max(1e-9);
            let p_value = binomial_tail(n, negative, baseline);
            if share - baseline >= config.alert_min_jump && p_value <= config.alert_max_p_value {
                flagged.push(Window {
                    start,
                    end,
                    mentions: n,
                    negative,
                    baseline,
                    z,
                    p_value,
                });
            }
        }
        end += 7 * DAY_US;
    }
    merge(list, flagged)
}

/// Overlapping flagged windows become one alert, reported by its strongest window.
fn merge(list: &[&Mention], flagged: Vec<Window>) -> Vec<Alert> {
    let mut groups: Vec<Vec<Window>> = Vec::new();
    for w in flagged {
        match groups.last_mut() {
            Some(g) if g.last().is_some_and(|l| w.start <= l.end) => g.push(w),
            _ => groups.push(vec![w]),
        }
    }
    groups
        .into_iter()
        .map(|g| {
            let (start, end) = (g[0].start, g[g.len() - 1].end);
            let best = g
                .iter()
                .min_by(|a, b| a.p_value.total_cmp(&b.p_value))
                .expect("a window");
            let span: Vec<&&Mention> = list
                .iter()
                .filter(|m| (start..end).contains(&m.at) && m.negative)
                .collect();
            let mut platforms: BTreeMap<&str, usize> = BTreeMap::new();
            for m in &span {
                *platforms.entry(m.platform.as_str()).or_default() += 1;
            }
            let mut worst: Vec<&&Mention> = span.clone();
            worst.sort_by(|a, b| b.negativity.total_cmp(&a.negativity));
            let mut examples: Vec<usize> = Vec::new();
            for m in worst {
                if !examples.contains(&m.review) && examples.len() < 3 {
                    examples.push(m.review);
                }
            }
            Alert {
                golden_id: list[0].golden_id.clone(),
                aspect: list[0].aspect.clone(),
                window_start: start,
                window_end: end,
                mentions: best.mentions,
                negative: best.negative,
                negative_share: best.negative as f64 / best.mentions as f64,
                baseline_share: best.baseline,
                z: best.z,
                p_value: best.p_value,
                platforms: platforms
                    .iter()
                    .map(|(p, n)| format!("{p}:{n}"))
                    .collect::<Vec<_>>()
                    .join(";"),
                examples,
            }
        })
        .collect()
}

/// P(X ≥ k) for X ~ Binomial(n, p), summed in log space from k up.
pub fn binomial_tail(n: usize, k: usize, p: f64) -> f64 {
    if k == 0 {
        return 1.0;
    }
    if k > n {
        return 0.0;
    }
    let p = p.clamp(1e-12, 1.0 - 1e-12);
    let ln_choose = |i: usize| -> f64 {
        (0..i)
            .map(|j| ((n - j) as f64).ln() - ((j + 1) as f64).ln())
            .sum()
    };
    let mut ln_term = ln_choose(k) + k as f64 * p.ln() + (n - k) as f64 * (1.0 - p).ln();
    let mut sum = 0.0;
    for i in k..=n {
        sum += ln_term.exp();
        // pmf(i + 1) / pmf(i) = (n − i) / (i + 1) · p / (1 − p)
        ln_term += ((n - i) as f64).ln() - ((i + 1) as f64).ln() + p.ln() - (1.0 - p).ln();
    }
    sum.min(1.0)
}

#[cfg(test)]
mod tests {
    #[test]
    fn binomial_tail_matches_hand_figures() {
        // P(X ≥ 2), n 4, p 0.03 = 1 − 0.97⁴ − 4 · 0.03 · 0.97³
        let exact = 1.0 - 0.97f64.powi(4) - 4.0 * 0.03 * 0.97f64.powi(3);
        assert!((binomial_tail(4, 2, 0.03) - exact).abs() < 1e-12);
        assert_eq!(binomial_tail(5, 0, 0.2), 1.0);
        assert!((binomial_tail(3, 3, 0.5) - 0.125).abs() < 1e-12);
    }

    use super::*;

    fn mention(day: i64, negative: bool) -> Mention {
        Mention {
            golden_id: "GP1".into(),
            aspect: "quality".into(),
            at: day * DAY_US,
            negative,
            platform: "jd".into(),
            review: day as usize,
            negativity: if negative { 0.9 } else { 0.1 },
        }
    }

    #[test]
    fn a_burst_of_negative_mentions_after_a_calm_history_is_one_alert() {
        let mut list: Vec<Mention> = (0..200).map(|d| mention(d * 2, d % 10 == 0)).collect();
        // Days 400–430: eight of ten negative.
        list.extend((0..10).map(|i| mention(400 + i * 3, i < 8)));
        let alerts = alerts(&list, &SentimentConfig::default());
        assert_eq!(alerts.len(), 1, "{alerts:?}");
        let a = &alerts[0];
        assert!(a.window_start <= 400 * DAY_US + 21 * DAY_US && a.window_end >= 400 * DAY_US);
        assert!(a.negative_share > 0.6 && a.baseline_share < 0.2);
        assert_eq!(a.examples.len(), 3);
    }

    #[test]
    fn a_steady_negative_share_raises_nothing() {
        let list: Vec<Mention> = (0..300).map(|d| mention(d, d % 3 == 0)).collect();
        assert!(alerts(&list, &SentimentConfig::default()).is_empty());
    }
}
