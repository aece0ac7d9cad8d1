//! Training on all the data and serving: the hybrid's weights chosen on a temporal
//! validation split, then every customer's top `store_k` with a reason per item, written to
//! the `recommendations` table that `shopfuse recommend` reads (precomputed, as a shop's
//! batch recommendations are, so a lookup needs no model in memory).

use std::collections::{BTreeMap, HashMap};
use std::time::Instant;

use rayon::prelude::*;
use serde::Serialize;
use shopfuse_core::config::RecsConfig;
use shopfuse_core::value::rows_to_batch;
use shopfuse_core::{Transaction, Value};
use shopfuse_resolve::catalogue::offers;

use super::data::{Action, InteractionLog, LogSummary, ReadTable};
use super::evaluate::{fit_hybrid, hybrid_weight_map, rank, tune_hybrid, Exclusions, SplitKind};
use super::models::{Popularity, Recommender, TrainMatrix};
use crate::LearnError;

shopfuse_core::table! {
    /// One row per customer and recommended golden product, best first, with the reason.
    pub mod recommendations("recommendations") {
        /// Unified customer id.
        customer_id: Text;
        /// 1 = best.
        rank: Int;
        /// The recommended golden product.
        golden_id: Text;
        /// Its title.
        title: Text;
        /// The hybrid model's score.
        score: Float;
        /// The history item that supports it most ("bought “…” on JD"), or why a popular item.
        reason: Text;
        /// The model that produced the list (hybrid, or popularity for customers without
        /// history).
        model: Text;
    }
}

shopfuse_core::table! {
    /// One row per customer and golden product they touched: the interaction log the models
    /// learn from, counted per event type across platforms.
    pub mod interactions("interactions") {
        /// Unified customer id.
        customer_id: Text;
        /// Golden product id.
        golden_id: Text;
        /// Views on any platform.
        views: Int;
        /// Favourites.
        favorites: Int;
        /// Add-to-carts.
        carts: Int;
        /// Purchases (orders; refunds and cancellations left out).
        purchases: Int;
        /// Platforms the interactions came from, comma-separated.
        platforms: Text;
        /// First interaction.
        first_at: Timestamp;
        /// Last interaction.
        last_at: Timestamp;
    }
}

pub const RECOMMENDATIONS_TABLE: &str = recommendations::NAME;
pub const INTERACTIONS_TABLE: &str = interactions::NAME;

/// How platforms are named in reasons.
pub fn platform_label(platform: &str) -> String {
    match platform {
        "taobao" => "Taobao".into(),
        "jd" => "JD".into(),
        "amazon" => "Amazon".into(),
        "own" | "own_shop" => "our shop".into(),
        "app" => "the app".into(),
        other => other.to_string(),
    }
}

/// Per (user, item): counts per action, platforms, first and last time, and the strongest
/// action with the platform it last happened on (what a reason quotes).
#[derive(Debug, Clone, Default)]
struct Cell {
    counts: [usize; 4],
    platforms: Vec<u16>,
    first: i64,
    last: i64,
    strongest: Option<(Action, u16, i64)>,
}

fn cells(log: &InteractionLog) -> BTreeMap<(u32, u32), Cell> {
    let mut out: BTreeMap<(u32, u32), Cell> = BTreeMap::new();
    for i in &log.interactions {
        let c = out.entry((i.user, i.item)).or_insert_with(|| Cell {
            first: i.at,
            last: i.at,
            ..Default::default()
        });
        c.counts[i.action as usize] += 1;
        if !c.platforms.contains(&i.platform) {
            c.platforms.push(i.platform);
        }
        c.first = c.first.min(i.at);
        c.last = c.last.max(i.at);
        let better = match c.strongest {
            None => true,
            Some((a, _, at)) => i.action > a || (i.action == a && i.at >= at),
        };
        if better {
            c.strongest = Some((i.action, i.platform, i.at));
        }
    }
    out
}

#[derive(Debug, Clone, Serialize)]
pub struct RecsSummary {
    pub log: LogSummary,
    pub customers: usize,
    pub customers_with_history: usize,
    pub items: usize,
    pub recommendations: usize,
    pub hybrid_weights: BTreeMap<String, f32>,
    pub validation_ndcg_10: f64,
    pub seconds: f64,
}

/// Trains the hybrid on `log` and writes `interactions` and `recommendations`.
pub fn train_recs(
    tx: &mut Transaction<'_>,
    log: &InteractionLog,
    config: &RecsConfig,
) -> Result<RecsSummary, LearnError> {
    let started = Instant::now();
    let n_users = log.users.len();
    let n_items = log.catalog.len();
    let (weights, validation_ndcg_10) = tune_hybrid(
        log,
        &log.interactions,
        SplitKind::Temporal { test_share: 0.1 },
        config,
    )?;
    let now = log.as_of();
    let x = TrainMatrix::build(n_users, n_items, log.interactions.iter(), config, now);
    let xt = x.transpose();
    let model = fit_hybrid(&x, &xt, log, config, &weights)?;
    let popularity = Popularity::fit(&x);
    let pop_norm = popularity.normalised();
    let buyers = buyers_per_item(log);
    let exclusions = Exclusions::new(
        n_users,
        &log.catalog,
        log.interactions.iter(),
        config.exclude,
    );
    let cells = cells(log);
    let k = config.store_k.min(n_items);
    let everything = |_: usize| true;

    let per_user: Vec<Vec<(usize, f32, String)>> = (0..n_users)
        .into_par_iter()
        .map_init(
            || vec![0f32; n_items],
            |scores, u| {
                let ranked = rank(
                    &model,
                    &x,
                    u,
                    k,
                    &pop_norm,
                    &exclusions,
                    &everything,
                    scores,
                );
                let (hist, values) = x.row(u);
                ranked
                    .into_iter()
                    .map(|i| {
                        let reason = reason(&model, log, &cells, u, i, hist, values, buyers[i]);
                        (i, scores[i], reason)
                    })
                    .collect()
            },
        )
        .collect();

    write_interactions(tx, log, &cells)?;
    let recommendations = write_recommendations(tx, log, &per_user)?;
    Ok(RecsSummary {
        log: log.summary.clone(),
        customers: n_users,
        customers_with_history: (0..n_users).filter(|&u| !x.row(u).0.is_empty()).count(),
        items: n_items,
        recommendations,
        hybrid_weights: hybrid_weight_map(weights),
        validation_ndcg_10,
        seconds: started.elapsed().as_secs_f64(),
    })
}

/// Distinct buyers of each item.
fn buyers_per_item(log: &InteractionLog) -> Vec<usize> {
    let mut buyers = vec![0usize; log.catalog.len()];
    let mut seen = std::collections::HashSet::new();
    for i in log.interactions.iter() {
        if i.action == Action::Purchase && seen.insert((i.user, i.item)) {
            buyers[i.item as usize] += 1;
        }
    }
    buyers
}

/// Replaces `recommendations` with each customer's ranked list; returns the row count.
fn write_recommendations(
    tx: &mut Transaction<'_>,
    log: &InteractionLog,
    per_user: &[Vec<(usize, f32, String)>],
) -> Result<usize, LearnError> {
    let schema = recommendations::TABLE.schema();
    let mut rows = Vec::new();
    for (u, recs) in per_user.iter().enumerate() {
        for (r, (i, score, reason)) in recs.iter().enumerate() {
            rows.push(vec![
                Value::Text(log.users[u].clone()),
                Value::Int(r as i64 + 1),
                Value::Text(log.catalog.ids[*i].clone()),
                Value::Text(log.catalog.titles[*i].clone()),
                Value::Float(((*score as f64) * 1e6).round() / 1e6),
                Value::Text(reason.clone()),
                Value::Text("hybrid".into()),
            ]);
        }
    }
    tx.replace(
        RECOMMENDATIONS_TABLE,
        &schema,
        &[rows_to_batch(&schema, &rows)?],
    )?;
    Ok(rows.len())
}

/// Why item `i` is recommended to `u`: the history item that supports it most, quoted with
/// what the customer did to it and where; popularity for customers without history.
#[allow(clippy::too_many_arguments)]
fn reason(
    model: &dyn Recommender,
    log: &InteractionLog,
    cells: &BTreeMap<(u32, u32), Cell>,
    u: usize,
    i: usize,
    hist: &[u32],
    values: &[f32],
    buyers: usize,
) -> String {
    let best = hist
        .iter()
        .zip(values)
        .filter_map(|(&j, &x)| Some((j, x * model.support(i, j as usize)?)))
        .filter(|(_, s)| *s > 0.0)
        .max_by(|a, b| a.1.total_cmp(&b.1).then(b.0.cmp(&a.0)));
    match best.and_then(|(j, _)| Some((j, cells.get(&(u as u32, j))?.strongest?))) {
        Some((j, (action, platform, _))) => format!(
            "{} \u{201c}{}\u{201d} on {}",
            action.verb(),
            log.catalog.titles[j as usize],
            platform_label(&log.platforms[platform as usize])
        ),
        None if hist.is_empty() => format!("popular across platforms ({buyers} buyers)"),
        None => format!("popular with shoppers of your categories ({buyers} buyers)"),
    }
}

fn write_interactions(
    tx: &mut Transaction<'_>,
    log: &InteractionLog,
    cells: &BTreeMap<(u32, u32), Cell>,
) -> Result<(), LearnError> {
    let schema = interactions::TABLE.schema();
    let rows: Vec<Vec<Value>> = cells
        .iter()
        .map(|((u, i), c)| {
            let mut platforms: Vec<&str> = c
                .platforms
                .iter()
                .map(|p| log.platforms[*p as usize].as_str())
                .collect();
            platforms.sort_unstable();
            vec![
                Value::Text(log.users[*u as usize].clone()),
                Value::Text(log.catalog.ids[*i as usize].clone()),
                Value::Int(c.counts[0] as i64),
                Value::Int(c.counts[1] as i64),
                Value::Int(c.counts[2] as i64),
                Value::Int(c.counts[3] as i64),
                Value::Text(platforms.join(",")),
                Value::Timestamp(c.first),
                Value::Timestamp(c.last),
            ]
        })
        .collect();
    tx.replace(
        INTERACTIONS_TABLE,
        &schema,
        &[rows_to_batch(&schema, &rows)?],
    )?;
    Ok(())
}

#[derive(Debug, Clone, Serialize)]
pub struct Recommendation {
    pub rank: i64,
    pub golden_id: String,
    pub title: String,
    pub score: f64,
    pub reason: String,
}

/// The stored top `k` of `customer`.
pub fn read_recommendations(
    read: ReadTable<'_>,
    customer: &str,
    k: usize,
) -> Result<Vec<Recommendation>, LearnError> {
    let table = read(RECOMMENDATIONS_TABLE)?.ok_or_else(|| LearnError::Missing {
        table: RECOMMENDATIONS_TABLE.to_string(),
        run: "shopfuse run",
    })?;
    let mut out: Vec<Recommendation> = table
        .rows
        .iter()
        .filter(|r| table.text(r, "customer_id").as_deref() == Some(customer))
        .filter_map(|r| {
            Some(Recommendation {
                rank: table.i64(r, "rank")?,
                golden_id: table.text(r, "golden_id")?,
                title: table.text(r, "title")?,
                score: table.f64(r, "score")?,
                reason: table.text(r, "reason")?,
            })
        })
        .collect();
    if out.is_empty() {
        return Err(LearnError::Invalid(format!(
            "no customer {customer:?} in the recommendations table; customer ids look like CU… (list some with `shopfuse sql \"select customer_id from customers limit 5\"`)"
        )));
    }
    out.sort_by_key(|r| r.rank);
    let stored = out.len();
    if k > stored {
        return Err(LearnError::Invalid(format!(
            "only {stored} recommendations are stored per customer; raise [recs] store_k in shopfuse.toml and run `shopfuse train recs`, or ask for -k {stored} or fewer"
        )));
    }
    out.truncate(k);
    Ok(out)
}

/// Item title vectors for the content model: the mean of each golden product's offer
/// title vectors (Chinese and English titles together), from the caller's encoder.
pub fn offer_titles(
    read: ReadTable<'_>,
    log: &InteractionLog,
) -> Result<Vec<Vec<String>>, LearnError> {
    let index: HashMap<&str, usize> = log
        .catalog
        .ids
        .iter()
        .enumerate()
        .map(|(i, id)| (id.as_str(), i))
        .collect();
    let mut titles = vec![Vec::new(); log.catalog.len()];
    if let Some(offers) = read(offers::NAME)? {
        for row in &offers.rows {
            if let (Some(g), Some(t)) = (
                offers.text(row, offers::golden_id),
                offers.text(row, offers::title),
            ) {
                if let Some(&i) = index.get(g.as_str()) {
                    titles[i].push(t);
                }
            }
        }
    }
    for (i, t) in titles.iter_mut().enumerate() {
        if t.is_empty() {
            t.push(log.catalog.titles[i].clone());
        }
    }
    Ok(titles)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn platforms_read_as_people_say_them() {
        assert_eq!(platform_label("jd"), "JD");
        assert_eq!(platform_label("taobao"), "Taobao");
        assert_eq!(platform_label("wechat"), "wechat");
    }
}
