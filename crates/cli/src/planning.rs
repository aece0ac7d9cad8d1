//! `shopfuse replenish` (what to reorder, from the `replenishment` table), `shopfuse prices`
//! (price alerts, or one product's prices per platform by week) and `shopfuse eval prices`
//! (the alerts against the generator's planted moves).

use std::collections::HashMap;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{bail, Result};
use clap::Args;
use shopfuse_core::value::NamedRows;
use shopfuse_core::TableStore;
use shopfuse_forecast::price_eval::{evaluate_price_alerts, read_truth, FOUND_WITHIN_DAYS};
use shopfuse_forecast::tables::zone;
use shopfuse_forecast::{price_alerts as pa, price_history as ph, replenishment_table as rp};
use shopfuse_resolve::catalogue::golden_products as gp;

use crate::{print_json, Cli};

#[derive(Args)]
pub struct ReplenishArgs {
    /// Every planned product, not only those to reorder now.
    #[arg(long)]
    all: bool,
    /// One golden product (GP…).
    #[arg(long)]
    product: Option<String>,
    /// At most this many rows, highest stock-out risk first.
    #[arg(long, default_value_t = 20)]
    limit: usize,
}

fn read_table(store: &TableStore, cli: &Cli, name: &str, columns: &[&str]) -> Result<NamedRows> {
    match store.read_columns(name, columns)? {
        Some(rows) => Ok(rows),
        None => bail!(
            "{} has no {name} table yet: run `shopfuse run` first",
            cli.project.display()
        ),
    }
}

fn titles(store: &TableStore) -> Result<HashMap<String, String>> {
    let mut titles = HashMap::new();
    if let Some(rows) = store.read_columns(gp::NAME, &[gp::golden_id, gp::title])? {
        for r in &rows.rows {
            if let (Some(id), Some(t)) = (rows.text(r, gp::golden_id), rows.text(r, gp::title)) {
                titles.insert(id, t);
            }
        }
    }
    Ok(titles)
}

/// A title cut to `n` characters (titles are Chinese or English).
fn short(title: Option<&String>, n: usize) -> String {
    let t = title.map_or("", String::as_str);
    if t.chars().count() <= n {
        t.to_string()
    } else {
        format!("{}…", t.chars().take(n - 1).collect::<String>())
    }
}

fn fmt_opt(v: Option<f64>, digits: usize) -> String {
    v.map_or("-".into(), |v| format!("{v:.digits$}"))
}

pub fn replenish(cli: &Cli, args: &ReplenishArgs) -> Result<ExitCode> {
    let project = crate::open(&cli.project)?;
    let store = TableStore::open(&project)?;
    let rows = read_table(&store, cli, rp::NAME, &rp::TABLE.column_names())?;
    let mut selected: Vec<&Vec<shopfuse_core::Value>> = rows
        .rows
        .iter()
        .filter(|r| {
            args.product
                .as_deref()
                .is_none_or(|p| rows.str(r, rp::golden_id) == Some(p))
        })
        .filter(|r| {
            args.all || args.product.is_some() || rows.i64(r, rp::order_quantity).unwrap_or(0) > 0
        })
        .collect();
    if let Some(p) = &args.product {
        if selected.is_empty() {
            bail!("no replenishment plan for {p:?}: it has no forecast (check the id with `shopfuse sql \"select golden_id from replenishment\"`)");
        }
    }
    let risk = |r: &Vec<shopfuse_core::Value>| rows.f64(r, rp::stockout_risk).unwrap_or(-1.0);
    selected.sort_by(|a, b| risk(b).total_cmp(&risk(a)));
    let reorder_now = rows
        .rows
        .iter()
        .filter(|r| rows.i64(r, rp::order_quantity).unwrap_or(0) > 0)
        .count();
    selected.truncate(args.limit);
    if cli.json {
        let out: Vec<_> = selected
            .iter()
            .map(|r| rows.row_json(r, &rp::TABLE.column_names()))
            .collect();
        print_json(&out)?;
        return Ok(ExitCode::SUCCESS);
    }
    let titles = titles(&store)?;
    println!(
        "{} of {} golden products at or below their reorder point; stock summed over platforms, demand from the reconciled forecast",
        reorder_now,
        rows.rows.len()
    );
    println!(
        "  {:<18} {:<22} {:>7} {:>8} {:>8} {:>8} {:>8} {:>7} {:>8}  rule",
        "golden_id", "title", "stock", "lead μ", "safety", "reorder", "up to", "order", "risk"
    );
    for r in &selected {
        println!(
            "  {:<18} {:<22} {:>7} {:>8.1} {:>8.1} {:>8.1} {:>8.1} {:>7} {:>8}  {} (L {} d, R {} d, {:.0} %)",
            rows.text(r, rp::golden_id).unwrap_or_default(),
            short(titles.get(&rows.text(r, rp::golden_id).unwrap_or_default()), 20),
            rows.i64(r, rp::stock).map_or("-".into(), |s| s.to_string()),
            rows.f64(r, rp::demand_lead_time).unwrap_or(0.0),
            rows.f64(r, rp::safety_stock).unwrap_or(0.0),
            rows.f64(r, rp::reorder_point).unwrap_or(0.0),
            rows.f64(r, rp::order_up_to).unwrap_or(0.0),
            rows.i64(r, rp::order_quantity).map_or("-".into(), |q| q.to_string()),
            rows.f64(r, rp::stockout_risk)
                .map_or("-".into(), |p| format!("{:.1} %", 100.0 * p)),
            rows.text(r, rp::rule).unwrap_or_default(),
            rows.i64(r, rp::lead_time_days).unwrap_or(0),
            rows.i64(r, rp::review_days).unwrap_or(0),
            100.0 * rows.f64(r, rp::service_level).unwrap_or(0.0),
        );
    }
    if let Some(r) = selected.first() {
        println!(
            "  (risk: chance of selling out within {} days; lead μ: expected units over the lead time)",
            rows.i64(r, rp::risk_days).unwrap_or(0)
        );
    }
    Ok(ExitCode::SUCCESS)
}

#[derive(Args)]
pub struct PricesArgs {
    /// One golden product (GP…): its price per platform by week, and its alerts.
    #[arg(long)]
    product: Option<String>,
    /// Only alerts of this kind.
    #[arg(long, value_parser = ["undercut", "sharp_move"])]
    kind: Option<String>,
    /// At most this many alerts (latest first) or weeks.
    #[arg(long, default_value_t = 20)]
    limit: usize,
}

pub fn prices(cli: &Cli, args: &PricesArgs) -> Result<ExitCode> {
    let project = crate::open(&cli.project)?;
    let base = project.config.project.base_currency.clone();
    let store = TableStore::open(&project)?;
    let alerts = read_table(&store, cli, pa::NAME, &pa::TABLE.column_names())?;
    let mut selected: Vec<&Vec<shopfuse_core::Value>> = alerts
        .rows
        .iter()
        .filter(|r| {
            args.product
                .as_deref()
                .is_none_or(|p| alerts.str(r, pa::golden_id) == Some(p))
        })
        .filter(|r| {
            args.kind
                .as_deref()
                .is_none_or(|k| alerts.str(r, pa::kind) == Some(k))
        })
        .collect();
    selected.reverse();
    selected.truncate(args.limit);
    let history = match &args.product {
        Some(p) => {
            let rows = read_table(&store, cli, ph::NAME, &ph::TABLE.column_names())?;
            let mine: Vec<Vec<shopfuse_core::Value>> = rows
                .rows
                .iter()
                .filter(|r| rows.str(r, ph::golden_id) == Some(p.as_str()))
                .cloned()
                .collect();
            if mine.is_empty() {
                bail!("no prices for {p:?}: it has no orders with a price (check the id with `shopfuse sql \"select distinct golden_id from price_history\"`)");
            }
            Some(NamedRows {
                columns: rows.columns.clone(),
                rows: mine,
            })
        }
        None => None,
    };
    if cli.json {
        let mut out = serde_json::Map::new();
        let def = pa::TABLE;
        let names = def.column_names();
        let alerts_json: Vec<_> = selected
            .iter()
            .map(|r| alerts.row_json(r, &names))
            .collect();
        out.insert("alerts".into(), serde_json::to_value(alerts_json)?);
        if let Some(h) = &history {
            let def = ph::TABLE;
            let names = def.column_names();
            let weeks: Vec<_> = h.rows.iter().map(|r| h.row_json(r, &names)).collect();
            out.insert("weeks".into(), serde_json::to_value(weeks)?);
        }
        print_json(&out)?;
        return Ok(ExitCode::SUCCESS);
    }
    let titles = titles(&store)?;
    if let (Some(h), Some(p)) = (&history, &args.product) {
        print_history(h, p, titles.get(p), &base, args.limit);
    }
    println!(
        "\n{} price alerts ({} shown, latest first; prices in {base}):",
        alerts.rows.len(),
        selected.len()
    );
    for r in &selected {
        let id = alerts.text(r, pa::golden_id).unwrap_or_default();
        let platform = alerts.text(r, pa::platform).unwrap_or_default();
        let price = alerts.f64(r, pa::price_base).unwrap_or(0.0);
        let reference = alerts.f64(r, pa::reference_price_base).unwrap_or(0.0);
        let change = alerts.f64(r, pa::change).unwrap_or(0.0);
        let what = match alerts.str(r, pa::kind) {
            Some("undercut") => format!(
                "{platform} undercuts {} by {:.0} % ({price:.2} vs {reference:.2})",
                alerts.text(r, pa::reference_platform).unwrap_or_default(),
                100.0 * change
            ),
            _ => format!(
                "{platform} moved {:+.0} % ({reference:.2} → {price:.2})",
                100.0 * change
            ),
        };
        println!(
            "  {} {:<18} {:<22} {what}, since {}",
            alerts.text(r, pa::day).unwrap_or_default(),
            id,
            short(titles.get(&id), 20),
            alerts.text(r, pa::since).unwrap_or_default(),
        );
    }
    Ok(ExitCode::SUCCESS)
}

fn print_history(h: &NamedRows, product: &str, title: Option<&String>, base: &str, limit: usize) {
    println!(
        "{product} {} — price level per platform at each week's end, in {base} (own currency in brackets); * cheapest",
        title.map_or("", String::as_str)
    );
    let mut weeks: Vec<String> = h.rows.iter().filter_map(|r| h.text(r, ph::week)).collect();
    weeks.dedup();
    let skip = weeks.len().saturating_sub(limit);
    for week in &weeks[skip..] {
        let cells: Vec<String> = h
            .rows
            .iter()
            .filter(|r| h.str(r, ph::week) == Some(week.as_str()))
            .map(|r| {
                let platform = h.text(r, ph::platform).unwrap_or_default();
                let cheapest = h.str(r, ph::cheapest_platform) == Some(platform.as_str());
                let own = match h.str(r, ph::currency) {
                    Some(c) if c != base => {
                        format!(" [{c} {:.2}]", h.f64(r, ph::price).unwrap_or(0.0))
                    }
                    _ => String::new(),
                };
                format!(
                    "{platform} {:.2}{own}{} ({} orders, {:+.0} %)",
                    h.f64(r, ph::price_base).unwrap_or(0.0),
                    if cheapest { "*" } else { "" },
                    h.i64(r, ph::orders).unwrap_or(0),
                    100.0 * h.f64(r, ph::gap_to_cheapest).unwrap_or(0.0),
                )
            })
            .collect();
        println!("  {week}  {}", cells.join("   "));
    }
}

#[derive(Args)]
pub struct EvalPricesArgs {
    /// The planted moves (default: truth/price_moves.csv in the project).
    #[arg(long)]
    truth: Option<PathBuf>,
}

pub fn eval_prices(cli: &Cli, args: &EvalPricesArgs) -> Result<ExitCode> {
    let project = crate::open(&cli.project)?;
    let path = args
        .truth
        .clone()
        .unwrap_or_else(|| project.root.join("truth").join("price_moves.csv"));
    let truth = read_truth(&path)?;
    let store = TableStore::open(&project)?;
    let read = |t: &str, cols: &[&str]| -> shopfuse_core::Result<_> { store.read_columns(t, cols) };
    let e = evaluate_price_alerts(&read, zone(&project.config.forecast)?, &truth)?;
    if cli.json {
        print_json(&e)?;
        return Ok(ExitCode::SUCCESS);
    }
    let p = &project.config.forecast.prices;
    println!(
        "price alerts against {} planted moves ({}); undercut ≥ {:.0} %, sharp move ≥ {:.0} %, found = an alert of the kind on the product and platform within {FOUND_WITHIN_DAYS} days",
        truth.len(),
        path.display(),
        100.0 * p.undercut_share,
        100.0 * p.sharp_move_share
    );
    println!(
        "  {:<11} {:>8} {:>8} {:>6} {:>7} {:>7} {:>10} {:>10} {:>9}",
        "kind",
        "planted",
        "matched",
        "found",
        "recall",
        "alerts",
        "explained",
        "precision",
        "lag days"
    );
    for k in &e.kinds {
        println!(
            "  {:<11} {:>8} {:>8} {:>6} {:>7.3} {:>7} {:>10} {:>10.3} {:>9}",
            k.kind,
            k.planted,
            k.in_catalogue,
            k.found,
            k.recall,
            k.alerts,
            k.explained,
            k.precision,
            fmt_opt(k.median_lag_days, 0)
        );
    }
    println!(
        "  all alerts: {} of {} explained by a planted move on the product (precision {:.3}); matched: the moved listing is in a golden product",
        e.explained, e.alerts, e.precision
    );
    Ok(ExitCode::SUCCESS)
}
