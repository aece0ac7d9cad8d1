//! `shopfuse scheduler` and `shopfuse executor`: Ballista's processes with shopfuse's
//! functions registered (see `shopfuse-cluster`).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Result;
use clap::Args;
use shopfuse_cluster::{ExecutorOptions, ModelFiles, SchedulerOptions, SchedulerUrl};

#[derive(Args)]
pub struct SchedulerArgs {
    /// Address to listen on for clients (`run --cluster`) and executors.
    #[arg(long, default_value = "127.0.0.1:50050")]
    bind: SocketAddr,
    /// The host name executors and clients reach this scheduler by.
    #[arg(long, default_value = "localhost")]
    external_host: String,
    /// Seconds without a heartbeat before an executor is dropped and its tasks run elsewhere.
    #[arg(long, default_value_t = 30)]
    executor_timeout: u64,
}

#[derive(Args)]
pub struct ExecutorArgs {
    /// The scheduler, df://HOST:PORT.
    #[arg(long, value_parser = parse_scheduler)]
    scheduler: SchedulerUrl,
    /// Host to listen on.
    #[arg(long, default_value = "127.0.0.1")]
    bind_host: String,
    /// The host name the scheduler and other executors reach this one by (default: the bind
    /// host).
    #[arg(long)]
    external_host: Option<String>,
    /// Port for shuffle data (Arrow Flight).
    #[arg(long, default_value_t = 50051)]
    port: u16,
    /// Port on which the scheduler hands this executor tasks.
    #[arg(long, default_value_t = 50052)]
    grpc_port: u16,
    /// Tasks at once (default: every core).
    #[arg(long)]
    concurrent_tasks: Option<usize>,
    /// Directory for shuffle files (default: a temporary one).
    #[arg(long)]
    work_dir: Option<PathBuf>,
    /// Directory of the USE encoder's files (default: $SHOPFUSE_MODELS/usem3 or models/usem3),
    /// used when the plan does not name a published copy (a project whose tables are in a
    /// directory).
    #[arg(long)]
    models: Option<PathBuf>,
    /// Where models published on the project's object store are fetched to, once per copy
    /// (default: $SHOPFUSE_MODEL_CACHE, else ~/.cache/shopfuse/models).
    #[arg(long)]
    model_cache: Option<PathBuf>,
    /// Seconds between heartbeats to the scheduler.
    #[arg(long, default_value_t = 5)]
    heartbeat: u64,
}

/// Clap's reader for `df://HOST:PORT`.
pub fn parse_scheduler(text: &str) -> Result<SchedulerUrl, String> {
    SchedulerUrl::parse(text).map_err(|e| e.to_string())
}

/// Ballista's own log lines on stderr: `RUST_LOG` when set, else its scheduler's and
/// executor's information (executors joining and lost, jobs, tasks resubmitted).
fn init_logging() {
    let default = "warn,ballista_scheduler=info,ballista_executor=info";
    let env = env_logger::Env::default().default_filter_or(default);
    let _ = env_logger::Builder::from_env(env).try_init();
}

pub fn scheduler(args: &SchedulerArgs) -> Result<ExitCode> {
    init_logging();
    eprintln!(
        "Ballista scheduler with shopfuse's functions on df://{}",
        args.bind
    );
    shopfuse_cluster::run_scheduler(SchedulerOptions {
        bind: args.bind,
        external_host: args.external_host.clone(),
        executor_timeout_seconds: args.executor_timeout,
    })?;
    Ok(ExitCode::SUCCESS)
}

pub fn executor(args: &ExecutorArgs) -> Result<ExitCode> {
    init_logging();
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    eprintln!(
        "Ballista executor on {}:{} (tasks on {}), registering with {}",
        args.bind_host, args.port, args.grpc_port, args.scheduler
    );
    shopfuse_cluster::run_executor(ExecutorOptions {
        scheduler_host: args.scheduler.host.clone(),
        scheduler_port: args.scheduler.port,
        bind_host: args.bind_host.clone(),
        external_host: args.external_host.clone(),
        port: args.port,
        grpc_port: args.grpc_port,
        concurrent_tasks: args.concurrent_tasks.unwrap_or(cores),
        work_dir: args.work_dir.clone(),
        models: ModelFiles {
            usem3_dir: args.models.clone(),
            cache: args.model_cache.clone(),
        },
        heartbeat_seconds: args.heartbeat,
    })?;
    Ok(ExitCode::SUCCESS)
}
