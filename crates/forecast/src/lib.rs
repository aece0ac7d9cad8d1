//! Sales forecasting on the fused catalogue: one series per golden product and platform —
//! the 618 and Double 11 peaks of every platform in it — rolled up to product, category,
//! platform and total, forecast by the model a rolling-origin backtest chooses per series,
//! with P10/P50/P90 bands.
//!
//! Vocabulary:
//! - **step**: one day or one week of a series; **period**: the steps in its season (7 for
//!   daily data, 52 for weekly).
//! - **origin**: where a backtest cuts a series; the model sees only what lies before it.
//! - **local model**: fitted to one series ([`models::local_models`]); **global model**: one
//!   gradient-boosted ensemble trained on all series ([`models::boosted`]), the one that
//!   learns promotions from the whole catalogue.
//! - **band**: the P10–P90 range of a forecast, from the backtest's scaled errors
//!   ([`backtest::Bands`]).
//!
//! Modules, in the order data flows:
//! - `calendar`: the promotion windows of `[[forecast.promotions]]`.
//! - `models`: the [`models::Forecaster`] trait and every model.
//! - `backtest`: rolling-origin backtests, selection and bands.
//! - `metrics`: sMAPE, MASE, OWA and the weighted quantile loss.
//! - `sales`: a project's daily units per golden product × platform and their roll-ups.
//! - `reconcile`: coherent forecasts across the hierarchy (WLS / diagonal MinT).
//! - `project`: every series of a project forecast from one day.
//! - `replenishment`: safety stock, reorder point and order quantity from the forecast.
//! - `prices`: each product's price per platform over time, undercuts and sharp moves.
//! - `tables`: the stage's tables (`forecasts`, `forecast_backtests`, `replenishment`,
//!   `price_history`, `price_alerts`) and its run.
//! - `project_eval`: the rolling-origin evaluation on a project, per level and model.
//! - `price_eval`: price alerts against the generator's planted moves.
//! - `m4`: the M4 Weekly benchmark next to the published figures and statsforecast;
//!   `bench`: every model's series/s on simulated series, next to statsforecast's.

pub mod backtest;
pub mod bench;
pub mod calendar;
pub mod m4;
pub mod metrics;
pub mod models;
pub mod price_eval;
pub mod prices;
pub mod project;
pub mod project_eval;
pub mod reconcile;
pub mod replenishment;
pub mod sales;
pub mod tables;

pub use calendar::Promotions;
pub use models::{Forecaster, History};
pub use tables::{
    forecast_backtests, forecasts, price_alerts, price_history,
    replenishment as replenishment_table, run_forecast, ForecastSummary,
};

/// What can stop a forecast or an evaluation.
#[derive(Debug, thiserror::Error)]
pub enum ForecastError {
    /// There is nothing to fit on.
    #[error("{0}")]
    NoData(&'static str),
    /// A model could not fit or forecast a series.
    #[error("the {model} model: {message}")]
    Model {
        model: &'static str,
        message: String,
    },
    /// A `[forecast]` setting is invalid.
    #[error("shopfuse.toml {entry}: {message}")]
    Config { entry: String, message: String },
    /// A data file has a line that does not parse.
    #[error("{path}, line {line}: {message}")]
    Parse {
        path: std::path::PathBuf,
        line: usize,
        message: String,
    },
    /// The peer (statsforecast) could not be run or answered something unexpected.
    #[error("statsforecast peer: {0}")]
    Peer(String),
    /// A project table cannot be read or written.
    #[error("the project's tables: {0}")]
    Table(#[from] shopfuse_core::CoreError),
}
