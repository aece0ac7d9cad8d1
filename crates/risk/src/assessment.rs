//! One pass over an [`OrderBook`]: rings, order evidence and scores, review evidence and
//! scores. The stage, `eval risk` and `bench risk` all run this.

use std::time::Instant;

use rayon::prelude::*;
use serde::Serialize;
use shopfuse_core::config::RiskConfig;

use crate::evidence::{
    order_features, order_suspicion, review_features, OrderContext, OrderFeature, OrderRow,
    ReviewFeature, ReviewRow,
};
use crate::order_book::OrderBook;
use crate::rings::{find_rings_in, Incidences, Ring};
use crate::tail_score::{top_parts, Combiner, Scored, TailScorer};
use crate::RiskError;

/// Labelled rows of each class a learned combiner needs.
const MIN_LABELS_PER_CLASS: usize = 10;

/// Seconds per phase.
#[derive(Debug, Clone, Default, Serialize)]
pub struct PhaseSeconds {
    pub rings: f64,
    pub order_features: f64,
    pub order_scores: f64,
    pub reviews: f64,
}

/// Everything scored.
#[derive(Debug, Clone)]
pub struct Assessment {
    pub rings: Vec<Ring>,
    pub order_raw: Vec<OrderRow>,
    pub orders: Vec<Scored>,
    pub review_raw: Vec<ReviewRow>,
    pub reviews: Vec<Scored>,
    /// `unsupervised` or `supervised`.
    pub method: &'static str,
    /// Labelled orders the combiner saw (0 when unsupervised).
    pub labelled_orders: usize,
    pub seconds: PhaseSeconds,
}

/// Scores a book. `labels[i]` is the decision on order `i`, when there is one.
pub fn assess(
    book: &OrderBook,
    config: &RiskConfig,
    labels: Option<&[Option<bool>]>,
) -> Result<Assessment, RiskError> {
    let mut seconds = PhaseSeconds::default();
    let t = Instant::now();
    let graph = Incidences::of(book);
    let rings = find_rings_in(book, &graph, config);
    seconds.rings = t.elapsed().as_secs_f64();
    let t = Instant::now();
    let ctx = OrderContext::new(book, &graph, &rings);
    let order_raw = order_features(&ctx);
    seconds.order_features = t.elapsed().as_secs_f64();
    let t = Instant::now();
    let tails = TailScorer::fit_columns(order_raw.len(), OrderFeature::ALL.len(), |j| {
        let feature = OrderFeature::ALL[j];
        order_raw.iter().map(|r| feature.suspicion(r[j])).collect()
    });
    let surprises: Vec<Vec<f64>> = order_raw
        .par_iter()
        .map(|r| tails.surprises(&order_suspicion(r)))
        .collect();
    drop(tails);
    let (combiner, labelled_orders) = combiner(&surprises, labels)?;
    let orders: Vec<Scored> = surprises
        .into_par_iter()
        .map(|s| combiner.score(s))
        .collect();
    seconds.order_scores = t.elapsed().as_secs_f64();
    let t = Instant::now();
    let order_scores: Vec<f64> = orders.iter().map(|s| s.score).collect();
    let review_raw = review_features(&ctx, &order_scores);
    let review_suspicion: Vec<Vec<f64>> = review_raw
        .iter()
        .map(|r| {
            ReviewFeature::ALL
                .iter()
                .zip(r)
                .map(|(f, &x)| f.suspicion(x))
                .collect()
        })
        .collect();
    let review_tails = TailScorer::fit(&review_suspicion, ReviewFeature::ALL.len());
    let reviews = review_suspicion
        .par_iter()
        .map(|r| Combiner::Sum.score(review_tails.surprises(r)))
        .collect();
    seconds.reviews = t.elapsed().as_secs_f64();
    Ok(Assessment {
        rings,
        order_raw,
        orders,
        review_raw,
        reviews,
        method: combiner.name(),
        labelled_orders,
        seconds,
    })
}

fn combiner(
    surprises: &[Vec<f64>],
    labels: Option<&[Option<bool>]>,
) -> Result<(Combiner, usize), RiskError> {
    let Some(labels) = labels else {
        return Ok((Combiner::Sum, 0));
    };
    let (rows, ys): (Vec<Vec<f64>>, Vec<bool>) = surprises
        .iter()
        .zip(labels)
        .filter_map(|(s, l)| l.map(|l| (s.clone(), l)))
        .unzip();
    Ok(match Combiner::learn(&rows, &ys, MIN_LABELS_PER_CLASS)? {
        Some(c) => (c, ys.len()),
        None => (Combiner::Sum, 0),
    })
}

impl Assessment {
    /// The top reasons of order `i`, `; `-joined.
    pub fn order_reasons(&self, i: usize, n: usize) -> String {
        top_parts(&self.orders[i].parts, n)
            .into_iter()
            .map(|j| OrderFeature::ALL[j].reason(self.order_raw[i][j]))
            .collect::<Vec<_>>()
            .join("; ")
    }

    /// The top reasons of review `i`.
    pub fn review_reasons(&self, i: usize, n: usize) -> String {
        top_parts(&self.reviews[i].parts, n)
            .into_iter()
            .map(|j| ReviewFeature::ALL[j].reason(self.review_raw[i][j]))
            .collect::<Vec<_>>()
            .join("; ")
    }
}
