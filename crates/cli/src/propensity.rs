//! `shopfuse eval propensity`: the buy-till-you-die models on the CDNOW benchmark, next to
//! the published parameters.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Result;
use clap::Args;
use shopfuse_propensity::cdnow::{evaluate, run_lifetimes, Cdnow};
use shopfuse_propensity::project_eval::{
    evaluate_orders, orders_of_project, ProjectEvaluation, Scores,
};

use crate::{print_json, Cli};

#[derive(Args)]
pub struct EvalPropensityArgs {
    /// Also the CDNOW benchmark, from this folder (cdnow_customers_summary.csv and
    /// CDNOW_sample.txt, as the lifetimes package ships them).
    #[arg(long)]
    cdnow: Option<PathBuf>,
    /// A Python with `lifetimes` installed (`./run bench` sets one up): the peer, fitted on
    /// the same customers in the same run.
    #[arg(long)]
    lifetimes_python: Option<PathBuf>,
    /// The peer's script (default: scripts/lifetimes_cdnow.py).
    #[arg(long, default_value = "scripts/lifetimes_cdnow.py")]
    lifetimes_script: PathBuf,
}

pub fn eval_propensity(cli: &Cli, args: &EvalPropensityArgs) -> Result<ExitCode> {
    let project = crate::open(&cli.project)?;
    let store = shopfuse_core::TableStore::open(&project);
    let activity = orders_of_project(&store)?;
    let on_project = evaluate_orders(&activity.orders, &activity.events, &activity.platforms)?;
    if !cli.json {
        print_project(&on_project);
    }
    let Some(cdnow) = &args.cdnow else {
        if cli.json {
            print_json(&serde_json::json!({ "project": on_project }))?;
        }
        return Ok(ExitCode::SUCCESS);
    };
    let data = Cdnow::load(cdnow)?;
    let r = evaluate(&data)?;
    let peer = match &args.lifetimes_python {
        Some(python) => Some(run_lifetimes(&data, python, &args.lifetimes_script)?),
        None => None,
    };
    if cli.json {
        print_json(&serde_json::json!({ "project": on_project, "cdnow": r, "lifetimes": peer }))?;
        return Ok(ExitCode::SUCCESS);
    }
    println!(
        "CDNOW sample: {} customers, {} repeat purchases in the 39-week calibration; holdout {:.1} weeks",
        r.customers, r.calibration_repeat_purchases, data.holdout_weeks
    );
    println!(
        "BG/NBD (maximum likelihood, Nelder–Mead; {:.2} s)",
        r.bg_nbd_seconds
    );
    println!(
        "  {:<10} {:>8} {:>8} {:>8} {:>8} {:>10}",
        "", "r", "α", "a", "b", "LL"
    );
    let (o, p) = (r.bg_nbd, r.published_bg_nbd);
    println!(
        "  {:<10} {:>8.3} {:>8.3} {:>8.3} {:>8.3} {:>10.1}",
        "shopfuse", o.r, o.alpha, o.a, o.b, r.bg_nbd_log_likelihood
    );
    println!(
        "  {:<10} {:>8.3} {:>8.3} {:>8.3} {:>8.3} {:>10.1}",
        "published", p.r, p.alpha, p.a, p.b, r.published_log_likelihood
    );
    if let Some(l) = &peer {
        let b = l.bg_nbd;
        println!(
            "  {:<10} {:>8.3} {:>8.3} {:>8.3} {:>8.3} {:>10.1}   ({:.2} s)",
            "lifetimes", b.r, b.alpha, b.a, b.b, l.bg_nbd_log_likelihood, l.bg_nbd_seconds
        );
    }
    println!(
        "  holdout repeat purchases: actual {:.0}, forecast {:.1}; per-customer MAE {:.3} (published parameters: {:.3})",
        r.holdout_actual, r.holdout_forecast, r.holdout_mae, r.holdout_mae_published
    );
    if let Some(l) = &peer {
        println!(
            "  lifetimes: forecast {:.1}, per-customer MAE {:.3}",
            l.holdout_forecast, l.holdout_mae
        );
    }
    let (g, q) = (r.gamma_gamma, r.published_gamma_gamma);
    println!(
        "Gamma-Gamma on the {} customers with repeat purchases ({:.2} s): p {:.2}, q {:.2}, γ {:.2} (published p {:.2}, q {:.2}, γ {:.2})",
        r.gamma_gamma_customers, r.gamma_gamma_seconds, g.p, g.q, g.gamma, q.p, q.q, q.gamma
    );
    if let Some(l) = &peer {
        let g = l.gamma_gamma;
        println!(
            "  lifetimes: p {:.2}, q {:.2}, γ {:.2} ({:.2} s)",
            g.p, g.q, g.gamma, l.gamma_gamma_seconds
        );
    }
    Ok(ExitCode::SUCCESS)
}

fn print_project(e: &ProjectEvaluation) {
    let m = e.model;
    println!(
        "fused customers, BG/NBD fitted on every order before {} (r {:.3}, α {:.2}, a {:.3}, b {:.3})",
        e.cutoff, m.r, m.alpha, m.a, m.b
    );
    let row = |name: &str, s: &Scores| {
        println!(
            "  {:<28} {:>9} {:>9} {:>8.3} {:>8.3} {:>8.4} {:>8.2}",
            name, s.customers, s.positives, s.roc_auc, s.pr_auc, s.brier, s.top_decile_lift
        )
    };
    println!(
        "  {:<28} {:>9} {:>9} {:>8} {:>8} {:>8} {:>8}",
        "purchase in the next 30 days",
        "customers",
        "buyers",
        "ROC-AUC",
        "PR-AUC",
        "Brier",
        "lift@10%"
    );
    row("any platform, fused", &e.buy_30d);
    for p in &e.per_platform {
        row(&format!("{}: BG/NBD, its orders", p.platform), &p.alone);
        row(&format!("{}: BG/NBD, fused", p.platform), &p.fused);
        if let (Some(alone), Some(fused)) = (&p.classifier_alone, &p.classifier_fused) {
            row(&format!("{}: trees, its data", p.platform), alone);
            row(&format!("{}: trees, fused", p.platform), fused);
        }
    }
    println!(
        "  purchases in the next 90 days: actual {:.0}, forecast {:.1}, per-customer MAE {:.3}",
        e.purchases_90d_actual, e.purchases_90d_forecast, e.purchases_90d_mae
    );
}
