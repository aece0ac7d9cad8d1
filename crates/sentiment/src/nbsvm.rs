//! NB-SVM (Wang & Manning 2012, in the logistic form of Mesnil et al. 2014): each binarised
//! n-gram indicator is scaled by its naive-Bayes **log-count ratio**
//! `r = log((p / |p|₁) / (q / |q|₁))`, `p`/`q` the smoothed counts of the n-gram in positive
//! and negative texts, and a logistic regression is fitted on the scaled indicators. The NB
//! ratio gives rare but telling n-grams their weight from the start; the regression corrects
//! what naive Bayes double-counts. It is the strongest linear model on short review
//! sentiment in both papers, and it reads Chinese without a segmenter (see [`crate::ngrams`]).

use std::collections::HashMap;

use serde::{Deserialize, Serialize};

use crate::logistic::{Logistic, SparseRow};
use crate::ngrams::{ngram_hashes, normalise};
use crate::SentimentError;

/// Settings of one NB-SVM fit.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq)]
pub struct NbSvmSettings {
    /// N-grams seen in fewer training texts than this are dropped.
    pub min_count: u32,
    /// Laplace smoothing of the NB counts.
    pub alpha: f64,
    /// L2 penalty of the regression.
    pub l2: f64,
}

impl Default for NbSvmSettings {
    fn default() -> Self {
        NbSvmSettings {
            min_count: 1,
            alpha: 1.0,
            l2: 1e-4,
        }
    }
}

/// A fitted NB-SVM: the vocabulary (n-gram hash → column), each column's log-count ratio, and
/// the regression over the scaled indicators.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct NbSvm {
    pub settings: NbSvmSettings,
    vocabulary: HashMap<u64, u32>,
    ratios: Vec<f32>,
    model: Logistic,
}

impl NbSvm {
    /// Fits on `texts` labelled `labels` (true = positive).
    pub fn fit(
        texts: &[&str],
        labels: &[bool],
        settings: NbSvmSettings,
    ) -> Result<NbSvm, SentimentError> {
        let grams: Vec<Vec<u64>> = texts.iter().map(|t| ngram_hashes(&normalise(t))).collect();
        let (vocabulary, counts) = vocabulary(&grams, labels, settings.min_count);
        let ratios = log_count_ratios(&counts, settings.alpha);
        let rows: Vec<SparseRow> = grams
            .iter()
            .map(|g| scaled_row(g, &vocabulary, &ratios))
            .collect();
        let model = Logistic::fit(&rows, labels, ratios.len(), settings.l2, 300)?;
        Ok(NbSvm {
            settings,
            vocabulary,
            ratios,
            model,
        })
    }

    /// The log-odds that `text` is positive.
    pub fn logit(&self, text: &str) -> f64 {
        let grams = ngram_hashes(&normalise(text));
        self.model
            .logit(&scaled_row(&grams, &self.vocabulary, &self.ratios))
    }

    /// How many n-grams the model knows.
    pub fn vocabulary_size(&self) -> usize {
        self.vocabulary.len()
    }
}

/// Columns for the n-grams seen in at least `min_count` texts, with their (positive,
/// negative) document counts.
fn vocabulary(
    grams: &[Vec<u64>],
    labels: &[bool],
    min_count: u32,
) -> (HashMap<u64, u32>, Vec<(u32, u32)>) {
    let mut seen: HashMap<u64, (u32, u32)> = HashMap::new();
    for (g, &y) in grams.iter().zip(labels) {
        for &h in g {
            let c = seen.entry(h).or_default();
            if y {
                c.0 += 1
            } else {
                c.1 += 1
            }
        }
    }
    let mut kept: Vec<(u64, (u32, u32))> = seen
        .into_iter()
        .filter(|(_, (p, n))| p + n >= min_count)
        .collect();
    // Column order by hash, so the same data always gives the same model.
    kept.sort_unstable_by_key(|(h, _)| *h);
    let vocabulary = kept
        .iter()
        .enumerate()
        .map(|(i, (h, _))| (*h, i as u32))
        .collect();
    (vocabulary, kept.into_iter().map(|(_, c)| c).collect())
}

fn log_count_ratios(counts: &[(u32, u32)], alpha: f64) -> Vec<f32> {
    let total_p: f64 = counts.iter().map(|c| c.0 as f64 + alpha).sum();
    let total_n: f64 = counts.iter().map(|c| c.1 as f64 + alpha).sum();
    counts
        .iter()
        .map(|&(p, n)| {
            (((p as f64 + alpha) / total_p) / ((n as f64 + alpha) / total_n)).ln() as f32
        })
        .collect()
}

fn scaled_row(grams: &[u64], vocabulary: &HashMap<u64, u32>, ratios: &[f32]) -> SparseRow {
    grams
        .iter()
        .filter_map(|h| vocabulary.get(h))
        .map(|&j| (j, ratios[j as usize]))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn learns_polarity_from_characters_and_words() {
        let texts = [
            "质量很好，非常满意",
            "很好用，推荐",
            "太差了，很失望",
            "质量差，退货",
            "great phone, love it",
            "terrible, broke after a day",
        ];
        let labels = [true, true, false, false, true, false];
        let model = NbSvm::fit(&texts, &labels, NbSvmSettings::default()).unwrap();
        assert!(model.logit("很好，满意") > 0.0);
        assert!(model.logit("太差，失望") < 0.0);
        assert!(model.logit("love it") > 0.0);
        assert!(model.logit("terrible") < 0.0);
    }
}
