//! Where a plan runs: in this process (DataFusion) or on a Ballista cluster. Both build the
//! same plans on a [`SessionContext`]; only the context differs, so a stage has one code path.

use std::fmt;
use std::sync::Arc;

use ballista::prelude::SessionContextExt;
use ballista_core::extension::SessionConfigExt;
use datafusion::execution::session_state::SessionStateBuilder;
use datafusion::logical_expr::ScalarUDF;
use datafusion::prelude::{SessionConfig, SessionContext};

use crate::error::ClusterError;

/// The default port of Ballista's scheduler.
pub const DEFAULT_SCHEDULER_PORT: u16 = 50050;

/// A Ballista scheduler's address, as `df://HOST:PORT` (the scheme Ballista's clients use).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SchedulerUrl {
    pub host: String,
    pub port: u16,
}

impl SchedulerUrl {
    /// Reads `df://HOST[:PORT]`; a bare `HOST[:PORT]` is accepted too.
    pub fn parse(text: &str) -> Result<Self, ClusterError> {
        let bad = |why: &str| ClusterError::SchedulerUrl {
            given: text.to_string(),
            why: why.to_string(),
        };
        let rest = text.strip_prefix("df://").unwrap_or(text);
        let rest = rest.trim_end_matches('/');
        if rest.is_empty() || rest.contains('/') || rest.contains("://") {
            return Err(bad("write it as df://HOST:PORT"));
        }
        let (host, port) = match rest.rsplit_once(':') {
            Some((host, port)) => {
                let port = port
                    .parse::<u16>()
                    .map_err(|_| bad("the port is not a number"))?;
                (host, port)
            }
            None => (rest, DEFAULT_SCHEDULER_PORT),
        };
        if host.is_empty() {
            return Err(bad("the host is missing"));
        }
        Ok(Self {
            host: host.to_string(),
            port,
        })
    }
}

impl fmt::Display for SchedulerUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "df://{}:{}", self.host, self.port)
    }
}

/// Where plans run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Engine {
    /// DataFusion in this process, over `partitions` partitions.
    InProcess { partitions: usize },
    /// A Ballista cluster; `partitions` is how many pieces a plan's input is cut into, so
    /// every executor slot gets work.
    Cluster {
        scheduler: SchedulerUrl,
        partitions: usize,
    },
}

impl Engine {
    /// In this process, one partition per core.
    pub fn in_process() -> Self {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        Engine::InProcess { partitions: cores }
    }

    /// On the cluster behind `scheduler`, with inputs cut into `partitions` pieces.
    pub fn cluster(scheduler: SchedulerUrl, partitions: usize) -> Self {
        Engine::Cluster {
            scheduler,
            partitions: partitions.max(1),
        }
    }

    pub fn partitions(&self) -> usize {
        match self {
            Engine::InProcess { partitions } | Engine::Cluster { partitions, .. } => *partitions,
        }
    }

    /// A context whose plans run on this engine, with `functions` registered.
    pub async fn context(&self, functions: &[ScalarUDF]) -> Result<SessionContext, ClusterError> {
        let ctx = match self {
            Engine::InProcess { partitions } => SessionContext::new_with_config(
                SessionConfig::new().with_target_partitions(*partitions),
            ),
            Engine::Cluster {
                scheduler,
                partitions,
            } => {
                let config = SessionConfig::new_with_ballista().with_target_partitions(*partitions);
                let state = SessionStateBuilder::new()
                    .with_default_features()
                    .with_config(config)
                    .build();
                SessionContext::remote_with_state(&scheduler.to_string(), state)
                    .await
                    .map_err(|source| ClusterError::Connect {
                        scheduler: scheduler.to_string(),
                        source,
                    })?
            }
        };
        // Registered after Ballista's upgrade of the state, which replaces the function list
        // with its defaults.
        for f in functions {
            ctx.register_udf(f.clone());
        }
        Ok(ctx)
    }
}

/// The functions every shopfuse process registers (client, scheduler, executors), by name.
pub fn shopfuse_functions(files: &crate::ModelFiles) -> Vec<ScalarUDF> {
    vec![crate::EncodeUse::new(files.clone()).udf()]
}

/// Shared functions as the `Arc`s DataFusion's registries hold.
pub(crate) fn arcs(functions: Vec<ScalarUDF>) -> Vec<Arc<ScalarUDF>> {
    functions.into_iter().map(Arc::new).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scheduler_urls_are_read_with_and_without_the_scheme() {
        let url = SchedulerUrl::parse("df://10.0.0.5:50055").unwrap();
        assert_eq!((url.host.as_str(), url.port), ("10.0.0.5", 50055));
        assert_eq!(url.to_string(), "df://10.0.0.5:50055");
        let url = SchedulerUrl::parse("localhost").unwrap();
        assert_eq!(url.port, DEFAULT_SCHEDULER_PORT);
        for bad in [
            "",
            "df://",
            "df://host:port",
            "http://host:1",
            "df://:5000",
            "df://a/b",
        ] {
            let err = SchedulerUrl::parse(bad).unwrap_err().to_string();
            assert!(
                err.contains("df://HOST:PORT") || err.contains(bad),
                "{bad}: {err}"
            );
        }
    }
}
