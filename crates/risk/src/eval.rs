//! `shopfuse eval risk` on a generated project: the fused scores against
//! `truth/fraud_labels.csv`, per fraud pattern, next to the same model fed one platform at a
//! time (each account its own entity, no fused identity) and, when a Python with the peers
//! is given, PyOD's IForest and ECOD on the same feature table and UGFraud's FRAUDAR on the
//! same customer × (key, listing) graph.
//!
//! The scores are unsupervised, so the truth is read only here, never by the stage.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::Path;

use serde::Serialize;
use shopfuse_core::config::RiskConfig;
use shopfuse_core::TableStore;

use crate::assessment::assess;
use crate::evidence::{order_suspicion, OrderFeature};
use crate::metrics::Ranking;
use crate::order_book::OrderBook;
use crate::peers::PeerPython;
use crate::tables::read_book;
use crate::RiskError;

/// The truth of one order.
#[derive(Debug, Clone, Default)]
struct Truth {
    /// `brushing`, `account_takeover`, or empty for a genuine order.
    pattern: String,
}

/// One scorer's figures: overall and per pattern.
#[derive(Debug, Clone, Serialize)]
pub struct ScorerFigures {
    pub scorer: String,
    pub seconds: Option<f64>,
    /// `all` and each pattern (positives of that pattern against the genuine orders).
    pub patterns: BTreeMap<String, Ranking>,
}

/// What rings were found, against the brushing orders.
#[derive(Debug, Clone, Serialize)]
pub struct RingRecovery {
    pub rings: usize,
    pub cross_platform_rings: usize,
    /// Accounts in rings.
    pub ring_accounts: usize,
    /// Of them, accounts with a brushing order.
    pub ring_accounts_brushing: usize,
    /// Accounts with a brushing order.
    pub brushing_accounts: usize,
    pub precision: f64,
    pub recall: f64,
}

/// `eval risk` on one project.
#[derive(Debug, Clone, Serialize)]
pub struct ProjectRiskEval {
    pub orders: usize,
    pub fraud_orders: usize,
    pub patterns: BTreeMap<String, usize>,
    pub scorers: Vec<ScorerFigures>,
    pub rings: RingRecovery,
    /// Reviews by accounts with a brushing order of the listing, ranked by review score.
    pub fake_reviews: Ranking,
}

/// Runs the evaluation on a project whose pipeline has run.
pub fn eval_project(
    store: &TableStore,
    project_root: &Path,
    config: &RiskConfig,
    peers: Option<&PeerPython>,
    fraudar_blocks: usize,
) -> Result<ProjectRiskEval, RiskError> {
    let book = read_book(&|t, c| store.read_columns(t, c))?;
    if book.orders.is_empty() {
        return Err(RiskError::NotRun {
            path: store.tables_dir().to_path_buf(),
            table: "clean_orders",
        });
    }
    let truth = read_truth(&project_root.join("truth").join("fraud_labels.csv"))?;
    let truths: Vec<Truth> = book
        .orders
        .iter()
        .map(|o| {
            let p = book.platform_name(book.accounts[o.account as usize].platform);
            truth
                .get(&(p.to_string(), o.order_id.clone()))
                .cloned()
                .unwrap_or_default()
        })
        .collect();
    let t = std::time::Instant::now();
    let fused = assess(&book, config, None)?;
    let fused_seconds = t.elapsed().as_secs_f64();
    let mut scorers = Vec::new();
    let fused_scores: Vec<f64> = fused.orders.iter().map(|s| s.score).collect();
    scorers.push(figures(
        "shopfuse (fused)",
        Some(fused_seconds),
        &fused_scores,
        &truths,
    ));
    let t = std::time::Instant::now();
    let single = platform_at_a_time(&book, config)?;
    scorers.push(figures(
        "shopfuse (one platform at a time)",
        Some(t.elapsed().as_secs_f64()),
        &single,
        &truths,
    ));
    let t = std::time::Instant::now();
    let learned = cross_fitted(&book, config, &truths)?;
    scorers.push(figures(
        "shopfuse (supervised: 2-fold cross-fit on the labels)",
        Some(t.elapsed().as_secs_f64()),
        &learned,
        &truths,
    ));
    let ring_only: Vec<f64> = fused.order_raw.iter().map(|r| r[12]).collect();
    scorers.push(figures(
        "shopfuse rings alone (FRAUDAR in shared-key components)",
        None,
        &ring_only,
        &truths,
    ));
    if let Some(py) = peers {
        scorers.extend(peer_figures(py, &book, &fused, &truths, fraudar_blocks)?);
    }
    let mut patterns = BTreeMap::new();
    for t in truths.iter().filter(|t| !t.pattern.is_empty()) {
        *patterns.entry(t.pattern.clone()).or_insert(0) += 1;
    }
    Ok(ProjectRiskEval {
        orders: book.orders.len(),
        fraud_orders: patterns.values().sum(),
        patterns,
        scorers,
        rings: ring_recovery(&book, &fused.rings, &truths),
        fake_reviews: fake_reviews(&book, &fused, &truths),
    })
}

fn read_truth(path: &Path) -> Result<HashMap<(String, String), Truth>, RiskError> {
    let error = |row: Option<usize>, message: String| RiskError::Data {
        path: path.to_path_buf(),
        row,
        message,
    };
    let mut reader = csv::Reader::from_path(path).map_err(|e| {
        error(
            None,
            format!("{e} (a generated project has it: `shopfuse generate`)"),
        )
    })?;
    let mut out = HashMap::new();
    for (i, record) in reader.records().enumerate() {
        let r = record.map_err(|e| error(Some(i + 2), e.to_string()))?;
        let (Some(platform), Some(order), Some(pattern)) = (r.get(0), r.get(1), r.get(3)) else {
            return Err(error(
                Some(i + 2),
                "expected platform,order_id,is_fraud,pattern".into(),
            ));
        };
        out.insert(
            (platform.to_string(), order.to_string()),
            Truth {
                pattern: pattern.to_string(),
            },
        );
    }
    Ok(out)
}

/// What a project with decisions gets: the learned combiner, each half of the orders scored
/// by the model fitted on the other half's labels (halves by a hash of the order id).
fn cross_fitted(
    book: &OrderBook,
    config: &RiskConfig,
    truths: &[Truth],
) -> Result<Vec<f64>, RiskError> {
    let fold: Vec<bool> = book
        .orders
        .iter()
        .map(|o| crate::order_book::text_hash(&o.order_id).is_multiple_of(2))
        .collect();
    let mut scores = vec![0.0; book.orders.len()];
    for held_out in [false, true] {
        let labels: Vec<Option<bool>> = truths
            .iter()
            .zip(&fold)
            .map(|(t, &f)| (f != held_out).then_some(!t.pattern.is_empty()))
            .collect();
        let a = assess(book, config, Some(&labels))?;
        for (i, s) in a.orders.iter().enumerate() {
            if fold[i] == held_out {
                scores[i] = s.score;
            }
        }
    }
    Ok(scores)
}

/// Each platform's orders scored by the model that sees that platform alone.
fn platform_at_a_time(book: &OrderBook, config: &RiskConfig) -> Result<Vec<f64>, RiskError> {
    let mut by_key: HashMap<(u16, &str), f64> = HashMap::new();
    let mut alone: Vec<(u16, OrderBook, Vec<f64>)> = Vec::new();
    for p in 0..book.platforms.len() as u16 {
        let sub = book.platform_only(p);
        let scores = assess(&sub, config, None)?
            .orders
            .iter()
            .map(|s| s.score)
            .collect();
        alone.push((p, sub, scores));
    }
    for (p, sub, scores) in &alone {
        for (o, &s) in sub.orders.iter().zip(scores) {
            by_key.insert((*p, o.order_id.as_str()), s);
        }
    }
    Ok(book
        .orders
        .iter()
        .map(|o| {
            let p = book.accounts[o.account as usize].platform;
            by_key
                .get(&(p, o.order_id.as_str()))
                .copied()
                .unwrap_or(0.0)
        })
        .collect())
}

fn figures(name: &str, seconds: Option<f64>, scores: &[f64], truths: &[Truth]) -> ScorerFigures {
    let mut patterns = BTreeMap::new();
    let labels: Vec<bool> = truths.iter().map(|t| !t.pattern.is_empty()).collect();
    patterns.insert("all".to_string(), Ranking::of(scores, &labels));
    let kinds: BTreeSet<&str> = truths
        .iter()
        .map(|t| t.pattern.as_str())
        .filter(|p| !p.is_empty())
        .collect();
    for kind in kinds {
        let (s, l): (Vec<f64>, Vec<bool>) = scores
            .iter()
            .zip(truths)
            .filter(|(_, t)| t.pattern.is_empty() || t.pattern == kind)
            .map(|(&s, t)| (s, t.pattern == kind))
            .unzip();
        patterns.insert(kind.to_string(), Ranking::of(&s, &l));
    }
    ScorerFigures {
        scorer: name.to_string(),
        seconds,
        patterns,
    }
}

/// PyOD's detectors on the suspicion table (a missing value filled with the column median),
/// and UGFraud's FRAUDAR on the customer × (key, listing) graph (an order scores its buyer's
/// first block's rank, as UGFraud's own Yelp demo scores users).
fn peer_figures(
    py: &PeerPython,
    book: &OrderBook,
    fused: &crate::Assessment,
    truths: &[Truth],
    blocks: usize,
) -> Result<Vec<ScorerFigures>, RiskError> {
    let width = OrderFeature::ALL.len();
    let mut table: Vec<Vec<f64>> = fused.order_raw.iter().map(order_suspicion).collect();
    for j in 0..width {
        let mut col: Vec<f64> = table
            .iter()
            .map(|r| r[j])
            .filter(|v| v.is_finite())
            .collect();
        col.sort_by(f64::total_cmp);
        let median = col.get(col.len() / 2).copied().unwrap_or(0.0);
        for r in &mut table {
            if !r[j].is_finite() {
                r[j] = median;
            }
        }
    }
    let names: Vec<&str> = OrderFeature::ALL.iter().map(|f| f.name()).collect();
    let run = py.pyod(&names, &table)?;
    let mut out = Vec::new();
    for (key, name) in [
        ("iforest", "PyOD IForest (same features)"),
        ("ecod", "PyOD ECOD (same features)"),
    ] {
        if let Some(scores) = run.scores.get(key) {
            out.push(figures(name, run.seconds.get(key).copied(), scores, truths));
        }
    }
    let (rows, cols, edges) = entity_key_graph(book);
    let (found, seconds) = py.fraudar(rows, cols, &edges, blocks)?;
    let mut entity_score = vec![0.0; rows];
    for (i, b) in found.iter().enumerate().rev() {
        for &r in &b.rows {
            entity_score[r as usize] = (found.len() - i) as f64;
        }
    }
    let scores: Vec<f64> = book
        .orders
        .iter()
        .map(|o| entity_score[book.entity_of(o.account) as usize])
        .collect();
    out.push(figures(
        &format!("UGFraud FRAUDAR ({blocks} blocks, whole graph)"),
        Some(seconds),
        &scores,
        truths,
    ));
    Ok(out)
}

/// The whole entity × (key, listing) graph, as the ring search sees it before it splits
/// it into components.
pub fn entity_key_graph(book: &OrderBook) -> (usize, usize, Vec<(u32, u32)>) {
    let graph = crate::rings::Incidences::of(book);
    let mut edges: Vec<(u32, u32)> = graph.pairs.iter().map(|&(c, e)| (e, c)).collect();
    edges.sort_unstable();
    (book.entities.len(), graph.degree.len(), edges)
}

fn ring_recovery(book: &OrderBook, rings: &[crate::rings::Ring], truths: &[Truth]) -> RingRecovery {
    let brushing: BTreeSet<u32> = book
        .orders
        .iter()
        .zip(truths)
        .filter(|(_, t)| t.pattern == "brushing")
        .map(|(o, _)| o.account)
        .collect();
    let members: BTreeSet<u32> = rings
        .iter()
        .flat_map(|r| r.entities.iter().copied())
        .collect();
    let ordered: BTreeSet<u32> = book.orders.iter().map(|o| o.account).collect();
    let ring_accounts: BTreeSet<u32> = (0..book.accounts.len() as u32)
        .filter(|&a| members.contains(&book.entity_of(a)) && ordered.contains(&a))
        .collect();
    let hit = ring_accounts.intersection(&brushing).count();
    let index = crate::order_book::EntityIndex::of(book);
    let cross = rings
        .iter()
        .filter(|r| {
            crate::report::RingFacts::of(book, &index, r)
                .platforms
                .len()
                > 1
        })
        .count();
    RingRecovery {
        rings: rings.len(),
        cross_platform_rings: cross,
        ring_accounts: ring_accounts.len(),
        ring_accounts_brushing: hit,
        brushing_accounts: brushing.len(),
        precision: hit as f64 / ring_accounts.len().max(1) as f64,
        recall: hit as f64 / brushing.len().max(1) as f64,
    }
}

fn fake_reviews(book: &OrderBook, fused: &crate::Assessment, truths: &[Truth]) -> Ranking {
    let brushed: BTreeSet<(u32, u32)> = book
        .orders
        .iter()
        .zip(truths)
        .filter(|(_, t)| t.pattern == "brushing")
        .map(|(o, _)| (o.account, o.listing))
        .collect();
    let labels: Vec<bool> = book
        .reviews
        .iter()
        .map(|r| r.account.is_some_and(|a| brushed.contains(&(a, r.listing))))
        .collect();
    let scores: Vec<f64> = fused.reviews.iter().map(|s| s.score).collect();
    Ranking::of(&scores, &labels)
}
