//! The `shopfuse` command line: argument parsing, printing and exit codes. Every command
//! calls a library (`shopfuse-pipeline` for runs and benches); a module per command group.

mod bench;
mod cluster;
mod cross;
mod embed;
mod eval;
mod forecast;
mod planning;
mod progress;
mod project;
mod propensity;
mod query;
mod recs;
mod report;
mod review;
mod risk;
mod run;
mod search;
mod sentiment;
mod serve;

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::{Parser, Subcommand};
use serde::Serialize;
use shopfuse_core::Project;

pub use progress::Bar;

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

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
    Generate(project::GenerateArgs),
    /// Run the pipeline (ingest, clean, product resolution, customer identity, profiles,
    /// recommendations, propensity, forecast, search index, review sentiment, fraud and risk) as one atomic commit. A stage whose settings and input tables are
    /// unchanged since it last ran is skipped.
    Run(run::RunArgs),
    /// The pipeline's stages in order, with the tables each reads and writes.
    Stages,
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
    /// One customer's purchase, churn and value scores, per platform, with what drives them
    /// (audited).
    Propensity(propensity::PropensityArgs),
    /// Customers a condition over their propensity and profile selects, as account ids for
    /// activation on a platform (keyed-hash pseudonyms, or the platform's own ids with --ids
    /// platform); with --dp-epsilon only a noisy count. Audited.
    Audience(propensity::AudienceArgs),
    /// A sales forecast with its P10–P90 band: the total, or one golden product, category or
    /// platform (after `shopfuse run`).
    Forecast(forecast::ForecastArgs),
    /// What to reorder: each golden product's safety stock, reorder point, order quantity
    /// against its stock over every platform, and stock-out risk (after `shopfuse run`).
    Replenish(planning::ReplenishArgs),
    /// Search the fused catalogue in Chinese or English: ranked golden products with the best
    /// offer per platform and why each matched (after `shopfuse run`).
    Search(search::SearchArgs),
    /// Ask the customer-service assistant: the answer drawn from the fused facts (products,
    /// offers, the customer's orders, policies/*.md) with each source cited; exit code 3 when
    /// it found nothing to answer from.
    Ask(search::AskArgs),
    /// Review sentiment: with TEXT, classify it (polarity, and each clause's aspects) with
    /// the project's trained model; with --product, one golden product's sentiment per
    /// platform, aspect and month with its alerts; else every alert (after `shopfuse run`).
    Sentiment(sentiment::SentimentArgs),
    /// Fraud and risk: the riskiest orders and reviews and the densest rings, or with --ring
    /// one ring's evidence, accounts and orders (after `shopfuse run`).
    Risk(risk::RiskArgs),
    /// Cross-platform prices: undercut and sharp-move alerts, or with --product one golden
    /// product's price per platform by week and its gap to the cheapest.
    Prices(planning::PricesArgs),
    /// The human review loop of product matching.
    Review {
        #[command(subcommand)]
        review: review::ReviewCommand,
    },
    /// Reports over the last committed run.
    Report {
        #[command(subcommand)]
        report: report::ReportCommand,
    },
    /// Run SQL over every table (raw_*, clean_*, quarantine, clean_removed, quality_*, …).
    Sql {
        /// The query, e.g. "select count(*) from quarantine".
        query: String,
    },
    /// List tables with their row counts; `--schema` prints the data dictionary.
    Tables(query::TablesArgs),
    /// Encode texts (one per line, stdin or --input) into sentence vectors (USE multilingual
    /// v3, 512 dimensions), written as JSON lines or Parquet; cached in the project.
    Embed(embed::EmbedArgs),
    /// Accuracy on labelled data the models were not tuned on.
    Eval {
        #[command(subcommand)]
        eval: eval::EvalCommand,
    },
    /// Serve the committed tables over HTTP (JSON under /api/v1, API keys with roles, every
    /// per-customer read audited); reloads when a run commits.
    Serve(serve::ServeArgs),
    /// Erase one customer on request: their rows leave every table and the API's event log,
    /// their accounts are tombstoned so re-ingesting the same exports does not bring them back,
    /// and the erasure is audited. With a server running, erase through it instead
    /// (DELETE /api/v1/customers/ID).
    Erase(serve::EraseArgs),
    /// API keys of the HTTP server: create, list, revoke.
    Keys {
        #[command(subcommand)]
        keys: serve::KeysCommand,
    },
    /// Run Apache Ballista's scheduler with shopfuse's functions: the address `run --cluster`
    /// and the executors connect to.
    Scheduler(cluster::SchedulerArgs),
    /// Run an Apache Ballista executor with shopfuse's functions, registered with a scheduler.
    Executor(cluster::ExecutorArgs),
    /// Measure speed on generated data, against a peer in the same run.
    Bench {
        #[command(subcommand)]
        bench: bench::BenchCommand,
    },
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
    use shopfuse_pipeline::Selection;
    let only = |stages: &[&str]| Selection::Only(stages.iter().map(|s| s.to_string()).collect());
    match &cli.command {
        Command::Init => project::init(&cli.project),
        Command::Generate(args) => project::generate(cli, args),
        Command::Run(args) => run::run(cli, args.options()),
        Command::Stages => run::stages(cli),
        Command::Ingest => run::forced(cli, only(&["ingest"])),
        Command::Clean => run::forced(cli, only(&["clean"])),
        Command::Resolve => run::forced(cli, only(&["resolve"])),
        Command::Identity => run::forced(cli, only(&["identity", "profiles"])),
        Command::Review { review } => review::review(cli, review),
        Command::Report { report } => report::report(cli, report),
        Command::Sql { query } => query::sql(cli, query),
        Command::Tables(args) => query::tables(cli, args),
        Command::Embed(args) => embed::embed(cli, args),
        Command::Eval { eval } => eval::eval(cli, eval),
        Command::Train { train } => recs::train(cli, train),
        Command::Recommend(args) => recs::recommend(cli, args),
        Command::Propensity(args) => propensity::show_propensity(cli, args),
        Command::Audience(args) => propensity::audience_command(cli, args),
        Command::Forecast(args) => forecast::show_forecast(cli, args),
        Command::Replenish(args) => planning::replenish(cli, args),
        Command::Prices(args) => planning::prices(cli, args),
        Command::Search(args) => search::search(cli, args),
        Command::Ask(args) => search::ask(cli, args),
        Command::Sentiment(args) => sentiment::sentiment(cli, args),
        Command::Risk(args) => risk::risk(cli, args),
        Command::Serve(args) => serve::serve(cli, args),
        Command::Keys { keys } => serve::keys(cli, keys),
        Command::Erase(args) => serve::erase(cli, args),
        Command::Scheduler(args) => cluster::scheduler(args),
        Command::Executor(args) => cluster::executor(args),
        Command::Bench { bench } => bench::bench(cli, bench),
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

fn chrono_now() -> String {
    shopfuse_pipeline::now_rfc3339()
}
