//! Evaluations: ranking quality on a generated project's query set, relevance grading on
//! QBQTC, and the assistant's intent and cited-fact accuracy on the generated question set.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use serde::Serialize;
use shopfuse_core::encoder::Encoder;
use shopfuse_resolve::catalogue::product_clusters;

use crate::assistant::{Answer, Assistant, OrderFact};
use crate::document::ReadTable;
use crate::index::SearchIndex;
use crate::query::{Mode, SearchRequest};
use crate::SearchError;

/// Cut-off of NDCG and recall.
pub const AT: usize = 10;

fn read_csv(path: &Path) -> Result<Vec<HashMap<String, String>>, SearchError> {
    let mut reader = csv::Reader::from_path(path).map_err(|e| SearchError::Parse {
        path: path.to_path_buf(),
        line: 0,
        message: format!("cannot open: {e} (generate the project with `shopfuse generate`)"),
    })?;
    let headers = reader
        .headers()
        .map_err(|e| SearchError::Parse {
            path: path.to_path_buf(),
            line: 1,
            message: e.to_string(),
        })?
        .clone();
    let mut out = Vec::new();
    for (i, record) in reader.records().enumerate() {
        let record = record.map_err(|e| SearchError::Parse {
            path: path.to_path_buf(),
            line: i + 2,
            message: e.to_string(),
        })?;
        out.push(
            headers
                .iter()
                .zip(record.iter())
                .map(|(h, v)| (h.to_string(), v.to_string()))
                .collect(),
        );
    }
    Ok(out)
}

fn field<'r>(
    row: &'r HashMap<String, String>,
    name: &str,
    path: &Path,
    line: usize,
) -> Result<&'r str, SearchError> {
    row.get(name)
        .map(String::as_str)
        .ok_or_else(|| SearchError::Parse {
            path: path.to_path_buf(),
            line,
            message: format!("no {name} column"),
        })
}

/// Each golden product's true product and family: the majority over its listings.
pub fn golden_truth(
    read: ReadTable<'_>,
    truth_dir: &Path,
) -> Result<HashMap<String, (String, String)>, SearchError> {
    let path = truth_dir.join("product_clusters.csv");
    let mut of_listing: HashMap<(String, String), (String, String)> = HashMap::new();
    for (i, row) in read_csv(&path)?.iter().enumerate() {
        of_listing.insert(
            (
                field(row, "platform", &path, i + 2)?.to_string(),
                field(row, "listing_id", &path, i + 2)?.to_string(),
            ),
            (
                field(row, "product_id", &path, i + 2)?.to_string(),
                field(row, "family_id", &path, i + 2)?.to_string(),
            ),
        );
    }
    let clusters = read(
        product_clusters::NAME,
        &[
            product_clusters::golden_id,
            product_clusters::platform,
            product_clusters::listing_id,
        ],
    )?
    .ok_or(SearchError::NoCatalogue)?;
    let mut votes: HashMap<String, BTreeMap<(String, String), usize>> = HashMap::new();
    for r in &clusters.rows {
        let c = &clusters;
        let (Some(g), Some(p), Some(l)) = (
            c.text(r, product_clusters::golden_id),
            c.text(r, product_clusters::platform),
            c.text(r, product_clusters::listing_id),
        ) else {
            continue;
        };
        if let Some(t) = of_listing.get(&(p, l)) {
            *votes.entry(g).or_default().entry(t.clone()).or_insert(0) += 1;
        }
    }
    Ok(votes
        .into_iter()
        .filter_map(|(g, v)| {
            let best = v
                .into_iter()
                .max_by(|a, b| a.1.cmp(&b.1).then(b.0.cmp(&a.0)))?;
            Some((g, best.0))
        })
        .collect())
}

/// Ranking metrics of one group of queries.
#[derive(Debug, Clone, Default, Serialize)]
pub struct RankingMetrics {
    pub queries: usize,
    pub ndcg_at_10: f64,
    pub mrr: f64,
    pub recall_at_10: f64,
    /// Queries whose first result is another variant (colour, capacity) of the right model.
    pub wrong_variant_first: usize,
}

/// One mode's metrics, overall and per query kind.
#[derive(Debug, Clone, Serialize)]
pub struct ModeReport {
    pub mode: Mode,
    pub overall: RankingMetrics,
    pub by_kind: BTreeMap<String, RankingMetrics>,
}

#[derive(Default)]
struct Sums {
    n: usize,
    ndcg: f64,
    rr: f64,
    recall: f64,
    wrong: usize,
}

impl Sums {
    fn add(&mut self, ndcg: f64, rr: f64, recall: f64, wrong: bool) {
        self.n += 1;
        self.ndcg += ndcg;
        self.rr += rr;
        self.recall += recall;
        self.wrong += wrong as usize;
    }
    fn metrics(&self) -> RankingMetrics {
        let n = self.n.max(1) as f64;
        RankingMetrics {
            queries: self.n,
            ndcg_at_10: self.ndcg / n,
            mrr: self.rr / n,
            recall_at_10: self.recall / n,
            wrong_variant_first: self.wrong,
        }
    }
}

/// NDCG@10, reciprocal rank of the first fully relevant result, and recall@10 of the fully
/// relevant ones (over min(relevant, 10)), from the grades of the ranking and of every
/// document.
pub fn ranking_scores(ranked: &[u8], all: &[u8]) -> (f64, f64, f64) {
    let gain = |g: u8| f64::from((1u32 << g) - 1);
    let dcg: f64 = ranked
        .iter()
        .take(AT)
        .enumerate()
        .map(|(i, &g)| gain(g) / ((i + 2) as f64).log2())
        .sum();
    let mut ideal: Vec<u8> = all.to_vec();
    ideal.sort_unstable_by(|a, b| b.cmp(a));
    let idcg: f64 = ideal
        .iter()
        .take(AT)
        .enumerate()
        .map(|(i, &g)| gain(g) / ((i + 2) as f64).log2())
        .sum();
    let rr = ranked
        .iter()
        .position(|&g| g == 2)
        .map_or(0.0, |p| 1.0 / (p + 1) as f64);
    let relevant = all.iter().filter(|&&g| g == 2).count();
    let found = ranked.iter().take(AT).filter(|&&g| g == 2).count();
    let recall = if relevant == 0 {
        0.0
    } else {
        found as f64 / relevant.min(AT) as f64
    };
    (if idcg > 0.0 { dcg / idcg } else { 0.0 }, rr, recall)
}

/// `shopfuse eval search` on a generated project.
#[derive(Debug, Clone, Serialize)]
pub struct SearchEvaluation {
    pub queries: usize,
    /// Queries whose product is not in the catalogue (its listings were all quarantined).
    pub skipped: usize,
    pub modes: Vec<ModeReport>,
}

pub fn evaluate_search(
    index: &SearchIndex,
    read: ReadTable<'_>,
    truth_dir: &Path,
    encoder: Option<&dyn Encoder>,
    weights: crate::query::FusionWeights,
) -> Result<SearchEvaluation, SearchError> {
    let truth = golden_truth(read, truth_dir)?;
    let path = truth_dir.join("search_queries.csv");
    let rows = read_csv(&path)?;
    let mut queries = Vec::new();
    for (i, row) in rows.iter().enumerate() {
        let line = i + 2;
        queries.push((
            field(row, "kind", &path, line)?.to_string(),
            field(row, "query", &path, line)?.to_string(),
            field(row, "product_id", &path, line)?.to_string(),
            field(row, "family_id", &path, line)?.to_string(),
        ));
    }
    let vectors = match encoder {
        Some(e) => {
            let texts: Vec<&str> = queries.iter().map(|q| q.1.as_str()).collect();
            Some(e.encode(&texts)?)
        }
        None => None,
    };
    let docs = index.documents();
    let mut modes = Vec::new();
    let mut skipped = 0;
    let mode_list: &[Mode] = if vectors.is_some() {
        &[Mode::Lexical, Mode::Dense, Mode::Hybrid]
    } else {
        &[Mode::Lexical]
    };
    for &mode in mode_list {
        let mut overall = Sums::default();
        let mut by_kind: BTreeMap<String, Sums> = BTreeMap::new();
        skipped = 0;
        for (qi, (kind, text, product, family)) in queries.iter().enumerate() {
            // Every query names its variant (colour, capacity): a sibling variant is not
            // relevant, it is the mistake `wrong_variant_first` counts.
            let grade = |golden: &str| match truth.get(golden) {
                Some((p, _)) if p == product => 2u8,
                _ => 0,
            };
            let sibling = |golden: &str| {
                truth
                    .get(golden)
                    .is_some_and(|(p, f)| p != product && f == family)
            };
            let all: Vec<u8> = docs.iter().map(|d| grade(&d.golden_id)).collect();
            if !all.contains(&2) {
                skipped += 1;
                continue;
            }
            let mut request = SearchRequest::new(text.clone());
            request.mode = mode;
            request.limit = AT;
            request.weights = weights;
            let results = index.search(&request, vectors.as_ref().map(|v| v.row(qi)))?;
            let ranked: Vec<u8> = results.hits.iter().map(|h| grade(&h.golden_id)).collect();
            let (ndcg, rr, recall) = ranking_scores(&ranked, &all);
            let wrong = results.hits.first().is_some_and(|h| sibling(&h.golden_id));
            overall.add(ndcg, rr, recall, wrong);
            by_kind
                .entry(kind.clone())
                .or_default()
                .add(ndcg, rr, recall, wrong);
        }
        modes.push(ModeReport {
            mode,
            overall: overall.metrics(),
            by_kind: by_kind.into_iter().map(|(k, s)| (k, s.metrics())).collect(),
        });
    }
    Ok(SearchEvaluation {
        queries: queries.len(),
        skipped,
        modes,
    })
}

/// Accuracy of grading QBQTC (query, title) pairs, out of fold.
#[derive(Debug, Clone, Serialize)]
pub struct GradingReport {
    pub score: &'static str,
    pub accuracy: f64,
    pub macro_f1: f64,
    /// The thresholds (and hybrid weight) chosen on the whole set, for reference.
    pub thresholds: (f64, f64),
    pub dense_weight: Option<f64>,
}

#[derive(Debug, Clone, Serialize)]
pub struct QbqtcEvaluation {
    pub pairs: usize,
    pub folds: usize,
    pub reports: Vec<GradingReport>,
    /// The published BERT-base figures of the data folder's README (dev F1 / accuracy).
    pub published_bert_base_dev: (f64, f64),
}

/// Reads `dev.json` (JSON lines of id, query, title, label).
pub fn read_qbqtc(path: &Path) -> Result<Vec<(String, String, u8)>, SearchError> {
    let text = std::fs::read_to_string(path).map_err(|e| SearchError::io(path, e))?;
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let bad = |message: String| SearchError::Parse {
            path: path.to_path_buf(),
            line: i + 1,
            message,
        };
        let v: serde_json::Value = serde_json::from_str(line).map_err(|e| bad(e.to_string()))?;
        let s = |k: &str| {
            v.get(k)
                .and_then(|x| x.as_str())
                .map(str::to_string)
                .ok_or_else(|| bad(format!("no string field {k}")))
        };
        let label: u8 = s("label")?
            .parse()
            .ok()
            .filter(|l| *l <= 2)
            .ok_or_else(|| bad("label is not 0, 1 or 2".into()))?;
        out.push((s("query")?, s("title")?, label));
    }
    Ok(out)
}

/// Lexical relevance of a title to a query: the share of the query's IDF mass the title
/// covers (BM25's term weights without its length normalisation, which hurts on titles).
fn coverage_scores(pairs: &[(String, String, u8)]) -> Vec<f64> {
    let term_sets: Vec<(
        std::collections::HashSet<String>,
        std::collections::HashSet<String>,
    )> = pairs
        .iter()
        .map(|(q, t, _)| (crate::tokenizer::term_set(q), crate::tokenizer::term_set(t)))
        .collect();
    let mut df: HashMap<&str, usize> = HashMap::new();
    for (_, t) in &term_sets {
        for w in t {
            *df.entry(w.as_str()).or_insert(0) += 1;
        }
    }
    let n = pairs.len() as f64;
    term_sets
        .iter()
        .map(|(q, t)| {
            let idf = |w: &str| (1.0 + n / (1.0 + *df.get(w).unwrap_or(&0) as f64)).ln();
            let total: f64 = q.iter().map(|w| idf(w)).sum();
            let covered: f64 = q.iter().filter(|w| t.contains(*w)).map(|w| idf(w)).sum();
            if total > 0.0 {
                covered / total
            } else {
                0.0
            }
        })
        .collect()
}

fn macro_f1(pred: &[u8], gold: &[u8]) -> (f64, f64) {
    let mut f1 = 0.0;
    for c in 0..3u8 {
        let tp = pred
            .iter()
            .zip(gold)
            .filter(|(p, g)| **p == c && **g == c)
            .count() as f64;
        let fp = pred
            .iter()
            .zip(gold)
            .filter(|(p, g)| **p == c && **g != c)
            .count() as f64;
        let fn_ = pred
            .iter()
            .zip(gold)
            .filter(|(p, g)| **p != c && **g == c)
            .count() as f64;
        if tp > 0.0 {
            f1 += 2.0 * tp / (2.0 * tp + fp + fn_);
        }
    }
    let acc =
        pred.iter().zip(gold).filter(|(p, g)| p == g).count() as f64 / gold.len().max(1) as f64;
    (f1 / 3.0, acc)
}

fn grade(score: f64, (lo, hi): (f64, f64)) -> u8 {
    if score < lo {
        0
    } else if score < hi {
        1
    } else {
        2
    }
}

/// The (lo, hi) thresholds with the best macro-F1 on `scores`, from a grid of quantiles.
fn best_thresholds(scores: &[f64], gold: &[u8]) -> (f64, (f64, f64)) {
    let mut sorted: Vec<f64> = scores.to_vec();
    sorted.sort_by(f64::total_cmp);
    let grid: Vec<f64> = (1..40)
        .map(|i| sorted[(i * sorted.len() / 40).min(sorted.len() - 1)])
        .collect();
    let mut best = (f64::NEG_INFINITY, (0.0, 0.0));
    for (i, &lo) in grid.iter().enumerate() {
        for &hi in &grid[i..] {
            let pred: Vec<u8> = scores.iter().map(|&s| grade(s, (lo, hi))).collect();
            let (f1, _) = macro_f1(&pred, gold);
            if f1 > best.0 {
                best = (f1, (lo, hi));
            }
        }
    }
    best
}

/// Thresholds (and the hybrid weight) chosen on k−1 folds, applied to the held-out fold.
fn cross_validated(
    name: &'static str,
    lexical: &[f64],
    dense: Option<&[f64]>,
    weights: &[f64],
    gold: &[u8],
    folds: usize,
) -> GradingReport {
    let combined = |w: f64| -> Vec<f64> {
        match dense {
            Some(d) => lexical
                .iter()
                .zip(d)
                .map(|(l, d)| (1.0 - w) * l + w * d)
                .collect(),
            None => lexical.to_vec(),
        }
    };
    let candidates: Vec<(f64, Vec<f64>)> = weights.iter().map(|&w| (w, combined(w))).collect();
    let mut predicted = vec![0u8; gold.len()];
    for fold in 0..folds {
        let train: Vec<usize> = (0..gold.len()).filter(|i| i % folds != fold).collect();
        let g: Vec<u8> = train.iter().map(|&i| gold[i]).collect();
        let (_, thresholds, scores) = candidates
            .iter()
            .map(|(w, s)| {
                let t: Vec<f64> = train.iter().map(|&i| s[i]).collect();
                let (f1, th) = best_thresholds(&t, &g);
                (f1, th, (w, s))
            })
            .max_by(|a, b| a.0.total_cmp(&b.0))
            .map(|(f1, th, ws)| (f1, th, ws.1))
            .expect("one weight");
        for i in (0..gold.len()).filter(|i| i % folds == fold) {
            predicted[i] = grade(scores[i], thresholds);
        }
    }
    let (macro_f1, accuracy) = macro_f1(&predicted, gold);
    let (_, thresholds, weight) = candidates
        .iter()
        .map(|(w, s)| {
            let (f1, th) = best_thresholds(s, gold);
            (f1, th, *w)
        })
        .max_by(|a, b| a.0.total_cmp(&b.0))
        .expect("one weight");
    GradingReport {
        score: name,
        accuracy,
        macro_f1,
        thresholds,
        dense_weight: dense.map(|_| weight),
    }
}

/// `shopfuse eval search --data …/qbqtc`: each pair's relevance score (lexical coverage,
/// encoder cosine, their blend) graded into 0/1/2 by thresholds chosen by 5-fold
/// cross-validation on dev.
pub fn evaluate_qbqtc(
    path: &Path,
    encoder: Option<&dyn Encoder>,
    progress: &dyn shopfuse_core::Progress,
) -> Result<QbqtcEvaluation, SearchError> {
    let pairs = read_qbqtc(path)?;
    let gold: Vec<u8> = pairs.iter().map(|p| p.2).collect();
    let lexical = coverage_scores(&pairs);
    let folds = 5;
    let mut reports = vec![cross_validated(
        "lexical",
        &lexical,
        None,
        &[0.0],
        &gold,
        folds,
    )];
    if let Some(e) = encoder {
        let mut dense = Vec::with_capacity(pairs.len());
        progress.start("encoding pairs", pairs.len() as u64);
        for chunk in pairs.chunks(512) {
            let q: Vec<&str> = chunk.iter().map(|p| p.0.as_str()).collect();
            let t: Vec<&str> = chunk.iter().map(|p| p.1.as_str()).collect();
            let (vq, vt) = (e.encode(&q)?, e.encode(&t)?);
            dense.extend(
                (0..chunk.len()).map(|j| f64::from(crate::dense::dot(vq.row(j), vt.row(j)))),
            );
            progress.advance(chunk.len() as u64);
        }
        progress.finish();
        reports.push(cross_validated(
            "dense",
            &vec![0.0; dense.len()],
            Some(&dense),
            &[1.0],
            &gold,
            folds,
        ));
        let weights: Vec<f64> = (1..10).map(|i| f64::from(i) / 10.0).collect();
        reports.push(cross_validated(
            "hybrid",
            &lexical,
            Some(&dense),
            &weights,
            &gold,
            folds,
        ));
    }
    Ok(QbqtcEvaluation {
        pairs: pairs.len(),
        folds,
        reports,
        published_bert_base_dev: (64.9, 72.4),
    })
}

/// Per-intent accuracy of the assistant.
#[derive(Debug, Clone, Default, Serialize)]
pub struct IntentAccuracy {
    pub questions: usize,
    pub intent_correct: usize,
    pub fact_correct: usize,
}

#[derive(Debug, Clone, Serialize)]
pub struct AskEvaluation {
    pub questions: usize,
    pub intent_accuracy: f64,
    pub fact_accuracy: f64,
    pub by_intent: BTreeMap<String, IntentAccuracy>,
    /// A few wrong answers, for reading.
    pub examples_wrong: Vec<(String, String, String)>,
    /// Leave-one-out intent accuracy on the shipped labelled examples (words alone, encoder
    /// alone, the blend), when the encoder is there: how the classifier does on phrasings
    /// it was not trained on.
    pub shipped_leave_one_out: Option<IntentLeaveOneOut>,
}

/// Leave-one-out intent accuracy on the shipped examples; the last setting is the one in use.
#[derive(Debug, Clone, Serialize)]
pub struct IntentLeaveOneOut {
    pub words: f64,
    pub settings: Vec<LeaveOneOut>,
}

#[derive(Debug, Clone, Serialize)]
pub struct LeaveOneOut {
    pub weight: f64,
    pub temperature: f64,
    pub encoder: f64,
    pub blend: f64,
}

/// `shopfuse eval ask` on the generator's question set.
pub fn evaluate_ask(
    assistant: &Assistant<'_>,
    read: ReadTable<'_>,
    truth_dir: &Path,
    customer_of: &dyn Fn(&str, &str) -> Option<String>,
    orders: &dyn Fn(&str) -> Result<Vec<OrderFact>, SearchError>,
) -> Result<AskEvaluation, SearchError> {
    let truth = golden_truth(read, truth_dir)?;
    let path = truth_dir.join("questions.csv");
    let rows = read_csv(&path)?;
    let mut by_intent: BTreeMap<String, IntentAccuracy> = BTreeMap::new();
    let mut wrong = Vec::new();
    let (mut intents, mut facts) = (0, 0);
    for (i, row) in rows.iter().enumerate() {
        let line = i + 2;
        let intent = field(row, "intent", &path, line)?;
        let question = field(row, "question", &path, line)?;
        let expected = field(row, "expected", &path, line)?;
        let customer = customer_of(
            field(row, "platform", &path, line)?,
            field(row, "account_id", &path, line)?,
        );
        let answer = assistant.answer(question, customer.as_deref(), orders)?;
        let intent_ok = answer.intent.name() == intent;
        let fact_ok = fact_is_right(intent, expected, &answer, &truth, assistant.index);
        let e = by_intent.entry(intent.to_string()).or_default();
        e.questions += 1;
        e.intent_correct += intent_ok as usize;
        e.fact_correct += fact_ok as usize;
        intents += intent_ok as usize;
        facts += fact_ok as usize;
        if !fact_ok && wrong.len() < 8 {
            wrong.push((
                question.to_string(),
                expected.to_string(),
                answer.text.clone(),
            ));
        }
    }
    let n = rows.len().max(1) as f64;
    Ok(AskEvaluation {
        questions: rows.len(),
        intent_accuracy: intents as f64 / n,
        fact_accuracy: facts as f64 / n,
        by_intent,
        examples_wrong: wrong,
        shipped_leave_one_out: match assistant.encoder {
            Some(e) => {
                use crate::assistant::intent::{self, DENSE_TEMPERATURE, DENSE_WEIGHT};
                let grid: Vec<(f64, f64)> = [0.25, 0.5, 0.75, 0.9]
                    .into_iter()
                    .flat_map(|w| [0.02, 0.05, 0.1].map(|t| (w, t)))
                    .chain([(DENSE_WEIGHT, DENSE_TEMPERATURE)])
                    .collect();
                let (words, dense, blend) =
                    intent::leave_one_out(&intent::shipped_examples(), e, &grid)?;
                let settings = grid
                    .iter()
                    .zip(dense.iter().zip(&blend))
                    .map(|(&(w, t), (&d, &b))| LeaveOneOut {
                        weight: w,
                        temperature: t,
                        encoder: d,
                        blend: b,
                    })
                    .collect();
                Some(IntentLeaveOneOut { words, settings })
            }
            None => None,
        },
    })
}

fn fact_is_right(
    intent: &str,
    expected: &str,
    answer: &Answer,
    truth: &HashMap<String, (String, String)>,
    index: &SearchIndex,
) -> bool {
    let products: Vec<&str> = answer
        .citations
        .iter()
        .filter(|c| c.source == "golden_products")
        .filter_map(|c| truth.get(&c.key).map(|t| t.0.as_str()))
        .collect();
    match intent {
        "product_question" | "price_stock" => products.first() == Some(&expected),
        "comparison" => expected.split('+').all(|p| products.contains(&p)),
        "order_status" => answer
            .citations
            .iter()
            .any(|c| c.key.rsplit('/').next() == Some(expected)),
        "returns_policy" => answer
            .citations
            .iter()
            .any(|c| format!("{}#{}", c.source, c.key) == expected),
        "recommendation" => {
            let mut category = "";
            let mut max_price = f64::INFINITY;
            for part in expected.split(';') {
                if let Some(c) = part.strip_prefix("category=") {
                    category = c;
                }
                if let Some(p) = part.strip_prefix("max_price=") {
                    max_price = p.parse().unwrap_or(f64::INFINITY);
                }
            }
            let cited: Vec<_> = answer
                .citations
                .iter()
                .filter_map(|c| index.document(&c.key))
                .collect();
            !cited.is_empty()
                && cited.iter().all(|d| {
                    let same = d.category.as_deref().is_some_and(|c| {
                        c.eq_ignore_ascii_case(category)
                            || index
                                .aliases()
                                .spellings("category", c)
                                .iter()
                                .any(|s| s.eq_ignore_ascii_case(category))
                            || index
                                .aliases()
                                .spellings("category", category)
                                .iter()
                                .any(|s| s.eq_ignore_ascii_case(c))
                    });
                    same && d.min_price_base.is_some_and(|p| p <= max_price)
                })
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranking_scores_of_a_perfect_and_a_missed_ranking() {
        let all = [2, 1, 0, 0];
        assert_eq!(ranking_scores(&[2, 1, 0], &all), (1.0, 1.0, 1.0));
        let (ndcg, rr, recall) = ranking_scores(&[1, 0, 2], &all);
        assert!(ndcg < 1.0 && (rr - 1.0 / 3.0).abs() < 1e-9 && recall == 1.0);
        assert_eq!(ranking_scores(&[0, 0], &all).1, 0.0);
    }

    #[test]
    fn macro_f1_of_three_classes() {
        let (f1, acc) = macro_f1(&[0, 1, 2, 2], &[0, 1, 2, 1]);
        assert!((acc - 0.75).abs() < 1e-9);
        assert!(f1 > 0.7 && f1 < 1.0);
    }
}
