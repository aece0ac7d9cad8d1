//! shopfuse on Apache Ballista, DataFusion's distributed engine.
//!
//! Vocabulary:
//! - an **engine** ([`Engine`]) is where a plan runs: DataFusion in this process, or a
//!   Ballista cluster reached through its scheduler (`df://HOST:PORT`);
//! - a **shopfuse function** is one of our scalar functions (so far
//!   [`ENCODE_USE`](encode_udf::ENCODE_USE), the text encoder) registered by name in every
//!   process — the client that plans, the scheduler that splits the plan into stages, and the
//!   executors that run the tasks — because Ballista ships a function as its name only;
//! - a **plan encoder** ([`PlanEncoder`]) is the [`Encoder`](shopfuse_core::encoder::Encoder)
//!   whose `encode` is such a plan, which is how the stages' heaviest step runs on a cluster
//!   without the stages changing.
//!
//! Design decisions:
//! - The scheduler and executor are Ballista's own processes ([`run_scheduler`],
//!   [`run_executor`]) with our functions added to their registries; scheduling, shuffles and
//!   task retry on a lost executor are Ballista's.
//! - Inputs reach executors as Parquet files beside the project's tables ([`Staging`]): in
//!   the bucket when the tables are on an object store (each process opens it with its own
//!   `AWS_*` variables, [`EnvObjectStores`]), else under the project directory, which the
//!   machines must then share; results come back to the client over Arrow Flight.
//! - Models load lazily in each executor, the first time a task calls the function; the
//!   scheduler never loads one. With the tables on an object store the client publishes the
//!   encoder's files there and the plan names that copy, which each executor fetches once into
//!   its model cache ([`model_share`]): the machines need no model directory, and every one
//!   encodes with the client's exact weights. A project in a directory leaves each executor
//!   its own (`--models DIR` or `$SHOPFUSE_MODELS`).

pub mod encode_udf;
pub mod engine;
pub mod error;
pub mod model_share;
pub mod object_stores;
pub mod plan_encoder;
pub mod processes;
pub mod staging;

pub use encode_udf::{EncodeUse, ModelFiles};
pub use engine::{shopfuse_functions, Engine, SchedulerUrl};
pub use error::ClusterError;
pub use object_stores::EnvObjectStores;
pub use plan_encoder::PlanEncoder;
pub use processes::{run_executor, run_scheduler, ExecutorOptions, SchedulerOptions};
pub use staging::Staging;
