//! The learned match probability: a gradient-boosted tree model (`forust-ml`, an XGBoost-style
//! histogram GBM in pure Rust with missing-value splits) over the pair features, with the
//! decision threshold chosen on a validation split, and `eval pairs` on labelled benchmark
//! files.

use std::collections::HashMap;
use std::time::Instant;

use rayon::prelude::*;

use forust_ml::gradientbooster::{ContributionsMethod, GradientBooster, ImportanceMethod};
use forust_ml::objective::ObjectiveType;
use forust_ml::Matrix;

use crate::scoring_forest::ScoringForest;
use serde::Serialize;
use shopfuse_core::encoder::Encoder;
pub use shopfuse_core::metrics::Scores;
use shopfuse_core::{NoProgress, Progress};
use shopfuse_embed::cross_encoder::TokenWeight;
use shopfuse_embed::{CrossEncoder, EmbeddingCache};

use crate::blocking::{self, BlockingConfig, BlockingQuality};
use crate::features::{self, Idf, Prepared};
use crate::learned::{self, SparseRow, TokenScope};
use crate::pairs::{LabelledPair, Record};
use crate::token_index::TokenIndex;

/// Tree models per bag.
const BAGS: usize = 5;
/// Passes of the sparse logistic models over the training pairs.
const LEARNED_EPOCHS: usize = 12;

/// How a learned model sees a pair.
#[derive(Debug, Clone, Copy)]
pub enum LearnedView {
    Tokens(TokenScope),
    Embedding,
    /// The second encoder's vectors (see [`PairFeaturizer::add_second_encoder`]).
    SecondEmbedding,
}

impl LearnedView {
    /// The view of the pair of records `a` and `b` of `featurizer`.
    fn row(self, featurizer: &PairFeaturizer, a: usize, b: usize) -> SparseRow {
        let prepared = featurizer.prepared();
        match self {
            LearnedView::Tokens(scope) => learned::token_row(&featurizer.tokens, a, b, scope),
            LearnedView::Embedding => learned::embedding_row(&prepared[a], &prepared[b]),
            LearnedView::SecondEmbedding => {
                learned::second_embedding_row(&prepared[a], &prepared[b])
            }
        }
    }
}

/// The learned models stacked under the trees, with their feature names.
pub const LEARNED_MODELS: [(&str, LearnedView); 3] = [
    (
        "learned.title_token_logit",
        LearnedView::Tokens(TokenScope::Main),
    ),
    (
        "learned.all_token_logit",
        LearnedView::Tokens(TokenScope::All),
    ),
    ("learned.embedding_logit", LearnedView::Embedding),
];

/// The learned model over the second encoder's vectors, when the featurizer has one.
pub const SECOND_ENCODER_LEARNED_MODEL: (&str, LearnedView) = (
    "learned.second_embedding_logit",
    LearnedView::SecondEmbedding,
);

/// What can stop the matcher.
#[derive(Debug, thiserror::Error)]
pub enum MatchError {
    /// The labelled pairs cannot train or evaluate a model (no positives, a split without
    /// pairs …); the message says which and what to supply.
    #[error("{0}")]
    Invalid(String),
    /// A record's text could not be encoded or cached.
    #[error("encoding the records failed")]
    Encoder(#[from] shopfuse_embed::cache::CacheError),
    /// The gradient-boosted trees could not be fitted.
    #[error("model training failed")]
    Train(#[source] forust_ml::errors::ForustError),
    /// The cross-encoder could not read the pairs.
    #[error("the cross-encoder failed")]
    CrossEncoder(#[from] shopfuse_embed::EncoderError),
}

/// The threshold with the best F1 on (probabilities, labels); ties go to the higher threshold.
pub fn best_threshold(probabilities: &[f64], labels: &[bool]) -> (f64, Scores) {
    let mut candidates: Vec<f64> = probabilities.to_vec();
    candidates.sort_by(f64::total_cmp);
    candidates.dedup();
    let mut best = (0.5, Scores::of(probabilities, labels, 0.5));
    for t in candidates {
        let s = Scores::of(probabilities, labels, t);
        if s.f1 > best.1.f1 || (s.f1 == best.1.f1 && t > best.0) {
            best = (t, s);
        }
    }
    best
}

/// The middle of the range of thresholds that reach the best F1 on (probabilities, labels).
/// With few validation pairs the best F1 is reached on a wide plateau; its upper end
/// (what [`best_threshold`] returns) sits right under the least confident validation match
/// and so misses the slightly harder matches of the data being resolved.
pub fn plateau_threshold(probabilities: &[f64], labels: &[bool]) -> f64 {
    let (_, best) = best_threshold(probabilities, labels);
    let mut candidates: Vec<f64> = probabilities.to_vec();
    candidates.sort_by(f64::total_cmp);
    candidates.dedup();
    let reaching: Vec<f64> = candidates
        .into_iter()
        .filter(|&t| Scores::of(probabilities, labels, t).f1 >= best.f1)
        .collect();
    match (reaching.first(), reaching.last()) {
        (Some(lo), Some(hi)) => {
            // The plateau starts just above the highest probability below `lo`.
            let below = probabilities
                .iter()
                .copied()
                .filter(|p| p < lo)
                .fold(f64::NEG_INFINITY, f64::max);
            let start = if below.is_finite() { below } else { *lo };
            (start + hi) / 2.0
        }
        _ => 0.5,
    }
}

/// The pair classifier: features → match probability, plus its decision threshold.
pub struct PairModel {
    /// Bagged: trees grown from different row/column subsamples, probabilities averaged.
    boosters: Vec<GradientBooster>,
    /// The same trees flattened for scoring (`None`: forust's own prediction is used).
    forest: Option<ScoringForest>,
    pub threshold: f64,
    pub feature_names: Vec<String>,
}

fn column_major(rows: &[Vec<f64>]) -> (Vec<f64>, usize, usize) {
    let n = rows.len();
    let cols = rows.first().map_or(0, Vec::len);
    let mut data = vec![0.0; n * cols];
    for (r, row) in rows.iter().enumerate() {
        for (c, v) in row.iter().enumerate() {
            data[c * n + r] = *v;
        }
    }
    (data, n, cols)
}

impl PairModel {
    /// Fits on `train`, then picks the threshold with the best F1 on `valid`.
    pub fn fit(
        train: &[Vec<f64>],
        train_labels: &[bool],
        valid: &[Vec<f64>],
        valid_labels: &[bool],
        feature_names: Vec<String>,
        trees: usize,
    ) -> Result<(Self, Scores), MatchError> {
        if !train_labels.iter().any(|&y| y) || train_labels.iter().all(|&y| y) {
            return Err(MatchError::Invalid(
                "the training pairs need both matches and non-matches".into(),
            ));
        }
        let (data, rows, cols) = column_major(train);
        let matrix = Matrix::new(&data, rows, cols);
        let y: Vec<f64> = train_labels
            .iter()
            .map(|&b| f64::from(u8::from(b)))
            .collect();
        // Many shallow-ish trees with a small learning rate: robust defaults that are not tuned
        // to any one benchmark. A few bags of them: one model's threshold on a validation split
        // of a few hundred matches moves by whole F1 points between seeds; the average does not.
        let boosters = (0..BAGS)
            .into_par_iter()
            .map(|bag| {
                let mut booster = GradientBooster::default()
                    .set_objective_type(ObjectiveType::LogLoss)
                    .set_iterations(trees)
                    .set_learning_rate(0.05)
                    .set_max_depth(6)
                    .set_l2(1.0)
                    .set_subsample(0.8)
                    .set_colsample_bytree(0.8)
                    .set_seed(17 + bag as u64)
                    .set_parallel(false);
                booster
                    .fit_unweighted(&matrix, &y, None)
                    .map_err(MatchError::Train)?;
                Ok(booster)
            })
            .collect::<Result<Vec<_>, MatchError>>()?;
        let mut model = PairModel {
            forest: ScoringForest::of(&boosters),
            boosters,
            threshold: 0.5,
            feature_names,
        };
        let p = model.predict(valid);
        let (threshold, scores) = best_threshold(&p, valid_labels);
        model.threshold = threshold;
        Ok((model, scores))
    }

    /// Per row, the features that moved its log-odds most (tree-path contributions averaged
    /// over the bags): (feature, value, contribution), largest |contribution| first.
    pub fn explain(&self, rows: &[Vec<f64>], top: usize) -> Vec<Vec<(String, f64, f64)>> {
        if rows.is_empty() {
            return Vec::new();
        }
        let (data, n, cols) = column_major(rows);
        let matrix = Matrix::new(&data, n, cols);
        // One column per feature plus the bias.
        let width = cols + 1;
        let mut total = vec![0.0; n * width];
        for booster in &self.boosters {
            let c = booster.predict_contributions(&matrix, ContributionsMethod::Average, true);
            for (t, v) in total.iter_mut().zip(c) {
                *t += v / self.boosters.len() as f64;
            }
        }
        (0..n)
            .map(|r| {
                let mut drivers: Vec<(String, f64, f64)> = (0..cols)
                    .map(|c| {
                        (
                            self.feature_names
                                .get(c)
                                .cloned()
                                .unwrap_or_else(|| format!("f{c}")),
                            rows[r][c],
                            total[r * width + c],
                        )
                    })
                    .collect();
                drivers.sort_by(|a, b| b.2.abs().total_cmp(&a.2.abs()));
                drivers.truncate(top);
                drivers
            })
            .collect()
    }

    pub fn predict(&self, rows: &[Vec<f64>]) -> Vec<f64> {
        match &self.forest {
            Some(forest) => forest.predict(rows),
            None => self.predict_with_forust(rows),
        }
    }

    /// [`Self::predict`] by forust's own `predict`.
    pub(crate) fn predict_with_forust(&self, rows: &[Vec<f64>]) -> Vec<f64> {
        // In chunks: the trees read a column-major copy, which for millions of candidate
        // pairs would double the memory of the feature rows.
        let mut out = Vec::with_capacity(rows.len());
        for chunk in rows.chunks(PREDICT_CHUNK) {
            let (data, n, cols) = column_major(chunk);
            let matrix = Matrix::new(&data, n, cols);
            let mut mean = vec![0.0; n];
            // Rows in parallel (forust splits them over rayon's pool): each row's score is
            // its own, so the result is the same on any number of threads.
            for booster in &self.boosters {
                for (m, log_odds) in mean.iter_mut().zip(booster.predict(&matrix, true)) {
                    *m += 1.0 / (1.0 + (-log_odds).exp()) / self.boosters.len() as f64;
                }
            }
            out.extend(mean);
        }
        out
    }
}

/// Rows per column-major copy in [`PairModel::predict`].
const PREDICT_CHUNK: usize = 131_072;

/// Turns labelled pairs into feature rows: records prepared once (tokens, embeddings), IDF over
/// every distinct record text of all splits (labels are never looked at).
pub struct PairFeaturizer {
    /// Record number of each labelled-pair record; empty when built by
    /// [`Self::from_records`], whose callers address records by number.
    index: HashMap<Record, usize>,
    prepared: Vec<Prepared>,
    second_encoder: bool,
    idf: Idf,
    /// The records' tokens numbered and summed once, for the token features.
    tokens: TokenIndex,
    pub main_attr: String,
    pub other_attrs: Vec<String>,
}

impl PairFeaturizer {
    /// Prepares the distinct records of `splits` with `encoder` and, when given, a second
    /// encoder whose cosines and learned model become features too.
    pub fn new(
        splits: &[&[LabelledPair]],
        encoder: &dyn Encoder,
        second_encoder: Option<&dyn Encoder>,
    ) -> Result<Self, MatchError> {
        let mut records = Vec::new();
        let mut seen = std::collections::HashSet::new();
        for split in splits {
            for p in split.iter() {
                for r in [&p.left, &p.right] {
                    if seen.insert(r.clone()) {
                        records.push(r.clone());
                    }
                }
            }
        }
        let mut cache = EmbeddingCache::new(encoder);
        let mut featurizer = Self::from_records(&records, encoder, &mut cache, &NoProgress)?;
        if let Some(second) = second_encoder {
            let mut cache = EmbeddingCache::new(second);
            featurizer.add_second_encoder(&records, second, &mut cache, &NoProgress)?;
        }
        for (i, r) in records.into_iter().enumerate() {
            featurizer.index.entry(r).or_insert(i);
        }
        Ok(featurizer)
    }

    /// Prepares `records` (tokens, title and whole-record embeddings through `cache`); the
    /// IDF is fitted on them. Record numbers are positions in `records`.
    pub fn from_records(
        records: &[Record],
        encoder: &dyn Encoder,
        cache: &mut EmbeddingCache,
        progress: &dyn Progress,
    ) -> Result<Self, MatchError> {
        let first = records
            .first()
            .ok_or_else(|| MatchError::Invalid("no records".into()))?;
        let names: Vec<String> = first.attrs.iter().map(|(a, _)| a.clone()).collect();
        let main_attr = ["title", "name", "product_name", "product", "description"]
            .iter()
            .find(|n| names.iter().any(|a| a == *n))
            .map(|s| s.to_string())
            .unwrap_or_else(|| names[0].clone());
        let other_attrs: Vec<String> = names.iter().filter(|a| **a != main_attr).cloned().collect();

        let (main_texts, all_texts) = texts_of(records, &main_attr);
        let (main_vectors, all_vectors) =
            embed_both(&main_texts, &all_texts, encoder, cache, progress)?;
        let prepared: Vec<Prepared> = main_vectors
            .into_par_iter()
            .zip(all_vectors)
            .enumerate()
            .map(|(i, (main_vector, all_vector))| Prepared {
                main_tokens: features::tokenize(&main_texts[i]),
                all_tokens: features::tokenize(&all_texts[i]),
                main_vector,
                all_vector,
                second_main_vector: Vec::new(),
                second_all_vector: Vec::new(),
                others: other_attrs
                    .iter()
                    .map(|a| records[i].get(a).unwrap_or("").to_string())
                    .collect(),
            })
            .collect();
        let idf = Idf::fit(prepared.iter().map(|p| p.all_tokens.as_slice()));
        let tokens = TokenIndex::build(&idf, &prepared);
        Ok(PairFeaturizer {
            index: HashMap::new(),
            prepared,
            second_encoder: false,
            idf,
            tokens,
            main_attr,
            other_attrs,
        })
    }

    /// Adds a second encoder's vectors of `records` (the ones this featurizer was built from,
    /// in the same order): two more cosine features and, in [`Self::learned_views`], a
    /// learned model over them.
    pub fn add_second_encoder(
        &mut self,
        records: &[Record],
        encoder: &dyn Encoder,
        cache: &mut EmbeddingCache,
        progress: &dyn Progress,
    ) -> Result<(), MatchError> {
        let (main_texts, all_texts) = texts_of(records, &self.main_attr);
        let (main_vectors, all_vectors) =
            embed_both(&main_texts, &all_texts, encoder, cache, progress)?;
        for ((p, main), all) in self.prepared.iter_mut().zip(main_vectors).zip(all_vectors) {
            p.second_main_vector = main;
            p.second_all_vector = all;
        }
        self.second_encoder = true;
        Ok(())
    }

    /// The learned models stacked under the trees for labelled pairs: [`LEARNED_MODELS`],
    /// and the second encoder's when there is one.
    pub fn learned_views(&self) -> Vec<(&'static str, LearnedView)> {
        let mut views = LEARNED_MODELS.to_vec();
        if self.second_encoder {
            views.push(SECOND_ENCODER_LEARNED_MODEL);
        }
        views
    }

    pub fn prepared(&self) -> &[Prepared] {
        &self.prepared
    }

    pub fn idf(&self) -> &Idf {
        &self.idf
    }

    pub fn feature_names(&self) -> Vec<String> {
        features::feature_names(&self.other_attrs, self.second_encoder)
    }

    pub fn records(&self) -> usize {
        self.prepared.len()
    }

    /// (left, right) record numbers of `pairs`.
    pub fn pair_ids(&self, pairs: &[LabelledPair]) -> Vec<(usize, usize)> {
        pairs
            .iter()
            .map(|p| (self.index[&p.left], self.index[&p.right]))
            .collect()
    }

    /// The (embedding cosine, TF-IDF cosine) the candidate margins compare, per pair.
    pub fn margin_sims_of(&self, ids: &[(usize, usize)]) -> Vec<(f64, f64)> {
        ids.par_iter()
            .map(|&(a, b)| {
                features::margin_sims(&self.tokens, (a, &self.prepared[a]), (b, &self.prepared[b]))
            })
            .collect()
    }

    /// The candidate margins of the distinct pairs among `ids`, each record keyed by itself
    /// (a pair listed twice is one candidate, not its own rival).
    pub fn candidate_margins(
        &self,
        ids: impl IntoIterator<Item = (usize, usize)>,
    ) -> features::CandidateMargins {
        let distinct: Vec<(usize, usize)> = ids
            .into_iter()
            .collect::<std::collections::BTreeSet<_>>()
            .into_iter()
            .collect();
        features::CandidateMargins::new(&distinct, &self.margin_sims_of(&distinct))
    }

    /// Feature rows of some of the pairs, with margins against all candidates (`margins`,
    /// built over every pair), so a large candidate set can be featurised chunk by chunk.
    pub fn featurize_with(
        &self,
        ids: &[(usize, usize)],
        margin_keys: &[(usize, usize)],
        margins: &features::CandidateMargins,
    ) -> Vec<Vec<f64>> {
        ids.par_iter()
            .zip(margin_keys)
            .map(|(&(a, b), &key)| {
                let mut row = features::pair_features(
                    &self.tokens,
                    (a, &self.prepared[a]),
                    (b, &self.prepared[b]),
                );
                let sim = features::margin_sims_in_row(&row);
                row.extend(margins.of(key, sim));
                row
            })
            .collect()
    }
}

/// Each record's main-attribute text and whole-record text.
fn texts_of(records: &[Record], main_attr: &str) -> (Vec<String>, Vec<String>) {
    let main = records
        .iter()
        .map(|r| r.get(main_attr).unwrap_or("").to_string())
        .collect();
    (main, records.iter().map(Record::text).collect())
}

/// One vector per record of its main text, and one of its whole text.
type MainAndAllVectors = (Vec<Vec<f32>>, Vec<Vec<f32>>);

/// The vectors of the main texts and of the whole-record texts, through `cache`.
fn embed_both(
    main_texts: &[String],
    all_texts: &[String],
    encoder: &dyn Encoder,
    cache: &mut EmbeddingCache,
    progress: &dyn Progress,
) -> Result<MainAndAllVectors, MatchError> {
    let texts: Vec<&str> = main_texts
        .iter()
        .chain(all_texts)
        .map(String::as_str)
        .collect();
    let (mut main, _) = cache.embed_each(encoder, &texts, progress)?;
    let all = main.split_off(main_texts.len());
    Ok((main, all))
}

/// The learned token and embedding models of [`LEARNED_MODELS`], stacked as features under
/// the trees: cross-fitted on the training pairs (out-of-fold logits, so the trees do not
/// see overfitted scores), refitted on all of them for every other pair.
pub struct StackedLearned {
    models: Vec<(LearnedView, learned::SparseLogistic)>,
}

/// The learned models of a project's resolve stage: the token models. The embedding model's
/// rows are dense (1024 values per pair), too heavy for hundreds of thousands of candidates,
/// and on product listings it adds nothing the trees do not get from the cosines.
pub const PROJECT_LEARNED_MODELS: [(&str, LearnedView); 2] = [LEARNED_MODELS[0], LEARNED_MODELS[1]];

/// Pairs per chunk when learned rows are built on the fly for scoring.
const LEARNED_CHUNK: usize = 65_536;

impl StackedLearned {
    /// Fits one model per view in `views` on the pairs `ids` (record numbers) and appends the
    /// out-of-fold logits to `train_rows`; `names` gets the learned features' names. Each
    /// view's rows exist only while its model is fitted.
    pub fn fit_on(
        featurizer: &PairFeaturizer,
        views: &[(&str, LearnedView)],
        ids: &[(usize, usize)],
        labels: &[bool],
        train_rows: &mut [Vec<f64>],
        names: &mut Vec<String>,
    ) -> Self {
        let mut models = Vec::new();
        for (name, view) in views {
            let rows: Vec<SparseRow> = ids
                .par_iter()
                .map(|&(a, b)| view.row(featurizer, a, b))
                .collect();
            let fitted = learned::cross_fit(&rows, labels, 5, LEARNED_EPOCHS);
            for (x, z) in train_rows.iter_mut().zip(&fitted.out_of_fold) {
                x.push(f64::from(*z));
            }
            models.push((*view, fitted.model));
            names.push(name.to_string());
        }
        StackedLearned { models }
    }

    /// Appends the learned logits to the feature rows of the pairs `ids`, building the sparse
    /// rows chunk by chunk.
    pub fn extend_on(
        &self,
        featurizer: &PairFeaturizer,
        ids: &[(usize, usize)],
        rows: &mut [Vec<f64>],
    ) {
        for (ids, rows) in ids
            .chunks(LEARNED_CHUNK)
            .zip(rows.chunks_mut(LEARNED_CHUNK))
        {
            rows.par_iter_mut().zip(ids).for_each(|(x, &(a, b))| {
                for (view, model) in &self.models {
                    x.push(f64::from(model.logit(&view.row(featurizer, a, b))));
                }
            });
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct PairEvalReport {
    pub train_pairs: usize,
    pub valid_pairs: usize,
    pub test_pairs: usize,
    pub distinct_records: usize,
    pub main_attribute: String,
    pub other_attributes: Vec<String>,
    /// The sentence encoders' model ids, the second one's features included when listed.
    pub encoders: Vec<String>,
    pub features: usize,
    pub trees: usize,
    pub supervision: Supervision,
    /// Which pairs the candidate margins compared each pair with.
    pub candidates: CandidateScope,
    pub threshold: f64,
    pub valid: Scores,
    pub test: Scores,
    pub seconds: f64,
    /// The features the model leans on most (gain importance), best first.
    pub top_features: Vec<(String, f64)>,
    /// The validation pairs the model got wrong, each with what drove its decision.
    pub valid_errors: Vec<PairExplanation>,
    /// The fine-tuned cross-encoder alone and stacked with the trees, when one was given;
    /// `valid` and `test` above are the trees' alone.
    pub cross_encoder: Option<crate::cross::CrossEncoderEval>,
}

/// Why the model scored a pair as it did: the features that moved its log-odds most.
#[derive(Debug, Clone, Serialize)]
pub struct PairExplanation {
    pub left: String,
    pub right: String,
    pub label: bool,
    pub match_probability: f64,
    /// (feature, value, contribution to the log-odds), largest |contribution| first.
    pub drivers: Vec<(String, f64, f64)>,
    /// With a cross-encoder: the word pieces it weighed most in this pair.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub cross_encoder_tokens: Vec<TokenWeight>,
}

fn labels(pairs: &[LabelledPair]) -> Vec<bool> {
    pairs.iter().map(|p| p.is_match).collect()
}

/// Where the matcher's training labels come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Supervision {
    /// The labelled pairs.
    Labelled,
    /// No labels: pseudo-labels from [`pseudo_labels`].
    SelfSupervised,
    /// Not even pseudo-labels of both kinds (a tiny project): the mean of the embedding and
    /// TF-IDF cosines is the score, with a fixed threshold.
    Similarity,
}

/// Labels for unlabelled candidate pairs, from their similarity structure alone: a pair is
/// a match when each record is the other's best candidate by TF-IDF *and* by embedding
/// cosine, and its combined similarity is in the upper half of all pairs'; everything else
/// is a non-match. Noisy, but the tree and token models trained on it learn which
/// differences separate the confident matches from the rest.
pub fn pseudo_labels(rows: &[Vec<f64>], names: &[String]) -> Vec<bool> {
    let col = |name: &str| {
        names
            .iter()
            .position(|n| n == name)
            .expect("pair feature present")
    };
    let margins = [
        col("embedding_margin_left"),
        col("embedding_margin_right"),
        col("tfidf_margin_left"),
        col("tfidf_margin_right"),
    ];
    let (emb, tfidf) = (col("all.embedding_cosine"), col("all.tfidf_cosine"));
    let sims: Vec<(f64, f64)> = rows.iter().map(|r| (r[emb], r[tfidf])).collect();
    let mutual_best: Vec<bool> = rows
        .iter()
        .map(|r| margins.iter().all(|&m| r[m] >= 0.0))
        .collect();
    pseudo_labels_of(&sims, &mutual_best)
}

/// [`pseudo_labels`] from each pair's (embedding cosine, TF-IDF cosine) and whether all four
/// of its candidate margins are non-negative.
pub fn pseudo_labels_of(sims: &[(f64, f64)], mutual_best: &[bool]) -> Vec<bool> {
    let score = |s: &(f64, f64)| s.0 + s.1;
    let mut scores: Vec<f64> = sims.iter().map(score).collect();
    scores.sort_by(f64::total_cmp);
    let median = scores.get(scores.len() / 2).copied().unwrap_or(0.0);
    sims.iter()
        .zip(mutual_best)
        .map(|(s, &best)| best && score(s) >= median)
        .collect()
}

/// Which other pairs a pair's candidate margins compare it with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum CandidateScope {
    /// Every pair of the three files: the whole candidate set a blocker produced, as in a
    /// project's resolve stage, where each candidate is compared with all the others of its
    /// records. Labels are never read for this.
    AllFiles,
    /// Only the pairs of the pair's own file, so no file's pairs shape another's features.
    EachFile,
}

/// How [`eval_pairs`] trains.
#[derive(Debug, Clone, Copy)]
pub struct PairEvalSettings {
    /// Boosting rounds of the gradient-boosted trees.
    pub trees: usize,
    pub supervision: Supervision,
    pub candidates: CandidateScope,
}

/// Trains on `train`, tunes on `valid` and scores `test`; `second_encoder` adds its cosines
/// and learned model to the features; a fine-tuned `cross_encoder` is scored alone and stacked
/// with the trees.
pub fn eval_pairs(
    train: &[LabelledPair],
    valid: &[LabelledPair],
    test: &[LabelledPair],
    encoder: &dyn Encoder,
    second_encoder: Option<&dyn Encoder>,
    cross_encoder: Option<&CrossEncoder>,
    settings: PairEvalSettings,
) -> Result<PairEvalReport, MatchError> {
    let PairEvalSettings {
        trees,
        supervision,
        candidates,
    } = settings;
    let started = Instant::now();
    let featurizer = PairFeaturizer::new(&[train, valid, test], encoder, second_encoder)?;
    let ids = [train, valid, test].map(|split| featurizer.pair_ids(split));
    let all_files = (candidates == CandidateScope::AllFiles)
        .then(|| featurizer.candidate_margins(ids.iter().flatten().copied()));
    let [mut xt, mut xv, mut xs] = ids.each_ref().map(|ids| {
        let each_file;
        let margins = match &all_files {
            Some(margins) => margins,
            None => {
                each_file = featurizer.candidate_margins(ids.iter().copied());
                &each_file
            }
        };
        featurizer.featurize_with(ids, ids, margins)
    });
    let mut names = featurizer.feature_names();
    // Training and threshold labels: the files' own, or (self-supervised) labels read off the
    // similarity structure of the unlabelled pairs. Test labels are only used for scoring.
    let (train_labels, valid_labels) = match supervision {
        Supervision::Labelled => (labels(train), labels(valid)),
        Supervision::SelfSupervised | Supervision::Similarity => {
            (pseudo_labels(&xt, &names), pseudo_labels(&xv, &names))
        }
    };
    // The learned token and embedding models, cross-fitted on the training pairs.
    let stacked = StackedLearned::fit_on(
        &featurizer,
        &featurizer.learned_views(),
        &ids[0],
        &train_labels,
        &mut xt,
        &mut names,
    );
    stacked.extend_on(&featurizer, &ids[1], &mut xv);
    stacked.extend_on(&featurizer, &ids[2], &mut xs);
    let (model, _) = PairModel::fit(&xt, &train_labels, &xv, &valid_labels, names.clone(), trees)?;
    let p = model.predict(&xs);
    let test_scores = Scores::of(&p, &labels(test), model.threshold);
    let pv = model.predict(&xv);
    // Reported against the files' labels also when they were not used for training.
    let valid_scores = Scores::of(&pv, &labels(valid), model.threshold);
    let mut valid_errors = misclassified(&model, valid, &xv, &pv);
    let top = top_features(&model, &names, 8);
    let cross_eval = cross_encoder
        .map(|c| {
            let trees = crate::cross::TreeScores {
                valid: &pv,
                test: &p,
                threshold: model.threshold,
            };
            crate::cross::evaluate(c, valid, test, trees)
        })
        .transpose()?;
    if let Some(c) = cross_encoder {
        for (i, e) in &mut valid_errors {
            let (left, right) = (&valid[*i].left, &valid[*i].right);
            e.cross_encoder_tokens = crate::cross::explain(c, left, right)?;
        }
    }
    let valid_errors = valid_errors.into_iter().map(|(_, e)| e).collect();
    Ok(PairEvalReport {
        train_pairs: train.len(),
        valid_pairs: valid.len(),
        test_pairs: test.len(),
        distinct_records: featurizer.records(),
        main_attribute: featurizer.main_attr.clone(),
        other_attributes: featurizer.other_attrs.clone(),
        encoders: std::iter::once(encoder)
            .chain(second_encoder)
            .map(|e| e.model_id().to_string())
            .collect(),
        features: names.len(),
        trees,
        supervision,
        candidates,
        threshold: model.threshold,
        valid: valid_scores,
        test: test_scores,
        seconds: started.elapsed().as_secs_f64(),
        top_features: top,
        valid_errors,
        cross_encoder: cross_eval,
    })
}

/// The validation pairs the model gets wrong (by index), each with the features that drove its
/// score.
fn misclassified(
    model: &PairModel,
    valid: &[LabelledPair],
    xv: &[Vec<f64>],
    pv: &[f64],
) -> Vec<(usize, PairExplanation)> {
    let wrong: Vec<usize> = (0..valid.len())
        .filter(|&i| (pv[i] >= model.threshold) != valid[i].is_match)
        .collect();
    let wrong_rows: Vec<Vec<f64>> = wrong.iter().map(|&i| xv[i].clone()).collect();
    wrong
        .iter()
        .zip(model.explain(&wrong_rows, 5))
        .map(|(&i, drivers)| {
            let explanation = PairExplanation {
                left: valid[i].left.text(),
                right: valid[i].right.text(),
                label: valid[i].is_match,
                match_probability: pv[i],
                drivers,
                cross_encoder_tokens: Vec::new(),
            };
            (i, explanation)
        })
        .collect()
}

/// The `n` features with the most total gain in the first booster.
fn top_features(model: &PairModel, names: &[String], n: usize) -> Vec<(String, f64)> {
    let importance =
        model.boosters[0].calculate_feature_importance(ImportanceMethod::TotalGain, true);
    let mut top: Vec<(String, f64)> = importance
        .into_iter()
        .map(|(i, v)| {
            (
                names.get(i).cloned().unwrap_or_else(|| format!("f{i}")),
                f64::from(v),
            )
        })
        .collect();
    top.sort_by(|a, b| b.1.total_cmp(&a.1));
    top.truncate(n);
    top
}

/// Blocking on a labelled benchmark: every distinct left record against every distinct right
/// record of all splits, scored against all labelled matches.
pub fn eval_blocking(
    splits: &[&[LabelledPair]],
    encoder: &dyn Encoder,
    config: &BlockingConfig,
) -> Result<BlockingQuality, MatchError> {
    let featurizer = PairFeaturizer::new(splits, encoder, None)?;
    let mut left_ids: Vec<usize> = Vec::new();
    let mut right_ids: Vec<usize> = Vec::new();
    let mut truth_ids = Vec::new();
    for split in splits {
        for (p, (l, r)) in split.iter().zip(featurizer.pair_ids(split)) {
            left_ids.push(l);
            right_ids.push(r);
            if p.is_match {
                truth_ids.push((l, r));
            }
        }
    }
    for ids in [&mut left_ids, &mut right_ids] {
        ids.sort_unstable();
        ids.dedup();
    }
    let position = |ids: &[usize], id: usize| ids.binary_search(&id).expect("listed record");
    let truth: std::collections::BTreeSet<(usize, usize)> = truth_ids
        .into_iter()
        .map(|(l, r)| (position(&left_ids, l), position(&right_ids, r)))
        .collect();
    let left: Vec<&Prepared> = left_ids.iter().map(|&i| &featurizer.prepared[i]).collect();
    let right: Vec<&Prepared> = right_ids.iter().map(|&i| &featurizer.prepared[i]).collect();
    let candidates = blocking::candidate_pairs(&left, &right, &featurizer.idf, config);
    Ok(blocking::blocking_quality(
        &candidates,
        &truth,
        left.len(),
        right.len(),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pseudo_labels_take_mutual_best_similar_pairs() {
        let names: Vec<String> = features::feature_names(&[], false);
        let col = |n: &str| names.iter().position(|x| x == n).unwrap();
        let row = |sim: f64, margin: f64| {
            let mut r = vec![0.0; names.len()];
            r[col("all.embedding_cosine")] = sim;
            r[col("all.tfidf_cosine")] = sim;
            for m in [
                "embedding_margin_left",
                "embedding_margin_right",
                "tfidf_margin_left",
                "tfidf_margin_right",
            ] {
                r[col(m)] = margin;
            }
            r
        };
        let rows = vec![row(0.9, 0.3), row(0.8, -0.1), row(0.2, 0.1), row(0.1, -0.5)];
        // Mutual best and similar: match; not mutual best, or too dissimilar: not.
        assert_eq!(pseudo_labels(&rows, &names), [true, false, false, false]);
    }

    #[test]
    fn a_pair_listed_twice_is_not_its_own_rival() {
        let record = |vector: [f32; 2], title: &str| Prepared {
            all_tokens: features::tokenize(title),
            all_vector: vector.to_vec(),
            ..Prepared::default()
        };
        let prepared = vec![
            record([1.0, 0.0], "acme widget"),
            record([1.0, 0.0], "acme widget"),
            record([0.6, 0.8], "acme gadget"),
        ];
        let idf = Idf::fit(prepared.iter().map(|p| p.all_tokens.as_slice()));
        let featurizer = PairFeaturizer {
            index: HashMap::new(),
            tokens: TokenIndex::build(&idf, &prepared),
            idf,
            prepared,
            second_encoder: false,
            main_attr: "title".into(),
            other_attrs: Vec::new(),
        };
        // (0, 1) is listed in two files; its rival for record 0 is (0, 2).
        let margins = featurizer.candidate_margins([(0, 1), (0, 2), (0, 1)]);
        let sims = featurizer.margin_sims_of(&[(0, 1), (0, 2)]);
        let [embedding_left, embedding_right, tfidf_left, tfidf_right] =
            margins.of((0, 1), sims[0]);
        assert!((embedding_left - (sims[0].0 - sims[1].0)).abs() < 1e-9);
        assert!((tfidf_left - (sims[0].1 - sims[1].1)).abs() < 1e-9);
        assert!(embedding_left > 0.3 && tfidf_left > 0.3);
        // Record 1 has no other candidate.
        assert_eq!((embedding_right, tfidf_right), (0.0, 0.0));
    }

    #[test]
    fn scores_and_threshold_choice() {
        let p = [0.9, 0.8, 0.3, 0.2, 0.7];
        let y = [true, true, false, false, false];
        let s = Scores::of(&p, &y, 0.5);
        assert_eq!(
            (s.true_positives, s.false_positives, s.false_negatives),
            (2, 1, 0)
        );
        assert!((s.f1 - 0.8).abs() < 1e-9);
        let (t, best) = best_threshold(&p, &y);
        assert_eq!(t, 0.8);
        assert_eq!(best.f1, 1.0);
        // F1 = 1 for thresholds in (0.7, 0.8]: the middle of that plateau.
        assert!((plateau_threshold(&p, &y) - 0.75).abs() < 1e-12);
    }
}
