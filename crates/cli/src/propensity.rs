//! `shopfuse eval propensity`: the buy-till-you-die models on the CDNOW benchmark, next to
//! the published parameters.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Result;
use clap::Args;
use shopfuse_propensity::cdnow::{evaluate, run_lifetimes, Cdnow};

use crate::{print_json, Cli};

#[derive(Args)]
pub struct EvalPropensityArgs {
    /// The CDNOW folder (cdnow_customers_summary.csv and CDNOW_sample.txt, as the lifetimes
    /// package ships them).
    #[arg(long, default_value = "../shared/data/cdnow")]
    cdnow: PathBuf,
    /// A Python with `lifetimes` installed (`./run bench` sets one up): the peer, fitted on
    /// the same customers in the same run.
    #[arg(long)]
    lifetimes_python: Option<PathBuf>,
    /// The peer's script (default: scripts/lifetimes_cdnow.py).
    #[arg(long, default_value = "scripts/lifetimes_cdnow.py")]
    lifetimes_script: PathBuf,
}

pub fn eval_propensity(cli: &Cli, args: &EvalPropensityArgs) -> Result<ExitCode> {
    let data = Cdnow::load(&args.cdnow)?;
    let r = evaluate(&data)?;
    let peer = match &args.lifetimes_python {
        Some(python) => Some(run_lifetimes(&data, python, &args.lifetimes_script)?),
        None => None,
    };
    if cli.json {
        print_json(&serde_json::json!({ "shopfuse": r, "lifetimes": peer }))?;
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
