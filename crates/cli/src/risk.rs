//! `shopfuse risk`, `shopfuse eval risk` and `shopfuse bench risk`.

use std::process::ExitCode;

use anyhow::Result;
use serde_json::{Map, Value as Json};
use shopfuse_core::TableStore;

use crate::{print_json, Cli};

#[derive(clap::Args)]
pub struct RiskArgs {
    /// The riskiest orders and reviews and the densest rings, this many of each.
    #[arg(long, default_value_t = 20)]
    top: usize,
    /// One ring (RG…): its evidence, member accounts and their orders.
    #[arg(long)]
    ring: Option<String>,
}

/// With --ring: that ring; else the top orders, reviews and rings.
pub fn risk(cli: &Cli, args: &RiskArgs) -> Result<ExitCode> {
    let project = crate::open(&cli.project)?;
    let store = TableStore::open(&project)?;
    if let Some(id) = &args.ring {
        let view = shopfuse_risk::report::ring(&store, id)?;
        if cli.json {
            print_json(&view)?;
        } else {
            print_ring(&view);
        }
        return Ok(ExitCode::SUCCESS);
    }
    let top = shopfuse_risk::report::top(&store, args.top)?;
    if cli.json {
        print_json(&top)?;
        return Ok(ExitCode::SUCCESS);
    }
    println!("rings ({} densest):", top.rings.len());
    for r in &top.rings {
        println!(
            "  {}  {}  density {}  {}",
            text(r, "ring_id"),
            text(r, "kind"),
            num(r, "density"),
            text(r, "evidence")
        );
    }
    println!("\norders (riskiest {}):", top.orders.len());
    for o in &top.orders {
        println!(
            "  {:<8} {:<22} score {:>6} pct {:>6}  {}{}",
            text(o, "platform"),
            text(o, "order_id"),
            num(o, "score"),
            num(o, "percentile"),
            text(o, "reasons"),
            o.get("ring_id")
                .and_then(Json::as_str)
                .map(|r| format!("  [{r}]"))
                .unwrap_or_default()
        );
    }
    println!("\nreviews (riskiest {}):", top.reviews.len());
    for r in &top.reviews {
        println!(
            "  {:<8} {:<14} score {:>6}  {}",
            text(r, "platform"),
            text(r, "review_id"),
            num(r, "score"),
            text(r, "reasons")
        );
    }
    Ok(ExitCode::SUCCESS)
}

fn text<'a>(row: &'a Map<String, Json>, key: &str) -> &'a str {
    row.get(key).and_then(Json::as_str).unwrap_or("")
}

fn num(row: &Map<String, Json>, key: &str) -> String {
    row.get(key)
        .and_then(Json::as_f64)
        .map_or_else(|| "–".to_string(), |x| format!("{x:.2}"))
}

fn print_ring(view: &shopfuse_risk::report::RingView) {
    let r = &view.ring;
    println!(
        "{}  {}  density {}",
        text(r, "ring_id"),
        text(r, "kind"),
        num(r, "density")
    );
    println!("{}", text(r, "evidence"));
    println!("listings: {}", text(r, "listings"));
    if !text(r, "golden_ids").is_empty() {
        println!("golden products: {}", text(r, "golden_ids"));
    }
    println!("\naccounts ({}):", view.accounts.len());
    for a in &view.accounts {
        println!(
            "  {:<8} {:<22} customer {:<12} orders {:>3}  score {:>6}",
            text(a, "platform"),
            text(a, "account_id"),
            text(a, "customer_id"),
            a.get("orders").and_then(Json::as_i64).unwrap_or(0),
            num(a, "score")
        );
    }
    println!("\norders ({}):", view.orders.len());
    for o in view.orders.iter().take(30) {
        println!(
            "  {:<8} {:<22} {:<12} score {:>6}  {}",
            text(o, "platform"),
            text(o, "order_id"),
            text(o, "listing_id"),
            num(o, "score"),
            text(o, "reasons")
        );
    }
}

pub fn print_summary(s: &shopfuse_risk::RiskSummary) {
    println!(
        "\nrisk: {} orders, {} reviews, {} accounts scored ({}{}); {} rings ({} across platforms); {} orders in the top 1 % in {:.1}s",
        s.orders,
        s.reviews,
        s.accounts,
        s.method,
        if s.labelled_orders > 0 {
            format!(", {} labelled orders", s.labelled_orders)
        } else {
            String::new()
        },
        s.rings,
        s.cross_platform_rings,
        s.flagged_orders,
        s.seconds
    );
}

#[derive(clap::Args)]
pub struct EvalRiskArgs {
    /// YelpChi's review graph instead of the project (e.g. ../shared/data/yelpchi): review-
    /// and user-level AUC/AP of the graph scores, and block recovery with injected dense
    /// blocks under camouflage.
    #[arg(long)]
    yelpchi: Option<std::path::PathBuf>,
    /// A Python with `pyod` and `ugfraud` (`./run` sets one up): PyOD's IForest and ECOD on
    /// the same features and UGFraud's FRAUDAR on the same graph, in the same run.
    #[arg(long)]
    peers_python: Option<std::path::PathBuf>,
    /// Dense blocks FRAUDAR peels (ours and UGFraud's).
    #[arg(long, default_value_t = 10)]
    blocks: usize,
}

pub fn eval_risk(cli: &Cli, args: &EvalRiskArgs) -> Result<ExitCode> {
    let peers = args
        .peers_python
        .as_deref()
        .map(shopfuse_risk::peers::PeerPython::new)
        .transpose()?;
    if let Some(dir) = &args.yelpchi {
        let eval = shopfuse_risk::yelp::eval_yelp(dir, peers.as_ref(), args.blocks)?;
        if cli.json {
            print_json(&eval)?;
        } else {
            print_yelp(&eval);
        }
        return Ok(ExitCode::SUCCESS);
    }
    let project = crate::open(&cli.project)?;
    let store = TableStore::open(&project)?;
    let eval = shopfuse_risk::eval::eval_project(
        &store,
        &project.root,
        &project.config.risk,
        peers.as_ref(),
        args.blocks,
    )?;
    if cli.json {
        print_json(&eval)?;
    } else {
        print_project_eval(&eval);
    }
    Ok(ExitCode::SUCCESS)
}

fn f(x: f64) -> String {
    if x.is_nan() {
        "–".into()
    } else {
        format!("{:.1}", 100.0 * x)
    }
}

fn print_project_eval(e: &shopfuse_risk::eval::ProjectRiskEval) {
    let patterns: Vec<String> = e.patterns.iter().map(|(k, v)| format!("{k} {v}")).collect();
    println!(
        "{} orders, {} fraudulent ({})",
        e.orders,
        e.fraud_orders,
        patterns.join(", ")
    );
    println!(
        "\n{:<58} {:<17} {:>7} {:>7} {:>7} {:>9} {:>8}",
        "scorer", "pattern", "PR-AUC", "ROC-AUC", "P@100", "R@1%FPR", "seconds"
    );
    for s in &e.scorers {
        for (pattern, r) in &s.patterns {
            println!(
                "{:<58} {:<17} {:>7} {:>7} {:>7} {:>9} {:>8}",
                s.scorer,
                format!("{pattern} ({})", r.positives),
                f(r.pr_auc),
                f(r.roc_auc),
                f(r.precision_at_100),
                f(r.recall_at_1pct_fpr),
                s.seconds.map_or("".into(), |x| format!("{x:.2}"))
            );
        }
    }
    let r = &e.rings;
    println!(
        "\nrings: {} ({} across platforms), {} accounts in them, {} with a brushing order: precision {} %, recall {} % of {} brushing accounts",
        r.rings, r.cross_platform_rings, r.ring_accounts, r.ring_accounts_brushing, f(r.precision), f(r.recall), r.brushing_accounts
    );
    let v = &e.fake_reviews;
    println!(
        "fake reviews (by a brushing buyer of the listing, {} of {}): PR-AUC {}, ROC-AUC {}, P@100 {}, R@1%FPR {}",
        v.positives, v.rows, f(v.pr_auc), f(v.roc_auc), f(v.precision_at_100), f(v.recall_at_1pct_fpr)
    );
}

fn print_yelp(e: &shopfuse_risk::yelp::YelpEval) {
    println!(
        "YelpChi: {} reviews ({} spam) by {} users ({} with spam) on {} products; no published figure for this graph-only copy",
        e.reviews, e.spam_reviews, e.users, e.spam_users, e.products
    );
    println!(
        "\n{:<44} {:>10} {:>9} {:>10} {:>9} {:>8}",
        "scorer", "review AUC", "review AP", "user AUC", "user AP", "seconds"
    );
    for s in &e.scores {
        println!(
            "{:<44} {:>10.3} {:>9.3} {:>10.3} {:>9.3} {:>8.2}",
            s.scorer,
            s.reviews.roc_auc,
            s.reviews.pr_auc,
            s.users.roc_auc,
            s.users.pr_auc,
            s.seconds
        );
    }
    println!("\ninjected block recovery (first block's F1 over users and products):");
    println!(
        "{:<10} {:>6} {:>8} {:>8} {:>13} {:>13} {:>9} {:>9}",
        "camouflage",
        "users",
        "products",
        "density",
        "F1 shopfuse",
        "F1 UGFraud",
        "s ours",
        "s theirs"
    );
    for i in &e.injections {
        println!(
            "{:<10} {:>6} {:>8} {:>8.2} {:>13.3} {:>13} {:>9.3} {:>9}",
            i.camouflage,
            i.fake_users,
            i.target_products,
            i.density,
            i.f1_shopfuse,
            i.f1_ugfraud.map_or("–".into(), |x| format!("{x:.3}")),
            i.seconds_shopfuse,
            i.seconds_ugfraud.map_or("–".into(), |x| format!("{x:.2}"))
        );
    }
}

#[derive(clap::Args)]
pub struct BenchRiskArgs {
    /// Synthetic order-book sizes.
    #[arg(long, value_delimiter = ',', default_value = "1000000,10000000")]
    sizes: Vec<usize>,
}

pub fn bench_risk(cli: &Cli, args: &BenchRiskArgs) -> Result<ExitCode> {
    let config = shopfuse_core::config::RiskConfig::default();
    let figures = shopfuse_risk::bench::bench_risk(&args.sizes, &config)?;
    if cli.json {
        print_json(&figures)?;
        return Ok(ExitCode::SUCCESS);
    }
    println!(
        "{:>10} {:>9} {:>8} {:>7} {:>14} {:>8} {:>15} {:>9} {:>11}",
        "orders",
        "accounts",
        "rings s",
        "rings",
        "ring orders/s",
        "score s",
        "score orders/s",
        "reviews s",
        "peak MiB"
    );
    for b in &figures {
        println!(
            "{:>10} {:>9} {:>8.2} {:>7} {:>14.0} {:>8.2} {:>15.0} {:>9.2} {:>11}",
            b.orders,
            b.accounts,
            b.ring_seconds,
            b.rings,
            b.ring_orders_per_s,
            b.score_seconds,
            b.score_orders_per_s,
            b.review_seconds,
            b.peak_memory_mib.map_or("–".into(), |m| format!("{m:.0}"))
        );
    }
    Ok(ExitCode::SUCCESS)
}
