//! `shopfuse bench …`: the benches live in `shopfuse-pipeline` (and the encoder's and the
//! recommenders' in their crates); this module parses their options and prints their figures.

use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::Subcommand;
use shopfuse_pipeline::bench::{self, IdentityBenchRow, ResolveBenchRow, SplinkPeer};

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
    /// The identity stage on generated projects of growing size (about two accounts per
    /// person), each in its own process: accounts/s, peak memory, pair completeness and F1
    /// against the generator's truth; with `--splink-python`, Splink on the same raw exports
    /// in the same run, scored the same way.
    Identity {
        /// Account counts (about).
        #[arg(long, value_delimiter = ',', default_value = "8000,80000,400000")]
        sizes: Vec<usize>,
        #[arg(long, default_value_t = 3)]
        seed: u64,
        /// A Python with `splink` (5.x) installed; `./run bench` sets one up.
        #[arg(long)]
        splink_python: Option<std::path::PathBuf>,
        /// The Splink peer's script (default: scripts/splink_identity.py of the working
        /// directory, else of the source tree).
        #[arg(long)]
        splink_script: Option<std::path::PathBuf>,
    },
    /// The whole resolve stage (aliases, embeddings, blocking, match probabilities,
    /// clustering, golden products, tables) on generated projects of growing size: listings/s,
    /// seconds per phase and peak memory, each size in its own process.
    Resolve {
        /// Listing counts (about; the generator lists each product on two to four platforms).
        #[arg(long, value_delimiter = ',', default_value = "10000,100000,1000000")]
        sizes: Vec<usize>,
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// Run with `[resolve.cross_encoder]` on (trained on each project's GTIN-labelled
        /// pairs): its phase is the extra cost of re-reading the uncertain pairs.
        #[arg(long)]
        cross_encoder: bool,
        /// Encode on the Ballista cluster at df://HOST:PORT (`shopfuse scheduler` and
        /// `shopfuse executor` on machines that see this machine's temporary directory).
        #[arg(long, value_name = "df://HOST:PORT", value_parser = crate::cluster::parse_scheduler)]
        cluster: Option<shopfuse_cluster::SchedulerUrl>,
    },
    /// Every propensity model (BG/NBD, Gamma-Gamma, the calibrated purchase, churn and
    /// per-platform classifiers) fitted and scored on simulated fused customers of growing
    /// size: customers/s and peak memory; with `--lifetimes-python`, the `lifetimes`
    /// package's BG/NBD fit on the same summaries.
    Propensity(crate::propensity::BenchPropensityArgs),
    /// Every forecasting model on simulated weekly series (10k and 100k): series/s, the
    /// global model's training included; with `--statsforecast-python`, statsforecast's
    /// AutoETS and AutoTheta on the same series and the ratio.
    Forecast(crate::forecast::BenchForecastArgs),
    /// Product search on generated catalogues: index build docs/s, and queries/s with p50/p99
    /// latency for lexical, dense and hybrid, next to a plain tantivy BM25 query and an exact
    /// vector scan on the same data.
    Search(crate::search::BenchSearchArgs),
    /// Review sentiment on ChnSentiCorp: training seconds, test accuracy and texts/s of the
    /// n-gram model and the default ensemble; with `--snownlp-python`, SnowNLP on the same
    /// test set in the same run.
    Sentiment(crate::sentiment::BenchSentimentArgs),
    /// Fraud and risk on synthetic order books (1 M and 10 M orders): ring search and
    /// scoring orders/s, peak memory.
    Risk(crate::risk::BenchRiskArgs),
    /// The HTTP API over loopback on a copy of the project (-C): requests/s and p50/p99 for
    /// product lookup, customer by platform account, recommendations and event batches of
    /// 1,000, each next to the same client on a trivial endpoint of the same server; then
    /// the events acknowledged against the events in the log.
    Serve {
        /// Requests in flight (one keep-alive connection each).
        #[arg(long, value_delimiter = ',', default_value = "1,16,64")]
        concurrency: Vec<usize>,
        /// Seconds per case and concurrency.
        #[arg(long, default_value_t = 3.0)]
        seconds: f64,
    },
}

pub fn bench(cli: &Cli, command: &BenchCommand) -> Result<ExitCode> {
    match command {
        BenchCommand::Ingest { orders, seed } => bench_ingest(cli, *orders, *seed),
        BenchCommand::Embed(args) => crate::embed::bench_embed(cli, args),
        BenchCommand::Recs(args) => crate::recs::bench_recs(cli, args),
        BenchCommand::Propensity(args) => crate::propensity::bench_propensity(cli, args),
        BenchCommand::Forecast(args) => crate::forecast::bench_forecast(cli, args),
        BenchCommand::Search(args) => crate::search::bench_search(cli, args),
        BenchCommand::Sentiment(args) => crate::sentiment::bench_sentiment(cli, args),
        BenchCommand::Risk(args) => crate::risk::bench_risk(cli, args),
        BenchCommand::Resolve {
            sizes,
            seed,
            cross_encoder,
            cluster,
        } => bench_resolve(cli, sizes, *seed, *cross_encoder, cluster.as_ref()),
        BenchCommand::Serve {
            concurrency,
            seconds,
        } => bench_serve(cli, concurrency, *seconds),
        BenchCommand::Identity {
            sizes,
            seed,
            splink_python,
            splink_script,
        } => bench_identity(
            cli,
            sizes,
            *seed,
            splink_python.as_deref(),
            splink_script.as_deref(),
        ),
    }
}

fn bench_resolve(
    cli: &Cli,
    sizes: &[usize],
    seed: u64,
    cross_encoder: bool,
    cluster: Option<&shopfuse_cluster::SchedulerUrl>,
) -> Result<ExitCode> {
    let exe = std::env::current_exe().context("cannot find the shopfuse binary")?;
    let rows = bench::bench_resolve(&exe, sizes, seed, cross_encoder, cluster, |row| {
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
            let cores = row
                .phase_busy_cores
                .iter()
                .find(|(q, _)| q == p)
                .map(|(_, c)| format!(" {c:.1} cores"))
                .unwrap_or_default();
            format!("{p} {s:.1}s{peak}{cores}")
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
    if let Some(c) = &row.cross_encoder {
        println!(
            "{:>9} cross-encoder: {:.1}s of {:.1}s ({:.0} %): trained on {} pairs in {:.1}s, {} uncertain pairs re-read{} at {:.0} pairs/s ({:.1} % of their word pieces unknown), weight {:.2}, {} decisions changed",
            "",
            c.seconds,
            row.seconds,
            100.0 * c.seconds / row.seconds,
            c.train_pairs,
            c.training_seconds,
            c.band_pairs,
            if c.band_capped { " (capped)" } else { "" },
            c.pairs_per_second,
            100.0 * c.unknown_token_share,
            c.weight,
            c.decisions_changed
        );
    }
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

fn bench_identity(
    cli: &Cli,
    sizes: &[usize],
    seed: u64,
    splink_python: Option<&std::path::Path>,
    splink_script: Option<&std::path::Path>,
) -> Result<ExitCode> {
    let exe = std::env::current_exe().context("cannot find the shopfuse binary")?;
    let script = match splink_script {
        Some(s) => s.to_path_buf(),
        None => {
            let here = std::path::PathBuf::from("scripts/splink_identity.py");
            let tree = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("../../scripts/splink_identity.py");
            if here.is_file() {
                here
            } else {
                tree
            }
        }
    };
    let peer = splink_python.map(|python| SplinkPeer {
        python,
        script: &script,
    });
    if !cli.json {
        println!(
            "identity on generated projects (seed {seed}, {} threads); Splink {}",
            bench::threads(),
            if peer.is_some() {
                "on the same exports"
            } else {
                "not run (no --splink-python)"
            }
        );
    }
    let rows = bench::bench_identity(&exe, sizes, seed, peer.as_ref(), |row| {
        if !cli.json {
            print_identity_row(row);
        }
    })?;
    if cli.json {
        print_json(&rows)?;
    }
    Ok(ExitCode::SUCCESS)
}

fn print_identity_row(r: &IdentityBenchRow) {
    let fuzzy_recall = |f: &Option<shopfuse_core::metrics::Scores>| {
        f.as_ref()
            .map_or("-".to_string(), |s| format!("{:.1}", s.recall * 100.0))
    };
    println!(
        "{} accounts ({} people): shopfuse {:.1}s, {:.0} accounts/s, peak {}, pair completeness {:.4}, pairwise F1 {:.1} (P {:.1} R {:.1}), cluster F1 {:.1}, fuzzy recall {}",
        r.accounts,
        r.people,
        r.seconds,
        r.accounts_per_second,
        r.peak_memory_mib
            .map_or("-".to_string(), |m| format!("{m:.0} MiB")),
        r.pair_completeness,
        r.pairwise.f1 * 100.0,
        r.pairwise.precision * 100.0,
        r.pairwise.recall * 100.0,
        r.cluster.f1 * 100.0,
        fuzzy_recall(&r.fuzzy)
    );
    let p = &r.phase_seconds;
    println!(
        "  phases: read {:.2}s, block and compare {:.2}s, estimate {:.2}s, cluster {:.2}s, write {:.2}s",
        p.read, p.compare, p.estimate, p.cluster, p.write
    );
    if let Some(s) = &r.splink {
        println!(
            "  Splink {}: {:.1}s ({:.1}s of it reading the exports), {:.0} accounts/s ({:.0} linking alone), pairwise F1 {:.1} (P {:.1} R {:.1}), cluster F1 {:.1}, fuzzy recall {} · shopfuse {:.1}× its linking accounts/s",
            s.version,
            s.seconds,
            s.read_seconds,
            s.accounts_per_second,
            s.linkage_accounts_per_second,
            s.pairwise.f1 * 100.0,
            s.pairwise.precision * 100.0,
            s.pairwise.recall * 100.0,
            s.cluster.f1 * 100.0,
            fuzzy_recall(&s.fuzzy),
            r.accounts_per_second / s.linkage_accounts_per_second.max(1e-9)
        );
    }
}

fn bench_serve(cli: &Cli, concurrency: &[usize], seconds: f64) -> Result<ExitCode> {
    let project = crate::open(&cli.project)?;
    let options = shopfuse_serve::bench::ServeBenchOptions {
        concurrency: concurrency.to_vec(),
        seconds,
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    let report = runtime.block_on(shopfuse_serve::bench::bench_serve(&project, &options))?;
    if cli.json {
        print_json(&report)?;
        return Ok(ExitCode::SUCCESS);
    }
    println!(
        "shopfuse serve over loopback, {} golden products, {} customers, {} cores (client and server share them)",
        report.products,
        report.customers,
        std::thread::available_parallelism().map_or(1, |n| n.get())
    );
    println!(
        "{:<30} {:>5} {:>9} {:>11} {:>8} {:>8} {:>9} {:>11} {:>6}",
        "case", "conc", "requests", "req/s", "p50 ms", "p99 ms", "ceiling", "events/s", "errors"
    );
    for r in &report.rows {
        println!(
            "{:<30} {:>5} {:>9} {:>11.0} {:>8.2} {:>8.2} {:>8.0}% {:>11} {:>6}",
            r.case,
            r.concurrency,
            r.requests,
            r.requests_per_second,
            r.p50_ms,
            r.p99_ms,
            r.ratio_to_ceiling * 100.0,
            r.events_per_second
                .map_or(String::new(), |e| format!("{e:.0}")),
            r.errors
        );
    }
    println!(
        "the live-events case scored {} unfolded events, {:.0} per customer on average",
        report.live_events,
        report.live_events as f64 / report.customers.max(1) as f64
    );
    let lost = report.events_acknowledged as i64 - report.events_in_log as i64;
    println!(
        "events acknowledged with 202: {}; in the event log after stopping: {} ({})",
        report.events_acknowledged,
        report.events_in_log,
        if lost == 0 {
            "nothing lost, nothing twice".to_string()
        } else {
            format!("difference {lost}")
        }
    );
    Ok(if lost == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}
