//! `shopfuse eval risk --yelpchi DIR`: the graph scores on YelpChi's user × product review
//! graph (`../shared/data/yelpchi/`, label -1 = filtered = spam), and FRAUDAR's block
//! recovery with injected dense blocks and camouflage (Hooi et al. 2016, §5; UGFraud's
//! `injectCliqueCamo`), ours and UGFraud's on the same graphs.
//!
//! Scoring protocol (UGFraud's Yelp demo): dense blocks are peeled one after another; a user
//! scores its first block's density normalised between the last and the first block's, a
//! user in no block scores ~0, and a review scores its user. "Peel rank" adds, below the
//! blocks, each user's position in the first peel (users peeled last sit in the densest
//! part of the graph), so every user is ranked.

use std::io::{BufRead, BufReader};
use std::path::Path;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::Serialize;

use crate::fraudar::{dense_blocks, peel, Bipartite, Block, BlockLimits};
use crate::metrics::Ranking;
use crate::peers::PeerPython;
use crate::RiskError;

/// The review graph.
pub struct YelpGraph {
    pub users: usize,
    pub products: usize,
    /// (user, product) per review, in file order.
    pub reviews: Vec<(u32, u32)>,
    /// Review is spam (label -1).
    pub spam: Vec<bool>,
}

impl YelpGraph {
    /// Reads `metadata.gz` (`user product rating label date` per line).
    pub fn read(dir: &Path) -> Result<Self, RiskError> {
        let path = dir.join("metadata.gz");
        let file = std::fs::File::open(&path).map_err(|e| RiskError::io(&path, e))?;
        let reader = BufReader::new(flate2::read::GzDecoder::new(file));
        let (mut users, mut products) = (
            std::collections::HashMap::new(),
            std::collections::HashMap::new(),
        );
        let (mut reviews, mut spam) = (Vec::new(), Vec::new());
        for (i, line) in reader.lines().enumerate() {
            let line = line.map_err(|e| RiskError::io(&path, e))?;
            let f: Vec<&str> = line.split_whitespace().collect();
            if f.len() < 4 {
                return Err(RiskError::Data {
                    path: path.clone(),
                    row: Some(i + 1),
                    message: "expected `user product rating label date`".into(),
                });
            }
            let n = users.len() as u32;
            let u = *users.entry(f[0].to_string()).or_insert(n);
            let n = products.len() as u32;
            let p = *products.entry(f[1].to_string()).or_insert(n);
            reviews.push((u, p));
            spam.push(match f[3] {
                "-1" => true,
                "1" => false,
                other => {
                    return Err(RiskError::Data {
                        path: path.clone(),
                        row: Some(i + 1),
                        message: format!("label {other:?}: expected -1 (spam) or 1"),
                    })
                }
            });
        }
        Ok(Self {
            users: users.len(),
            products: products.len(),
            reviews,
            spam,
        })
    }

    fn graph(&self, edges: &[(u32, u32)]) -> Bipartite {
        Bipartite::from_edges(self.users, self.products, edges)
    }
}

/// AUC and AP at review and user level.
#[derive(Debug, Clone, Serialize)]
pub struct GraphScores {
    pub scorer: String,
    pub seconds: f64,
    pub reviews: Ranking,
    pub users: Ranking,
}

/// Block recovery under one camouflage.
#[derive(Debug, Clone, Serialize)]
pub struct Injection {
    pub camouflage: String,
    pub fake_users: usize,
    pub target_products: usize,
    pub density: f64,
    /// F1 of the first block's users and products against the injected ones (ours, UGFraud's).
    pub f1_shopfuse: f64,
    pub f1_ugfraud: Option<f64>,
    pub seconds_shopfuse: f64,
    pub seconds_ugfraud: Option<f64>,
}

#[derive(Debug, Clone, Serialize)]
pub struct YelpEval {
    pub users: usize,
    pub products: usize,
    pub reviews: usize,
    pub spam_reviews: usize,
    pub spam_users: usize,
    pub scores: Vec<GraphScores>,
    pub injections: Vec<Injection>,
}

/// User scores from blocks (UGFraud's protocol), optionally ranked below by peel position.
fn user_scores(users: usize, blocks: &[Block], peel_rank: Option<&[f64]>) -> Vec<f64> {
    let mut score = vec![0.0; users];
    if let Some(rank) = peel_rank {
        score.copy_from_slice(rank);
    }
    let (max, min) = (
        blocks.first().map_or(1.0, |b| b.density),
        blocks.last().map_or(0.0, |b| b.density),
    );
    let span = (max - min).max(1e-12);
    for b in blocks.iter().rev() {
        for &u in &b.rows {
            score[u as usize] = 1.0 + 1e-6 + (b.density - min) / span;
        }
    }
    score
}

/// Runs the whole Yelp evaluation.
pub fn eval_yelp(
    dir: &Path,
    peers: Option<&PeerPython>,
    blocks: usize,
) -> Result<YelpEval, RiskError> {
    let g = YelpGraph::read(dir)?;
    let mut user_spam = vec![false; g.users];
    for (&(u, _), &s) in g.reviews.iter().zip(&g.spam) {
        user_spam[u as usize] |= s;
    }
    let graph = g.graph(&g.reviews);
    let weights = graph.log_column_weights();
    let limits = BlockLimits {
        max_blocks: blocks,
        min_rows: 1,
        min_density: 0.0,
    };
    let rank = |users: &[f64]| -> (Ranking, Ranking) {
        let review_scores: Vec<f64> = g.reviews.iter().map(|&(u, _)| users[u as usize]).collect();
        (
            Ranking::of(&review_scores, &g.spam),
            Ranking::of(users, &user_spam),
        )
    };
    let mut scores = Vec::new();
    let t = std::time::Instant::now();
    let found = dense_blocks(&graph, &weights, limits);
    let block_seconds = t.elapsed().as_secs_f64();
    let (reviews, users) = rank(&user_scores(g.users, &found, None));
    scores.push(GraphScores {
        scorer: format!("shopfuse FRAUDAR ({blocks} blocks)"),
        seconds: block_seconds,
        reviews,
        users,
    });
    let t = std::time::Instant::now();
    let first = peel(&graph, &weights, &vec![true; graph.edges()]);
    let mut position = vec![0.0; g.users];
    for (i, &node) in first.order.iter().enumerate() {
        if (node as usize) < g.users {
            position[node as usize] = i as f64 / first.order.len() as f64;
        }
    }
    let (reviews, users) = rank(&user_scores(g.users, &found, Some(&position)));
    scores.push(GraphScores {
        scorer: format!("shopfuse FRAUDAR ({blocks} blocks) + peel rank"),
        seconds: block_seconds + t.elapsed().as_secs_f64(),
        reviews,
        users,
    });
    if let Some(py) = peers {
        let (theirs, seconds) =
            py.fraudar(g.users, g.products, &graph_edges(&g.reviews), blocks)?;
        let (reviews, users) = rank(&user_scores(g.users, &theirs, None));
        scores.push(GraphScores {
            scorer: format!("UGFraud FRAUDAR ({blocks} blocks)"),
            seconds,
            reviews,
            users,
        });
    }
    let mut injections = Vec::new();
    for camouflage in ["none", "random", "random-2x", "biased"] {
        injections.push(inject_and_recover(&g, camouflage, peers)?);
    }
    Ok(YelpEval {
        users: g.users,
        products: g.products,
        reviews: g.reviews.len(),
        spam_reviews: g.spam.iter().filter(|&&s| s).count(),
        spam_users: user_spam.iter().filter(|&&s| s).count(),
        scores,
        injections,
    })
}

fn graph_edges(edges: &[(u32, u32)]) -> Vec<(u32, u32)> {
    let mut e = edges.to_vec();
    e.sort_unstable();
    e.dedup();
    e
}

/// Fake users and products of the injection, and its density.
const FAKE_USERS: u32 = 200;
const TARGETS: u32 = 20;
const INJECTED_DENSITY: f64 = 0.5;

/// Adds a block of the first `FAKE_USERS` users × first `TARGETS` products at density
/// `INJECTED_DENSITY`, with camouflage as UGFraud's `injectCliqueCamo` draws it: `random`
/// as many camouflage edges as fraud edges spread uniformly over the other products,
/// `random-2x` twice that, `biased` as many drawn in proportion to the products' degrees.
fn injected(g: &YelpGraph, camouflage: &str, seed: u64) -> Vec<(u32, u32)> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut edges = g.reviews.clone();
    let others: Vec<u32> = (TARGETS..g.products as u32).collect();
    let mut population: Vec<u32> = Vec::new();
    for &(_, p) in &g.reviews {
        if p >= TARGETS {
            population.push(p);
        }
    }
    let n0 = TARGETS as f64;
    for u in 0..FAKE_USERS {
        for p in 0..TARGETS {
            if rng.random_bool(INJECTED_DENSITY) {
                edges.push((u, p));
            }
        }
        let share = n0 * INJECTED_DENSITY / others.len() as f64;
        match camouflage {
            "random" | "random-2x" => {
                let share = if camouflage == "random" {
                    share
                } else {
                    2.0 * share
                };
                for &p in &others {
                    if rng.random_bool(share.min(1.0)) {
                        edges.push((u, p));
                    }
                }
            }
            "biased" => {
                for _ in 0..(n0 * INJECTED_DENSITY) as usize {
                    edges.push((u, population[rng.random_range(0..population.len())]));
                }
            }
            _ => {}
        }
    }
    graph_edges(&edges)
}

/// F1 of a block's users and products against the injected ones (UGFraud's `getFMeasure`).
fn block_f1(block: Option<&Block>) -> f64 {
    let Some(b) = block else {
        return 0.0;
    };
    let hit = b.rows.iter().filter(|&&r| r < FAKE_USERS).count()
        + b.cols.iter().filter(|&&c| c < TARGETS).count();
    let predicted = b.rows.len() + b.cols.len();
    let actual = (FAKE_USERS + TARGETS) as usize;
    let (p, r) = (
        hit as f64 / predicted.max(1) as f64,
        hit as f64 / actual as f64,
    );
    if p + r == 0.0 {
        0.0
    } else {
        2.0 * p * r / (p + r)
    }
}

fn inject_and_recover(
    g: &YelpGraph,
    camouflage: &str,
    peers: Option<&PeerPython>,
) -> Result<Injection, RiskError> {
    let edges = injected(g, camouflage, 0x5eed);
    let graph = g.graph(&edges);
    let t = std::time::Instant::now();
    let ours = peel(
        &graph,
        &graph.log_column_weights(),
        &vec![true; graph.edges()],
    )
    .block(g.users);
    let seconds_shopfuse = t.elapsed().as_secs_f64();
    let (f1_ugfraud, seconds_ugfraud) = match peers {
        Some(py) => {
            let (theirs, s) = py.fraudar(g.users, g.products, &edges, 1)?;
            (Some(block_f1(theirs.first())), Some(s))
        }
        None => (None, None),
    };
    Ok(Injection {
        camouflage: camouflage.to_string(),
        fake_users: FAKE_USERS as usize,
        target_products: TARGETS as usize,
        density: INJECTED_DENSITY,
        f1_shopfuse: block_f1(Some(&ours)),
        f1_ugfraud,
        seconds_shopfuse,
        seconds_ugfraud,
    })
}
