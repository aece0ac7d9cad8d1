//! `shopfuse eval propensity` (the temporal evaluation on the project, and the CDNOW
//! benchmark next to the published parameters and the `lifetimes` package),
//! `shopfuse propensity --customer ID` (one customer's scores and their drivers),
//! `shopfuse audience` (customers a condition selects, as account ids for activation) and
//! `shopfuse bench propensity`.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{bail, Context, Result};
use clap::{Args, ValueEnum};
use shopfuse_core::TableStore;
use shopfuse_pipeline::audience::{audience, audience_size, AudienceIds, AudienceRequest};
use shopfuse_propensity::cdnow::{evaluate, run_lifetimes, Cdnow};
use shopfuse_propensity::metrics::Scores;
use shopfuse_propensity::project_eval::{evaluate_project, Compared, ProjectEvaluation};
use shopfuse_propensity::Activity;

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
    let store = TableStore::open(&project)?;
    let activity = read_activity(&store)?;
    let settings = shopfuse_propensity::model::training_settings(&project.config.propensity, true);
    let on_project = evaluate_project(&activity, &settings)?;
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

fn read_activity(store: &TableStore) -> Result<Activity> {
    let read = |t: &str, cols: &[&str]| -> shopfuse_core::Result<_> { store.read_columns(t, cols) };
    Ok(Activity::read(&read)?)
}

fn print_project(e: &ProjectEvaluation) {
    match e.model {
        Some(m) => println!(
            "temporal split at {} (90 days before the last order); BG/NBD on the fused orders before it: r {:.3}, α {:.2}, a {:.3}, b {:.3}",
            e.cutoff, m.r, m.alpha, m.a, m.b
        ),
        None => println!("temporal split at {}; too few buyers for BG/NBD", e.cutoff),
    }
    header("purchase in the next 30 days");
    compared("any platform", &e.buy_30d);
    if let Some(s) = &e.buy_30d_all_active {
        row("any platform, browsers too: trees", s);
    }
    for p in &e.per_platform {
        compared(&format!("{}: its data", p.platform), &p.buyers_alone);
        compared(&format!("{}: fused", p.platform), &p.buyers_fused);
        if let (Some(alone), Some(fused)) = (&p.holders_alone, &p.holders_fused) {
            row(&format!("{} holders: trees, its data", p.platform), alone);
            row(&format!("{} holders: trees, fused", p.platform), fused);
        }
    }
    header("no purchase in the next 90 days");
    compared("churn, any platform", &e.churn_90d);
    if let Some(s) = e.buy_30d.classifier.as_ref() {
        let chart: Vec<String> = s.decile_lift.iter().map(|l| format!("{l:.2}")).collect();
        println!(
            "  lift chart, any platform, trees (positive rate per tenth over the base rate, best-scored first): {}",
            chart.join(" ")
        );
    }
    println!(
        "  the next 90 days (BG/NBD, Gamma-Gamma): purchase days actual {:.0}, forecast {:.1}, per-customer MAE {:.3}; spend actual {:.0}, forecast {:.0}",
        e.purchases_90d_actual, e.purchases_90d_forecast, e.purchases_90d_mae, e.spend_90d_actual, e.spend_90d_forecast
    );
    println!(
        "  (rows: \"its data\" = the platform's own orders and behaviour, \"fused\" = every platform's, for the platform's buyers; \"holders\" = every account holder on the platform active anywhere; {:.1} s)",
        e.seconds
    );
}

fn header(outcome: &str) {
    println!(
        "  {:<40} {:>9} {:>9} {:>8} {:>8} {:>8} {:>8}",
        outcome, "customers", "positive", "ROC-AUC", "PR-AUC", "Brier", "lift@10%"
    );
}

fn row(name: &str, s: &Scores) {
    println!(
        "  {:<40} {:>9} {:>9} {:>8.3} {:>8.3} {:>8.4} {:>8.2}",
        name, s.customers, s.positives, s.roc_auc, s.pr_auc, s.brier, s.top_decile_lift
    );
}

fn compared(name: &str, c: &Compared) {
    if let Some(s) = &c.btyd {
        row(&format!("{name}: BG/NBD"), s);
    }
    if let Some(s) = &c.classifier {
        row(&format!("{name}: trees"), s);
    }
}

/// The stage's lines in `shopfuse run`'s summary.
pub fn print_summary(s: &shopfuse_propensity::PropensitySummary) {
    println!(
        "\npropensity as of {}: {} of {} customers scored ({} platform rows) in {:.1}s; mean P(purchase in 30 days) {}",
        s.as_of.as_deref().unwrap_or("-"),
        s.customers_scored,
        s.customers,
        s.platform_rows,
        s.seconds,
        s.mean_p_buy_30d.map_or("-".into(), |p| format!("{:.3}", p))
    );
    println!(
        "  trained on {} rows ({} buyers) for the 30-day purchase, {} ({} lapsed) for churn; `shopfuse eval propensity` scores them on a temporal split",
        s.buy_training_rows, s.buy_training_positives, s.churn_training_rows, s.churn_training_positives
    );
}

#[derive(Args)]
pub struct PropensityArgs {
    /// The unified customer id (CU…, as in customers and customer_accounts).
    #[arg(long)]
    customer: String,
}

/// One customer's scores, per-platform probabilities and drivers; audited as a read of
/// per-customer data.
pub fn show_propensity(cli: &Cli, args: &PropensityArgs) -> Result<ExitCode> {
    use shopfuse_propensity::{propensity as p, propensity_platforms as pp};
    let project = crate::open(&cli.project)?;
    let store = TableStore::open(&project)?;
    let table = store
        .read_rows(p::NAME)?
        .context("no propensity table yet: run `shopfuse run` first")?;
    let Some(row) = table
        .rows
        .iter()
        .find(|r| table.str(r, p::customer_id) == Some(args.customer.as_str()))
    else {
        bail!(
            "no customer {:?} in the propensity table (look the id up in customer_accounts)",
            args.customer
        );
    };
    audit_cli(&project, "shopfuse propensity", &args.customer, None)?;
    let platforms = store.read_rows(pp::NAME)?.map(|t| {
        t.rows
            .iter()
            .filter(|r| t.str(r, pp::customer_id) == Some(args.customer.as_str()))
            .map(|r| {
                (
                    t.text(r, pp::platform).unwrap_or_default(),
                    t.f64(r, pp::p_buy_30d),
                    t.f64(r, pp::p_buy_30d_alone),
                )
            })
            .collect::<Vec<_>>()
    });
    let f = |c: &str| table.f64(row, c);
    if cli.json {
        let per_platform: Vec<serde_json::Value> = platforms
            .iter()
            .flatten()
            .map(|(name, fused, alone)| {
                serde_json::json!({ "platform": name, "p_buy_30d": fused, "p_buy_30d_alone": alone })
            })
            .collect();
        print_json(&serde_json::json!({
            "customer_id": args.customer,
            "as_of": table.i64(row, p::as_of).and_then(chrono::DateTime::from_timestamp_micros),
            "p_buy_30d": f(p::p_buy_30d),
            "p_buy_30d_btyd": f(p::p_buy_30d_btyd),
            "p_alive": f(p::p_alive),
            "p_churn_90d": f(p::p_churn_90d),
            "expected_purchases_90d": f(p::expected_purchases_90d),
            "expected_spend_90d": f(p::expected_spend_90d),
            "drivers": table.text(row, p::drivers).map(|d| d.split("; ").map(String::from).collect::<Vec<_>>()),
            "per_platform": per_platform,
        }))?;
        return Ok(ExitCode::SUCCESS);
    }
    let pct = |v: Option<f64>| v.map_or("-".to_string(), |v| format!("{:.1} %", v * 100.0));
    let as_of = table
        .i64(row, p::as_of)
        .and_then(chrono::DateTime::from_timestamp_micros)
        .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
        .unwrap_or_default();
    println!("customer {} as of {as_of}", args.customer);
    println!(
        "  a purchase on any platform in the next 30 days: {} (BG/NBD: {})",
        pct(f(p::p_buy_30d)),
        pct(f(p::p_buy_30d_btyd))
    );
    if let Some(platforms) = platforms.filter(|p| !p.is_empty()) {
        println!(
            "  {:<12} {:>14} {:>22}",
            "on platform", "fused customer", "that platform alone"
        );
        for (name, fused, alone) in platforms {
            println!("  {:<12} {:>14} {:>22}", name, pct(fused), pct(alone));
        }
    }
    println!(
        "  no purchase in the next 90 days (churn): {}; still active (BG/NBD): {}",
        pct(f(p::p_churn_90d)),
        pct(f(p::p_alive))
    );
    let base = &project.config.project.base_currency;
    println!(
        "  expected over the next 90 days: {} purchase days, {} {base}",
        f(p::expected_purchases_90d).map_or("-".into(), |v| format!("{v:.2}")),
        f(p::expected_spend_90d).map_or("-".into(), |v| format!("{v:.0}"))
    );
    if let Some(drivers) = table.text(row, p::drivers) {
        println!("  what drives the 30-day score (feature[platform or all]=value, log-odds):");
        for d in drivers.split("; ") {
            println!("    {d}");
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// One audit line for a read of per-customer data from the command line.
pub fn audit_cli(
    project: &shopfuse_core::Project,
    command: &str,
    customer: &str,
    detail: Option<String>,
) -> Result<()> {
    use shopfuse_serve::audit::{AuditEntry, AuditLog, AUDIT_FILE};
    let log = AuditLog::open(&project.state_dir().join(AUDIT_FILE))?;
    log.record(&AuditEntry {
        at: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
        key: format!(
            "cli:{}",
            std::env::var("USER").unwrap_or_else(|_| "unknown".into())
        ),
        role: "admin".into(),
        route: command.into(),
        customer_id: customer.into(),
        detail,
    })
    .with_context(|| format!("cannot write the audit log {}", log.path().display()))
}

#[derive(Clone, Copy, ValueEnum)]
enum IdsArg {
    /// A keyed-hash pseudonym per account (stable, meaningless outside the project).
    Pseudonymous,
    /// The pseudonym and the platform's own account id, for uploading to that platform.
    Platform,
}

#[derive(Args)]
pub struct AudienceArgs {
    /// SQL condition over one row per customer: the propensity columns (p_buy_30d,
    /// p_churn_90d, p_alive, expected_spend_90d, …), the profile (segment, orders,
    /// monetary_base, recency_days, city, top_categories, …) and, with --platform,
    /// p_buy_30d_platform and p_buy_30d_platform_alone.
    #[arg(long = "where", value_name = "CONDITION")]
    condition: String,
    /// Only the customers' accounts on this platform (taobao, jd, amazon, own_shop, …).
    #[arg(long)]
    platform: Option<String>,
    /// Which ids the audience carries.
    #[arg(long, value_enum, default_value = "pseudonymous")]
    ids: IdsArg,
    /// Write the audience here as CSV (default: standard output).
    #[arg(long)]
    out: Option<PathBuf>,
    /// Print only the number of customers, with Laplace noise of this privacy budget (what
    /// a viewer may see); no ids are read out.
    #[arg(long)]
    dp_epsilon: Option<f64>,
}

pub fn audience_command(cli: &Cli, args: &AudienceArgs) -> Result<ExitCode> {
    let project = crate::open(&cli.project)?;
    let engine = shopfuse_query::QueryEngine::open(&project)?;
    let request = AudienceRequest {
        condition: args.condition.clone(),
        platform: args.platform.clone(),
        ids: match args.ids {
            IdsArg::Pseudonymous => AudienceIds::Pseudonymous,
            IdsArg::Platform => AudienceIds::Platform,
        },
    };
    if let Some(epsilon) = args.dp_epsilon {
        if !(epsilon > 0.0 && epsilon <= 10.0) {
            bail!("--dp-epsilon must be in (0, 10], got {epsilon}");
        }
        let n = audience_size(&engine, &request)?;
        let noisy = (n as f64 + shopfuse_learn::privacy::laplace(1.0 / epsilon, &mut rand::rng()))
            .round()
            .max(0.0);
        if cli.json {
            print_json(&serde_json::json!({ "customers": noisy, "epsilon": epsilon }))?;
        } else {
            println!("about {noisy:.0} customers (Laplace noise, ε = {epsilon}; each release spends ε again)");
        }
        return Ok(ExitCode::SUCCESS);
    }
    let detail = format!(
        "where {}; platform {}; ids {}",
        args.condition,
        args.platform.as_deref().unwrap_or("all"),
        serde_json::to_value(request.ids)?
            .as_str()
            .unwrap_or_default()
    );
    audit_cli(&project, "shopfuse audience", "*", Some(detail))?;
    let result = audience(&engine, &project.secret()?, &request)?;
    if cli.json && args.out.is_none() {
        print_json(&result)?;
        return Ok(ExitCode::SUCCESS);
    }
    let mut csv = csv::Writer::from_writer(Vec::new());
    let with_ids = request.ids == AudienceIds::Platform;
    let mut header = vec!["platform", "pseudonymous_id"];
    if with_ids {
        header.push("account_id");
    }
    header.extend(["customer_id", "p_buy_30d", "segment"]);
    csv.write_record(&header)?;
    for m in &result.members {
        let mut record = vec![m.platform.clone(), m.pseudonymous_id.clone()];
        if with_ids {
            record.push(m.account_id.clone().unwrap_or_default());
        }
        record.extend([
            m.customer_id.clone(),
            m.p_buy_30d.map_or(String::new(), |p| format!("{p:.4}")),
            m.segment.clone().unwrap_or_default(),
        ]);
        csv.write_record(&record)?;
    }
    let bytes = csv.into_inner().context("cannot write the audience")?;
    match &args.out {
        Some(path) => {
            write_atomically(path, &bytes)?;
            eprintln!(
                "{} customers, {} accounts{} → {}",
                result.customers,
                result.members.len(),
                args.platform
                    .as_deref()
                    .map(|p| format!(" on {p}"))
                    .unwrap_or_default(),
                path.display()
            );
        }
        None => std::io::stdout().write_all(&bytes)?,
    }
    Ok(ExitCode::SUCCESS)
}

/// Writes beside the target and renames, so a crash leaves the old file or the new one.
fn write_atomically(path: &std::path::Path, bytes: &[u8]) -> Result<()> {
    let dir = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(std::path::Path::new("."));
    let mut tmp = tempfile::NamedTempFile::new_in(dir)
        .with_context(|| format!("cannot write in {}", dir.display()))?;
    tmp.write_all(bytes)?;
    tmp.persist(path)
        .with_context(|| format!("cannot write {}", path.display()))?;
    Ok(())
}

#[derive(Args)]
pub struct BenchPropensityArgs {
    /// Customer counts, simulated (orders, events, one to four platforms each).
    #[arg(long, value_delimiter = ',', default_value = "10000,100000,1000000")]
    customers: Vec<usize>,
    /// A Python with `lifetimes` installed: its BG/NBD fit on the same summaries.
    #[arg(long)]
    lifetimes_python: Option<PathBuf>,
    #[arg(long, default_value = "scripts/lifetimes_cdnow.py")]
    lifetimes_script: PathBuf,
}

pub fn bench_propensity(cli: &Cli, args: &BenchPropensityArgs) -> Result<ExitCode> {
    let config = shopfuse_core::config::PropensityConfig::default();
    let peer = args
        .lifetimes_python
        .as_deref()
        .map(|py| (py, args.lifetimes_script.as_path()));
    let rows = shopfuse_propensity::bench::bench(&args.customers, &config, peer)?;
    if cli.json {
        print_json(&rows)?;
        return Ok(ExitCode::SUCCESS);
    }
    println!(
        "propensity models on simulated fused customers ({} cores): every model of the stage fitted, then every customer scored with drivers",
        std::thread::available_parallelism().map_or(1, |n| n.get())
    );
    println!(
        "{:>10} {:>10} {:>10} {:>9} {:>12} {:>9} {:>12} {:>10} {:>14} {:>10}",
        "customers",
        "orders",
        "events",
        "fit s",
        "fit cust/s",
        "score s",
        "score cust/s",
        "BG/NBD s",
        "lifetimes s",
        "peak MiB"
    );
    for r in &rows {
        println!(
            "{:>10} {:>10} {:>10} {:>9.1} {:>12.0} {:>9.1} {:>12.0} {:>10.2} {:>14} {:>10.0}",
            r.customers,
            r.orders,
            r.events,
            r.fit_seconds,
            r.fit_customers_per_second,
            r.score_seconds,
            r.score_customers_per_second,
            r.bg_nbd_seconds,
            r.lifetimes_bg_nbd_seconds.map_or("-".into(), |s| format!(
                "{s:.2} ({:.1}×)",
                s / r.bg_nbd_seconds
            )),
            r.peak_memory_mib.unwrap_or(f64::NAN)
        );
    }
    Ok(ExitCode::SUCCESS)
}
