//! `shopfuse bench …`: the benches live in `shopfuse-pipeline` (and the encoder's and the
//! recommenders' in their crates); this module parses their options and prints their figures.

use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::Subcommand;
use shopfuse_pipeline::bench::{self, ResolveBenchRow};

use crate::{print_json, Cli};

#[derive(Subcommand)]
pub enum BenchCommand {
    /// Ingest throughput (rows/s, MB/s) on a generated data set, next to DataFusion's plain
    /// CSV/JSON/Parquet readers on the same files.
    Ingest {
        #[arg(long, default_value_t = 200_000)]
        orders: usize,
        #[arg(long, default_value_t = 1)]
        seed: u64,
    },
    /// Sentence encoder throughput at batch sizes 1, 32 and 256 on a fixed corpus of mixed
    /// Chinese/English product titles, next to the model package's numpy reference.
    Embed(crate::embed::BenchEmbedArgs),
    /// Recommendation models on synthetic implicit feedback (INTERACTIONSxITEMS): training
    /// seconds and top-10 lists per second for popularity, item-kNN, EASE, iALS, hybrid.
    Recs(crate::recs::BenchRecsArgs),
    /// The whole resolve stage (aliases, embeddings, blocking, match probabilities,
    /// clustering, golden products, tables) on generated projects of growing size: listings/s,
    /// seconds per phase and peak memory, each size in its own process.
    Resolve {
        /// Listing counts (about; the generator lists each product on two to four platforms).
        #[arg(long, value_delimiter = ',', default_value = "10000,100000,1000000")]
        sizes: Vec<usize>,
        #[arg(long, default_value_t = 1)]
        seed: u64,
    },
}

pub fn bench(cli: &Cli, command: &BenchCommand) -> Result<ExitCode> {
    match command {
        BenchCommand::Ingest { orders, seed } => bench_ingest(cli, *orders, *seed),
        BenchCommand::Embed(args) => crate::embed::bench_embed(cli, args),
        BenchCommand::Recs(args) => crate::recs::bench_recs(cli, args),
        BenchCommand::Resolve { sizes, seed } => bench_resolve(cli, sizes, *seed),
    }
}

fn bench_resolve(cli: &Cli, sizes: &[usize], seed: u64) -> Result<ExitCode> {
    let exe = std::env::current_exe().context("cannot find the shopfuse binary")?;
    let rows = bench::bench_resolve(&exe, sizes, seed, |row| {
        if !cli.json {
            print_resolve_row(row);
        }
    })?;
    if cli.json {
        print_json(&rows)?;
        return Ok(ExitCode::SUCCESS);
    }
    for (from, to, b) in bench::growth_exponents(&rows) {
        println!("{from} → {to} listings: time grows as listings^{b:.2}");
    }
    Ok(ExitCode::SUCCESS)
}

fn print_resolve_row(row: &ResolveBenchRow) {
    let phases: Vec<String> = row
        .phases
        .iter()
        .map(|(p, s)| {
            let peak = row
                .phase_peak_memory_mib
                .iter()
                .find(|(q, _)| q == p)
                .map(|(_, m)| format!(" ≤{m:.0} MiB"))
                .unwrap_or_default();
            format!("{p} {s:.1}s{peak}")
        })
        .collect();
    println!(
        "{:>9} listings  {:>10} candidates  {:>8.1}s  {:>8.0} listings/s  peak {:>7.0} MiB   {}",
        row.listings,
        row.candidate_pairs,
        row.seconds,
        row.listings_per_second,
        row.peak_memory_mib.unwrap_or(f64::NAN),
        phases.join(", ")
    );
}

fn bench_ingest(cli: &Cli, orders: usize, seed: u64) -> Result<ExitCode> {
    let report = bench::bench_ingest(orders, seed)?;
    let bytes = report.bytes;
    let rows_generated = report.rows_generated;
    let shopfuse_seconds = report.shopfuse_seconds;
    let peer_seconds = report.peer_seconds;
    let full_seconds = report.full_ingest_seconds;
    if cli.json {
        print_json(&report)?;
    } else {
        println!(
            "ingest benchmark: {} generated rows, {} threads",
            rows_generated,
            bench::threads()
        );
        println!(
            "  same {} files ({} rows, {:.1} MB):",
            report.files_compared.len(),
            report.rows,
            bytes as f64 / 1e6
        );
        println!(
            "    shopfuse ingest (parse, validate, pseudonymise, write Parquet) {:>7.2}s {:>10.0} rows/s",
            shopfuse_seconds, report.shopfuse_rows_per_second
        );
        println!(
            "    DataFusion plain read (infer schema, parse, materialise)      {:>7.2}s {:>10.0} rows/s",
            peer_seconds, report.peer_rows_per_second
        );
        println!(
            "    ratio shopfuse / DataFusion time: {:.2}",
            report.time_ratio
        );
        for (f, e) in &report.peer_failed {
            println!("  DataFusion could not read {f}: {e}");
        }
        println!(
            "  all files (GBK, malformed rows included): {} rows in {:.2}s = {:.0} rows/s",
            report.full_ingest_rows, full_seconds, report.full_ingest_rows_per_second
        );
    }
    Ok(ExitCode::SUCCESS)
}
