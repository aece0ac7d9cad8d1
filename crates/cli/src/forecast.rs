//! `shopfuse eval forecast` (the rolling-origin evaluation on the project, and the M4 Weekly
//! benchmark next to the published figures and statsforecast) and `shopfuse forecast` (one
//! series' forecast with its band, from the `forecasts` table).

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{bail, Result};
use clap::Args;
use shopfuse_core::TableStore;
use shopfuse_forecast::m4::{evaluate_m4, M4Report, M4Settings, M4Weekly, PUBLISHED};
use shopfuse_forecast::project_eval::{evaluate_project, ProjectEval};
use shopfuse_forecast::sales::read_sales;
use shopfuse_forecast::tables::{settings, zone};
use shopfuse_forecast::{forecasts, Promotions};

use crate::{print_json, Cli};

#[derive(Args)]
pub struct EvalForecastArgs {
    /// Rolling origins: consecutive horizons ending at the last day of sales.
    #[arg(long, default_value_t = 4)]
    windows: usize,
    /// Skip the project; only the M4 benchmark.
    #[arg(long)]
    no_project: bool,
    /// Also the M4 Weekly benchmark, from this folder (Weekly-train.csv, Weekly-test.csv).
    #[arg(long)]
    m4: Option<PathBuf>,
    /// A Python with statsforecast installed (`./run bench` sets one up): AutoETS and
    /// AutoTheta on the same M4 series in the same run.
    #[arg(long)]
    statsforecast_python: Option<PathBuf>,
    /// The peer's script.
    #[arg(long, default_value = "scripts/statsforecast_m4.py")]
    statsforecast_script: PathBuf,
}

pub fn eval_forecast(cli: &Cli, args: &EvalForecastArgs) -> Result<ExitCode> {
    let mut json = serde_json::Map::new();
    if !args.no_project {
        let project = crate::open(&cli.project)?;
        let config = &project.config.forecast;
        let store = TableStore::open(&project)?;
        let read =
            |t: &str, cols: &[&str]| -> shopfuse_core::Result<_> { store.read_columns(t, cols) };
        let sales = read_sales(&read, zone(config)?)?;
        let promotions = Promotions::from_config(&config.promotions)?;
        let e = evaluate_project(&sales, &promotions, &settings(config), args.windows)?;
        if cli.json {
            json.insert("project".into(), serde_json::to_value(&e)?);
        } else {
            print_project(&e);
        }
    }
    if let Some(dir) = &args.m4 {
        let data = M4Weekly::load(dir)?;
        let project_settings = crate::open(&cli.project)
            .map(|p| settings(&p.config.forecast))
            .unwrap_or_else(|_| settings(&Default::default()));
        let m4_settings = M4Settings {
            backtest_windows: project_settings.backtest_windows,
            boosted: project_settings.boosted,
        };
        let peer = args
            .statsforecast_python
            .as_deref()
            .map(|py| (py, args.statsforecast_script.as_path()));
        let report = evaluate_m4(&data, &m4_settings, peer)?;
        if cli.json {
            json.insert("m4_weekly".into(), serde_json::to_value(&report)?);
        } else {
            print_m4(&report);
        }
    }
    if cli.json {
        print_json(&json)?;
    }
    Ok(ExitCode::SUCCESS)
}

fn opt(v: Option<f64>, digits: usize) -> String {
    v.map_or("-".into(), |v| format!("{v:.digits$}"))
}

fn print_project(e: &ProjectEval) {
    println!(
        "rolling origin: {} windows of {} days from {} ({} promotion days among them); every fit on the days before its origin ({:.1} s)",
        e.origins.len(),
        e.horizon,
        e.origins.join(", "),
        e.promotion_days,
        e.seconds
    );
    let mut level = None;
    for s in &e.scores {
        if level != Some(s.level) {
            level = Some(s.level);
            println!(
                "\n  {:<24} {:>9} {:>7} {:>8} {:>8} {:>9} {:>9} {:>7} {:>9}",
                format!("level {}", s.level.name()),
                "forecasts",
                "MASE",
                "vs sNaive",
                "sMAPE",
                "MASE promo",
                "MASE other",
                "wQL",
                "P10–P90"
            );
        }
        let naive = e
            .scores
            .iter()
            .find(|x| x.level == s.level && x.method == "seasonal_naive")
            .map(|n| n.mase);
        println!(
            "  {:<24} {:>9} {:>7.3} {:>8} {:>8.2} {:>10} {:>10} {:>7} {:>9}",
            s.method,
            s.forecasts,
            s.mase,
            opt(naive.map(|n| s.mase / n), 3),
            s.smape,
            opt(s.mase_promotion_days, 3),
            opt(s.mase_other_days, 3),
            opt(s.wql, 3),
            s.coverage_80
                .map_or("-".into(), |c| format!("{:.0} %", 100.0 * c)),
        );
    }
    println!(
        "\n  (MASE: MAE over the in-sample weekly seasonal naive error; \"vs sNaive\" < 1 beats seasonal naive; wQL: weighted quantile loss of P10/P50/P90; P10–P90: share of actual days inside the band, 80 % if calibrated)"
    );
}

fn print_m4(r: &M4Report) {
    println!(
        "\nM4 Weekly: {} series, horizon {}, MASE with m = 1; selection by a {}-window rolling-origin backtest on the training part",
        r.series, r.horizon, r.backtest_windows
    );
    println!(
        "  {:<34} {:>7} {:>7} {:>7} {:>9}",
        "method", "sMAPE", "MASE", "OWA", "seconds"
    );
    for m in r.ours.iter().chain(&r.peer) {
        println!(
            "  {:<34} {:>7.3} {:>7.3} {:>7.3} {:>9.2}",
            m.method, m.smape, m.mase, m.owa, m.seconds
        );
    }
    println!("  published (M4, Weekly):");
    for (name, smape, mase, owa) in PUBLISHED {
        println!("  {:<34} {:>7.3} {:>7.3} {:>7.3}", name, smape, mase, owa);
    }
    let chosen: Vec<String> = r
        .chosen
        .iter()
        .filter(|c| c.1 > 0)
        .map(|(n, c)| format!("{n} {c}"))
        .collect();
    println!("  series per chosen model: {}", chosen.join(", "));
}

#[derive(Args)]
pub struct ForecastArgs {
    /// A golden product (GP…): its forecast summed over platforms, then per platform.
    #[arg(long, conflicts_with_all = ["category", "platform"])]
    product: Option<String>,
    /// A golden category.
    #[arg(long, conflicts_with = "platform")]
    category: Option<String>,
    /// A platform.
    #[arg(long)]
    platform: Option<String>,
    /// Steps to show (at most the stage's `[forecast] horizon_days`, or its weeks).
    #[arg(long, default_value_t = 28)]
    horizon: usize,
    /// The weekly forecast (weeks Monday to Sunday, fitted on weekly series) instead of the
    /// daily one.
    #[arg(long)]
    weekly: bool,
}

pub fn show_forecast(cli: &Cli, args: &ForecastArgs) -> Result<ExitCode> {
    let project = crate::open(&cli.project)?;
    let store = TableStore::open(&project)?;
    let columns = [
        forecasts::frequency,
        forecasts::level,
        forecasts::series,
        forecasts::golden_id,
        forecasts::platform,
        forecasts::category,
        forecasts::day,
        forecasts::step,
        forecasts::model,
        forecasts::forecast,
        forecasts::p10,
        forecasts::p50,
        forecasts::p90,
        forecasts::promotion,
    ];
    let Some(rows) = store.read_columns(forecasts::NAME, &columns)? else {
        bail!(
            "{} has no forecasts yet: run `shopfuse run` first",
            cli.project.display()
        );
    };
    let (level, field, wanted) = match (&args.product, &args.category, &args.platform) {
        (Some(p), _, _) => ("product", forecasts::golden_id, Some(p.as_str())),
        (_, Some(c), _) => ("category", forecasts::category, Some(c.as_str())),
        (_, _, Some(p)) => ("platform", forecasts::platform, Some(p.as_str())),
        _ => ("total", forecasts::level, None),
    };
    let frequency = if args.weekly { "weekly" } else { "daily" };
    let selected: Vec<&Vec<shopfuse_core::Value>> = rows
        .rows
        .iter()
        .filter(|r| rows.str(r, forecasts::frequency) == Some(frequency))
        .filter(|r| rows.str(r, forecasts::level) == Some(level))
        .filter(|r| wanted.is_none_or(|w| rows.str(r, field) == Some(w)))
        .filter(|r| rows.i64(r, forecasts::step).unwrap_or(0) <= args.horizon as i64)
        .collect();
    if selected.is_empty() {
        bail!(
            "no {level} forecast{} (check the id with `shopfuse sql \"select distinct series from forecasts where level = '{level}'\"`)",
            wanted.map_or(String::new(), |w| format!(" for {w:?}"))
        );
    }
    if cli.json {
        let out: Vec<serde_json::Value> = selected
            .iter()
            .map(|r| {
                serde_json::json!({
                    "series": rows.text(r, forecasts::series),
                    "day": rows.text(r, forecasts::day),
                    "model": rows.text(r, forecasts::model),
                    "forecast": rows.f64(r, forecasts::forecast),
                    "p10": rows.f64(r, forecasts::p10),
                    "p50": rows.f64(r, forecasts::p50),
                    "p90": rows.f64(r, forecasts::p90),
                    "promotion": rows.text(r, forecasts::promotion),
                })
            })
            .collect();
        print_json(&out)?;
        return Ok(ExitCode::SUCCESS);
    }
    let first = selected[0];
    println!(
        "{} — model {}; units per {}, coherent with the other levels; P10–P90 from the backtest errors",
        rows.text(first, forecasts::series).unwrap_or_default(),
        rows.text(first, forecasts::model).unwrap_or_else(|| "-".into()),
        if args.weekly { "week" } else { "day" }
    );
    println!(
        "  {:<11} {:>9} {:>8} {:>8} {:>8}  band",
        if args.weekly { "week of" } else { "day" },
        "forecast",
        "P10",
        "P50",
        "P90"
    );
    let top = selected
        .iter()
        .filter_map(|r| rows.f64(r, forecasts::p90))
        .fold(0.0f64, f64::max)
        .max(1e-9);
    let mut total = 0.0;
    for r in &selected {
        let f = rows.f64(r, forecasts::forecast).unwrap_or(0.0);
        total += f;
        let (p10, p90) = (
            rows.f64(r, forecasts::p10).unwrap_or(0.0),
            rows.f64(r, forecasts::p90).unwrap_or(0.0),
        );
        println!(
            "  {:<11} {:>9.2} {:>8.2} {:>8.2} {:>8.2}  {}{}",
            rows.text(r, forecasts::day).unwrap_or_default(),
            f,
            p10,
            rows.f64(r, forecasts::p50).unwrap_or(0.0),
            p90,
            band(p10, f, p90, top),
            rows.text(r, forecasts::promotion)
                .map_or(String::new(), |p| format!("  {p}")),
        );
    }
    println!(
        "  total over {} {}: {:.1} units",
        selected.len(),
        if args.weekly { "weeks" } else { "days" },
        total
    );
    Ok(ExitCode::SUCCESS)
}

/// A 30-character bar: `-` over P10–P90, `#` at the forecast.
fn band(p10: f64, forecast: f64, p90: f64, top: f64) -> String {
    let at = |v: f64| ((v / top) * 29.0).round().clamp(0.0, 29.0) as usize;
    let mut bar = vec![' '; 30];
    for c in bar.iter_mut().take(at(p90) + 1).skip(at(p10)) {
        *c = '-';
    }
    bar[at(forecast)] = '#';
    bar.into_iter().collect::<String>().trim_end().to_string()
}

/// The stage's lines in `shopfuse run`'s summary.
pub fn print_summary(s: &shopfuse_forecast::ForecastSummary) {
    let chosen: Vec<String> = s.chosen.iter().map(|(n, c)| format!("{n} {c}")).collect();
    println!(
        "\nforecast: {} series ({} golden product × platform) from {} orders ({} left out) in {:.1}s; next {} days total {}; weekly: {} series, next {} weeks total {}",
        s.series,
        s.bottom_series,
        s.orders_used,
        s.orders_left_out,
        s.seconds,
        s.horizon_days,
        opt(s.total_units, 0),
        s.weekly_series,
        s.horizon_weeks,
        opt(s.weekly_total_units, 0)
    );
    println!(
        "  daily models chosen by backtest: {}; `shopfuse forecast` shows one, `shopfuse eval forecast` scores them",
        if chosen.is_empty() { "-".into() } else { chosen.join(", ") }
    );
    println!(
        "  replenishment: {} of {} golden products to reorder now (`shopfuse replenish`); prices: {} product × platform series, {} undercut and {} sharp-move alerts (`shopfuse prices`)",
        s.reorder_now, s.planned_products, s.price_series, s.undercuts, s.sharp_moves
    );
}

#[derive(Args)]
pub struct BenchForecastArgs {
    /// Series counts, simulated (weekly, three years each, horizon 13).
    #[arg(long, value_delimiter = ',', default_value = "10000,100000")]
    series: Vec<usize>,
    /// A Python with statsforecast installed: AutoETS and AutoTheta on the same series.
    #[arg(long)]
    statsforecast_python: Option<PathBuf>,
    #[arg(long, default_value = "scripts/statsforecast_m4.py")]
    statsforecast_script: PathBuf,
    /// statsforecast runs on at most this many of the series (its rate per series is what
    /// the ratio compares; its AutoTheta takes about a second per series on 2 cores).
    #[arg(long, default_value_t = 300)]
    peer_series: usize,
}

pub fn bench_forecast(cli: &Cli, args: &BenchForecastArgs) -> Result<ExitCode> {
    let peer = args
        .statsforecast_python
        .as_deref()
        .map(|py| (py, args.statsforecast_script.as_path()));
    let mut sizes = Vec::new();
    for &n in &args.series {
        let size = shopfuse_forecast::bench::bench_size(n, peer, args.peer_series)?;
        if !cli.json {
            print_bench(&size);
        }
        sizes.push(size);
    }
    if cli.json {
        print_json(&sizes)?;
    }
    Ok(ExitCode::SUCCESS)
}

fn print_bench(s: &shopfuse_forecast::bench::BenchSize) {
    println!(
        "{} simulated weekly series × {} weeks, horizon {} ({} cores):",
        s.series,
        shopfuse_forecast::bench::WEEKS,
        shopfuse_forecast::bench::HORIZON,
        std::thread::available_parallelism().map_or(1, |n| n.get())
    );
    println!(
        "  {:<26} {:>9} {:>9} {:>11} {:>10}",
        "model", "series", "seconds", "series/s", "× peer"
    );
    for m in s.models.iter().chain(&s.peer) {
        println!(
            "  {:<26} {:>9} {:>9.2} {:>11.0} {:>10}",
            m.model,
            m.series,
            m.seconds,
            m.series_per_second,
            opt(m.ratio_to_peer, 1)
        );
    }
    println!("  (boosted: training on every series included; statsforecast: one process, its own loop, on the first {} series)", s.peer.first().map_or(0, |p| p.series));
}
