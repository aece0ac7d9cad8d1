//! `shopfuse eval propensity`: the buy-till-you-die models on the CDNOW benchmark, next to
//! the published parameters.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Result;
use clap::Args;
use shopfuse_propensity::cdnow::{evaluate, Cdnow};

use crate::{print_json, Cli};

#[derive(Args)]
pub struct EvalPropensityArgs {
    /// The CDNOW folder (cdnow_customers_summary.csv and CDNOW_sample.txt, as the lifetimes
    /// package ships them).
    #[arg(long, default_value = "../shared/data/cdnow")]
    cdnow: PathBuf,
}

pub fn eval_propensity(cli: &Cli, args: &EvalPropensityArgs) -> Result<ExitCode> {
    let data = Cdnow::load(&args.cdnow)?;
    let r = evaluate(&data)?;
    if cli.json {
        print_json(&r)?;
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
    println!(
        "  holdout repeat purchases: actual {:.0}, forecast {:.1}; per-customer MAE {:.3} (published parameters: {:.3})",
        r.holdout_actual, r.holdout_forecast, r.holdout_mae, r.holdout_mae_published
    );
    let (g, q) = (r.gamma_gamma, r.published_gamma_gamma);
    println!(
        "Gamma-Gamma on the {} customers with repeat purchases ({:.2} s): p {:.2}, q {:.2}, γ {:.2} (published p {:.2}, q {:.2}, γ {:.2})",
        r.gamma_gamma_customers, r.gamma_gamma_seconds, g.p, g.q, g.gamma, q.p, q.q, q.gamma
    );
    Ok(ExitCode::SUCCESS)
}
