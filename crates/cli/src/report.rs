//! `shopfuse report quality` and `shopfuse report customers`.

use std::process::ExitCode;

use anyhow::{bail, Context, Result};
use clap::{Args, Subcommand};
use shopfuse_clean::quality::QualityReport;
use shopfuse_core::TableStore;

use crate::{open, print_json, Cli};

#[derive(Subcommand)]
pub enum ReportCommand {
    /// Per-source data quality: rows, nulls per field, invalid, quarantined by reason,
    /// duplicates, outliers.
    Quality,
    /// Customers and their spend per segment (or per number of platforms used); with
    /// --dp-epsilon, differentially private (Laplace noise on counts and sums) for sharing
    /// outside.
    Customers(CustomerReportArgs),
}

#[derive(Args)]
pub struct CustomerReportArgs {
    /// Privacy budget of this release; without it the figures are exact (internal use only).
    #[arg(long)]
    dp_epsilon: Option<f64>,
    /// Each customer's spend is clipped to this amount (base currency) before summing: the
    /// sensitivity of the sums. Choose it from domain knowledge, not from the data.
    #[arg(long, default_value_t = 20_000.0)]
    dp_clip: f64,
    /// Group by segment or by number of platforms used.
    #[arg(long, value_parser = ["segment", "platforms"], default_value = "segment")]
    by: String,
}

pub fn report(cli: &Cli, report: &ReportCommand) -> Result<ExitCode> {
    match report {
        ReportCommand::Quality => report_quality(cli),
        ReportCommand::Customers(args) => report_customers(cli, args),
    }
}

fn report_customers(cli: &Cli, args: &CustomerReportArgs) -> Result<ExitCode> {
    let project = open(&cli.project)?;
    let store = TableStore::open(&project)?;
    let table = store
        .read_rows(shopfuse_identity::customers::NAME)?
        .context("no customers table yet: run `shopfuse run` first")?;
    let customers: Vec<(String, usize, f64)> = table
        .rows
        .iter()
        .map(|r| {
            (
                table.text(r, "segment").unwrap_or_default(),
                table
                    .text(r, "platforms")
                    .map_or(0, |p| p.split(',').count()),
                table.f64(r, "monetary_base").unwrap_or(0.0),
            )
        })
        .collect();
    let platforms: std::collections::BTreeSet<&str> = project
        .config
        .sources
        .iter()
        .map(|s| s.platform.as_str())
        .collect();
    let grouping = match args.by.as_str() {
        "platforms" => shopfuse_learn::ReportGrouping::Platforms,
        _ => shopfuse_learn::ReportGrouping::Segment,
    };
    let report = shopfuse_learn::customer_report(
        &customers,
        grouping,
        platforms.len(),
        args.dp_epsilon,
        args.dp_clip,
        &mut rand::rng(),
    )?;
    if cli.json {
        print_json(&report)?;
        return Ok(ExitCode::SUCCESS);
    }
    let base = &project.config.project.base_currency;
    println!("customers by {} · {}", report.grouping, report.note);
    if let (Some(bc), Some(bs)) = (report.count_noise_scale, report.sum_noise_scale) {
        println!("  Laplace noise scale: counts {bc:.2}, sums {bs:.2} {base}");
    }
    println!(
        "  {:<16} {:>10} {:>16} {:>12}",
        report.grouping,
        "customers",
        format!("spend ({base})"),
        "mean"
    );
    for g in &report.groups {
        println!(
            "  {:<16} {:>10.0} {:>16.2} {:>12}",
            g.group,
            g.customers,
            g.monetary_sum,
            g.monetary_mean
                .map_or("-".to_string(), |m| format!("{m:.2}"))
        );
    }
    Ok(ExitCode::SUCCESS)
}

fn report_quality(cli: &Cli) -> Result<ExitCode> {
    let project = open(&cli.project)?;
    let Some(report) = QualityReport::load(&TableStore::open(&project)?)? else {
        bail!(
            "no quality report yet in {}: run `shopfuse run` first",
            project.root.display()
        );
    };
    if cli.json {
        print_json(&report)?;
    } else {
        print!("{}", report.to_text());
    }
    Ok(ExitCode::SUCCESS)
}
