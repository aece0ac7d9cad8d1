//! The cluster's processes: Ballista's own scheduler and executor, started with shopfuse's
//! functions in their registries. Nothing of Ballista's scheduling, shuffling or task retry is
//! rewritten here; these functions only fill in its configuration.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use ballista_core::config::TaskSchedulingPolicy;
use ballista_core::registry::BallistaFunctionRegistry;
use ballista_core::utils::default_session_builder;
use ballista_core::RuntimeProducer;
use ballista_executor::executor_process::{start_executor_process, ExecutorProcessConfig};
use ballista_scheduler::cluster::BallistaCluster;
use ballista_scheduler::config::SchedulerConfig;
use ballista_scheduler::scheduler_process::start_server;
use datafusion::execution::session_state::SessionStateBuilder;
use datafusion::execution::FunctionRegistry;

use crate::engine::{arcs, shopfuse_functions};
use crate::error::ClusterError;
use crate::object_stores::EnvObjectStores;
use crate::ModelFiles;

/// How to start a scheduler.
#[derive(Debug, Clone)]
pub struct SchedulerOptions {
    /// Address to listen on (gRPC for clients and executors).
    pub bind: SocketAddr,
    /// The host executors and clients reach it by.
    pub external_host: String,
    /// Seconds without a heartbeat after which an executor counts as lost and its tasks are
    /// run again elsewhere.
    pub executor_timeout_seconds: u64,
}

/// How to start an executor.
#[derive(Debug, Clone)]
pub struct ExecutorOptions {
    pub scheduler_host: String,
    pub scheduler_port: u16,
    /// Host to listen on; `port` serves shuffle data (Arrow Flight), `grpc_port` takes tasks.
    pub bind_host: String,
    pub external_host: Option<String>,
    pub port: u16,
    pub grpc_port: u16,
    /// Tasks run at once (default: the cores).
    pub concurrent_tasks: usize,
    /// Where shuffle files go (default: a temporary directory).
    pub work_dir: Option<PathBuf>,
    pub models: ModelFiles,
    /// Seconds between heartbeats to the scheduler.
    pub heartbeat_seconds: u64,
}

/// Runs Ballista's scheduler until the process is stopped.
pub fn run_scheduler(options: SchedulerOptions) -> Result<(), ClusterError> {
    runtime()?.block_on(async move {
        // The scheduler plans with the functions but never runs them, so it loads no model.
        let files = ModelFiles::default();
        let session_builder = Arc::new(move |config| {
            // Object stores from this process's environment: the scheduler lists the files of
            // a staging table in a bucket to plan its tasks.
            let state = default_session_builder(config)?;
            let mut state = SessionStateBuilder::new_from_existing(state)
                .with_runtime_env(EnvObjectStores::runtime_env(None)?)
                .build();
            for f in arcs(shopfuse_functions(&files)) {
                state.register_udf(f)?;
            }
            Ok(state)
        });
        let mut config = SchedulerConfig {
            bind_host: options.bind.ip().to_string(),
            bind_port: options.bind.port(),
            external_host: options.external_host.clone(),
            scheduling_policy: TaskSchedulingPolicy::PushStaged,
            executor_timeout_seconds: options.executor_timeout_seconds,
            no_executors_grace_period_seconds: options.executor_timeout_seconds,
            ..SchedulerConfig::default()
        }
        .with_override_session_builder(session_builder);
        config.expire_dead_executor_interval_seconds = config
            .expire_dead_executor_interval_seconds
            .min(options.executor_timeout_seconds);
        let cluster = BallistaCluster::new_from_config(&config)
            .await
            .map_err(ClusterError::ballista("starting the scheduler"))?;
        start_server(cluster, options.bind, Arc::new(config))
            .await
            .map_err(ClusterError::ballista("running the scheduler"))
    })
}

/// Runs a Ballista executor registered with the scheduler until the process is stopped.
pub fn run_executor(options: ExecutorOptions) -> Result<(), ClusterError> {
    let mut registry = BallistaFunctionRegistry::default();
    for f in arcs(shopfuse_functions(&options.models)) {
        registry.scalar_functions.insert(f.name().to_string(), f);
    }
    let config = ExecutorProcessConfig {
        bind_host: options.bind_host.clone(),
        external_host: options.external_host.clone(),
        port: options.port,
        grpc_port: options.grpc_port,
        scheduler_host: options.scheduler_host.clone(),
        scheduler_port: options.scheduler_port,
        vcores: options.concurrent_tasks,
        task_scheduling_policy: TaskSchedulingPolicy::PushStaged,
        work_dir: options.work_dir.as_ref().map(|d| d.display().to_string()),
        executor_heartbeat_interval_seconds: options.heartbeat_seconds,
        override_function_registry: Some(Arc::new(registry)),
        override_runtime_producer: Some(runtime_producer(options.work_dir.clone())),
        ..ExecutorProcessConfig::default()
    };
    runtime()?.block_on(async move {
        start_executor_process(Arc::new(config))
            .await
            .map_err(ClusterError::ballista("running the executor"))
    })
}

/// Ballista's runtime for each task, with object stores from this process's environment (an
/// executor reads staging tables in the project's bucket) and spills in the work directory.
fn runtime_producer(work_dir: Option<PathBuf>) -> RuntimeProducer {
    Arc::new(move |_config| {
        let dir = work_dir.as_ref().map(|d| d.display().to_string());
        EnvObjectStores::runtime_env(dir.as_deref())
    })
}

fn runtime() -> Result<tokio::runtime::Runtime, ClusterError> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        // Ballista's own binaries use 32 MB stacks: deep plans are planned recursively.
        .thread_stack_size(32 * 1024 * 1024)
        .build()
        .map_err(|source| ClusterError::Runtime { source })
}
