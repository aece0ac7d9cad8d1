//! `shopfuse train recs`, `shopfuse recommend`, `shopfuse eval recs`, `shopfuse bench recs`.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{bail, Context, Result};
use clap::{Args, Subcommand};
use shopfuse_core::TableStore;
use shopfuse_embed::EmbeddingCache;
use shopfuse_learn::recs::evaluate::{PlatformLift, RecsEvaluation};
use shopfuse_learn::recs::{serve, InteractionLog, RecsSummary, SplitKind};
use shopfuse_pipeline::stages::project_log;

use crate::{open, print_json, Bar, Cli};

#[derive(Subcommand)]
pub enum TrainCommand {
    /// Train the recommendation models on every platform's behaviour and orders (joined on
    /// unified customer and golden product), choose the hybrid's blend on a temporal
    /// validation split, and store each customer's top `[recs] store_k` with reasons.
    Recs,
    /// Fine-tune the matcher's cross-encoder (all-MiniLM-L6-v2 reading both records of a pair
    /// as one sequence) on labelled pairs, early-stopped on validation F1; writes the weights
    /// and a manifest (base model, data and weight checksums, settings, figures) to --out.
    CrossEncoder(crate::cross::TrainCrossArgs),
}

#[derive(Args)]
pub struct RecommendArgs {
    /// Unified customer id (CU…, see the customers table).
    #[arg(long)]
    customer: String,
    /// How many products.
    #[arg(short, long, default_value_t = 10)]
    k: usize,
}

#[derive(Args)]
pub struct EvalRecsArgs {
    /// Evaluate on a public interaction file instead of the project: `user,item,rating,timestamp`
    /// CSV (header optional), tab-separated, or MovieLens `ratings.dat` (`::`).
    #[arg(long)]
    ratings: Option<PathBuf>,
    /// With --ratings: ratings at or above this count as positive feedback.
    #[arg(long, default_value_t = 4.0)]
    min_rating: f64,
    /// temporal: purchases after a global cut-off are the targets; last: each user's last
    /// purchase is (leave-last-out).
    #[arg(long, value_parser = ["temporal", "last"], default_value = "temporal")]
    split: String,
    /// temporal: share of purchases after the cut-off.
    #[arg(long, default_value_t = 0.1)]
    test_share: f64,
}

#[derive(Args)]
pub struct BenchRecsArgs {
    /// Sizes as INTERACTIONSxITEMS.
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "10000x1000,100000x10000,1000000x100000"
    )]
    sizes: Vec<String>,
    #[arg(long, default_value_t = 1)]
    seed: u64,
}

pub fn print_summary(s: &RecsSummary) {
    println!(
        "\nrecommendations: {} interactions ({} from orders, {} from events; {} rows not linked to a customer or golden product, {} refunded/cancelled orders left out) · {} customers ({} with history) × {} golden products · {} stored in {:.1}s",
        s.log.interactions,
        s.log.from_orders,
        s.log.from_events,
        s.log.skipped,
        s.log.cancelled_orders,
        s.customers,
        s.customers_with_history,
        s.items,
        s.recommendations,
        s.seconds
    );
    println!(
        "  hybrid blend (chosen on a temporal validation split, NDCG@10 {:.3}): {}",
        s.validation_ndcg_10,
        s.hybrid_weights
            .iter()
            .map(|(p, w)| format!("{p} {w}"))
            .collect::<Vec<_>>()
            .join(", ")
    );
}

pub fn train(cli: &Cli, command: &TrainCommand) -> Result<ExitCode> {
    match command {
        TrainCommand::Recs => {
            let selection = shopfuse_pipeline::Selection::Only(vec!["recs".into()]);
            crate::run::forced(cli, selection)
        }
        TrainCommand::CrossEncoder(args) => crate::cross::train_cross_encoder(cli, args),
    }
}

pub fn recommend(cli: &Cli, args: &RecommendArgs) -> Result<ExitCode> {
    let project = open(&cli.project)?;
    let store = TableStore::open(&project)?;
    let read = |t: &str| store.read_rows(t);
    let recs = serve::read_recommendations(&read, &args.customer, args.k)?;
    if cli.json {
        print_json(&recs)?;
        return Ok(ExitCode::SUCCESS);
    }
    println!("top {} for {}:", recs.len(), args.customer);
    for r in &recs {
        println!(
            "{:>3}. {}  {}  (score {:.3})\n     because you {}",
            r.rank, r.golden_id, r.title, r.score, r.reason
        );
    }
    Ok(ExitCode::SUCCESS)
}

pub fn eval_recs(cli: &Cli, args: &EvalRecsArgs) -> Result<ExitCode> {
    let kind = match args.split.as_str() {
        "last" => SplitKind::LeaveLastOut,
        _ => {
            if !(args.test_share > 0.0 && args.test_share < 1.0) {
                bail!(
                    "--test-share must be between 0 and 1 (is {})",
                    args.test_share
                );
            }
            SplitKind::Temporal {
                test_share: args.test_share,
            }
        }
    };
    let (log, config, source) = match &args.ratings {
        Some(path) => (
            InteractionLog::from_ratings_file(path, args.min_rating)?,
            // A project's settings, if run inside one, else the defaults.
            shopfuse_core::Project::open(&cli.project)
                .map(|p| p.config.recs)
                .unwrap_or_default(),
            path.display().to_string(),
        ),
        None => {
            let project = open(&cli.project)?;
            let store = TableStore::open(&project)?;
            let encoder = shopfuse_pipeline::project_encoder(&project)?;
            let bar = Bar::new(cli.quiet || cli.json);
            // Vectors missing from the cache are encoded but not kept: evaluation writes
            // nothing.
            let read = |t: &str| store.read_rows(t);
            let mut cache = EmbeddingCache::load(&store, &encoder)
                .context("cannot read the project's embedding cache")?;
            let log = project_log(&read, &mut cache, &encoder, &bar)?;
            (
                log,
                project.config.recs.clone(),
                project.root.display().to_string(),
            )
        }
    };
    let started = std::time::Instant::now();
    let evaluation = shopfuse_learn::recs::evaluate_log(&log, &config, kind)?;
    if cli.json {
        print_json(&evaluation)?;
    } else {
        print_evaluation(&evaluation, &source, started.elapsed().as_secs_f64());
    }
    Ok(ExitCode::SUCCESS)
}

fn print_evaluation(e: &RecsEvaluation, source: &str, seconds: f64) {
    let split = match e.split {
        SplitKind::Temporal { test_share } => format!(
            "temporal split (last {:.0}% of purchases held out)",
            test_share * 100.0
        ),
        SplitKind::LeaveLastOut => "leave-last-out split (each user's last purchase)".into(),
    };
    println!(
        "recommendations on {source}: {} users × {} items, {} interactions; {split}; {} train interactions; {} test users ({} more without history, not scored); exclusion {:?}; {:.1}s",
        e.users, e.items, e.interactions, e.train_interactions, e.test_users, e.cold_test_users, e.exclusion, seconds
    );
    println!(
        "\n{:<11} {:>9} {:>9} {:>8} {:>8} {:>10} {:>11} {:>7}",
        "model",
        "Recall@10",
        "Recall@20",
        "NDCG@10",
        "NDCG@20",
        "HitRate@10",
        "Coverage@10",
        "fit s"
    );
    for m in &e.models {
        let x = &m.metrics;
        println!(
            "{:<11} {:>9.4} {:>9.4} {:>8.4} {:>8.4} {:>10.4} {:>11.3} {:>7.2}",
            m.model,
            x.recall_10,
            x.recall_20,
            x.ndcg_10,
            x.ndcg_20,
            x.hit_rate_10,
            x.coverage_10,
            m.fit_seconds
        );
    }
    println!(
        "hybrid blend chosen on a validation split before the test period (NDCG@10 {:.4} there): {}",
        e.validation_ndcg_10,
        e.hybrid_weights
            .iter()
            .map(|(p, w)| format!("{p} {w}"))
            .collect::<Vec<_>>()
            .join(", ")
    );
    print_lift(&e.lift);
}

/// The cross-platform lift tables, one per platform.
fn print_lift(lift: &[PlatformLift]) {
    if lift.is_empty() {
        return;
    }
    println!("\ncross-platform lift: trained on one platform's behaviour vs on all platforms, scored on that platform's held-out purchases");
    for p in lift {
        println!(
            "\n{} · {} users with a held-out purchase there; {} light there (at most {} products touched on {} before), {} with no earlier behaviour there",
            p.platform,
            p.users,
            p.light_users,
            shopfuse_learn::recs::evaluate::LIGHT_USER_ITEMS,
            p.platform,
            p.cold_on_platform
        );
        println!(
            "  {:<11} {:>14} {:>11} {:>8} {:>16} {:>13}   {:>12} {:>9} {:>8}",
            "model",
            "NDCG@10 single",
            "NDCG@10 all",
            "lift",
            "Recall@10 single",
            "Recall@10 all",
            "light single",
            "light all",
            "lift"
        );
        for r in &p.models {
            println!(
                "  {:<11} {:>14.4} {:>11.4} {:>+7.1}% {:>16.4} {:>13.4}   {:>12.4} {:>9.4} {:>+7.1}%",
                r.model,
                r.ndcg_10_single,
                r.ndcg_10_all,
                r.ndcg_10_lift_pct,
                r.recall_10_single,
                r.recall_10_all,
                r.ndcg_10_single_light,
                r.ndcg_10_all_light,
                r.ndcg_10_lift_pct_light
            );
        }
    }
}

pub fn bench_recs(cli: &Cli, args: &BenchRecsArgs) -> Result<ExitCode> {
    let config = shopfuse_core::config::RecsConfig::default();
    let mut all = Vec::new();
    if !cli.json {
        println!(
            "{:>12} {:>8} {:>8}  {:<11} {:>9} {:>10}",
            "interactions", "items", "users", "model", "fit s", "recs/s"
        );
    }
    for size in &args.sizes {
        let Some((n, m)) = size
            .split_once('x')
            .and_then(|(a, b)| {
                Some((
                    a.trim().parse::<usize>().ok()?,
                    b.trim().parse::<usize>().ok()?,
                ))
            })
            .filter(|(n, m)| *n >= 100 && *m >= 10)
        else {
            bail!("--sizes wants INTERACTIONSxITEMS pairs like 10000x1000 (at least 100x10), not {size:?}");
        };
        let rows = shopfuse_learn::recs::bench::bench_size(n, m, &config, args.seed, |r| {
            if !cli.json {
                let f =
                    |v: Option<f64>, p: usize| v.map_or("-".to_string(), |v| format!("{v:.p$}"));
                println!(
                    "{:>12} {:>8} {:>8}  {:<11} {:>9} {:>10}{}",
                    r.interactions,
                    r.items,
                    r.users,
                    r.model,
                    f(r.fit_seconds, 2),
                    f(r.recs_per_second, 0),
                    r.note
                        .as_ref()
                        .map(|n| format!("  {n}"))
                        .unwrap_or_default()
                );
            }
        })?;
        all.extend(rows);
    }
    if cli.json {
        print_json(&all)?;
    } else {
        println!(
            "({} threads; iALS {} factors × {} sweeps, item-kNN {} neighbours, EASE λ {})",
            shopfuse_pipeline::bench::threads(),
            config.factors,
            config.iterations,
            config.neighbours,
            config.ease_lambda
        );
    }
    Ok(ExitCode::SUCCESS)
}
