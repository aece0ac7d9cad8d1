//! `shopfuse serve`: the fused catalogue and customer view over HTTP.
//!
//! Vocabulary:
//! - the **index** ([`ServeIndex`]) is everything the API answers from, built in memory from
//!   one committed version of the tables: golden products with their offers and field
//!   provenance, every platform listing and account mapped to its golden product or unified
//!   customer, the customers' profiles and identity evidence, their recommendations. A
//!   request never runs SQL; it looks up maps.
//! - the **state** ([`AppState`]) holds the current index behind one pointer. A watcher polls
//!   the store's manifest; when a pipeline run commits a new version it builds a new index
//!   from that version alone and swaps the pointer, so a request sees one version whole —
//!   never half-old answers — and the server is never restarted.
//! - an **API key** ([`keys`]) carries a [`Role`]: `viewer` (products and aggregates),
//!   `analyst` (per-customer data, pseudonymised as the tables hold it), `admin` (everything,
//!   and the write endpoints). Only a key's SHA-256 is stored. A request without a valid key
//!   is `401`, outside its role `403`.
//! - the **audit log** ([`audit`]) gets one line per read of per-customer data: key name,
//!   time, route, customer id. It is append-only and lives beside the manifest.
//!
//! Why axum on tokio and utoipa: the ecosystem's standard HTTP stack (hyper underneath), and
//! an OpenAPI document generated from the handlers' own types, so the document cannot drift
//! from what the server answers.
//!
//! Every response is counted in Prometheus metrics (`/api/v1/metrics`) by its declared route,
//! and each key has a request rate (`429` past it, with `Retry-After`).
//!
//! - **events** posted to the API go to a write-ahead [`event_log`] (durable before `202`)
//!   and into the [`live`] overlay, which moves that customer's recommendations at once; the
//!   next `shopfuse run` folds the log into the tables.
//! - **erasure** ([`erase`]) removes a customer from every table and the event log, and
//!   tombstones the accounts against re-ingest.
//!
//! - the **review queue** and **reports** (quality, quarantine, segment counts — noisy for
//!   viewers — and the stages' validation figures) are read from the committed tables.

pub mod api;
pub mod audit;
pub mod bench;
pub mod dashboard;
pub mod erase;
pub mod error;
pub mod event_log;
pub mod index;
pub mod keys;
pub mod limit;
pub mod live;
pub mod metrics;
pub mod state;

pub use api::{router, ApiDoc};
pub use erase::{erase_offline, Erasure};
pub use error::{ApiError, ServeError};
pub use index::ServeIndex;
pub use keys::{ApiKey, KeyStore, Role};
pub use state::{AppState, ServeOptions};

use std::net::SocketAddr;
use std::time::Duration;

use shopfuse_core::Project;

/// How often the server looks for a new committed version (and a changed key file).
pub const RELOAD_POLL: Duration = Duration::from_millis(500);

/// Runs the server on `addr` until Ctrl-C. Builds the index first; fails when the project has
/// no committed tables yet (run `shopfuse run` first) or the address is taken. `on_ready`
/// gets the bound address (port 0 picks a free one) and the index being served.
pub async fn serve(
    project: &Project,
    addr: SocketAddr,
    options: &ServeOptions,
    on_ready: impl FnOnce(SocketAddr, &ServeIndex),
) -> Result<(), ServeError> {
    let state = AppState::with_options(project, options)?;
    let _pid = erase::ServerPid::write(project)?;
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|source| ServeError::Bind { addr, source })?;
    let bound = listener
        .local_addr()
        .map_err(|source| ServeError::Bind { addr, source })?;
    on_ready(bound, &state.index());
    let watcher = tokio::spawn(state::watch(state.clone(), RELOAD_POLL));
    let app = router(state);
    let served = axum::serve(listener, app)
        .with_graceful_shutdown(async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await;
    watcher.abort();
    served.map_err(|source| ServeError::Bind { addr, source })
}
