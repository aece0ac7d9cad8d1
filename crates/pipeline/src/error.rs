use thiserror::Error;

/// What can stop a pipeline run or a bench. Each variant keeps its cause as `source`, so the
/// CLI prints the whole chain (stage → file → reason).
#[derive(Debug, Error)]
pub enum PipelineError {
    /// The table store (manifest, lock, Parquet files) failed.
    #[error(transparent)]
    Core(#[from] shopfuse_core::CoreError),
    /// Ingest could not read its sources (a bad glob); bad rows are quarantined, not errors.
    #[error("ingest failed")]
    Ingest(#[from] shopfuse_ingest::IngestError),
    /// Clean failed (a bad missing-value policy or outlier setting in shopfuse.toml).
    #[error("clean failed")]
    Clean(#[from] shopfuse_clean::CleanError),
    /// The text encoder's files could not be found or loaded.
    #[error("cannot load the text encoder (run scripts/fetch-models.sh, or set SHOPFUSE_MODELS)")]
    Encoder(#[from] shopfuse_core::EncoderError),
    /// The project's embedding cache could not be read, or a text could not be encoded.
    #[error("embedding cache")]
    Cache(#[from] shopfuse_embed::cache::CacheError),
    /// Product resolution failed.
    #[error("product resolution failed")]
    Resolve(#[from] shopfuse_resolve::ResolveError),
    /// Customer identity or the profiles built on it failed.
    #[error("customer identity failed")]
    Identity(#[from] shopfuse_identity::IdentityError),
    /// Training recommendations failed.
    #[error("training recommendations failed")]
    Learn(#[from] shopfuse_learn::LearnError),
    /// Fitting or scoring the propensity models failed.
    #[error("propensity failed")]
    Propensity(#[from] shopfuse_propensity::PropensityError),
    /// Forecasting sales failed.
    #[error("forecasting failed")]
    Forecast(#[from] shopfuse_forecast::ForecastError),
    /// Building the search index, a search or an answer failed.
    #[error("search failed")]
    Search(#[from] shopfuse_search::SearchError),
    /// Training the review classifier, classifying reviews or raising alerts failed.
    #[error("review sentiment failed")]
    Sentiment(#[from] shopfuse_sentiment::SentimentError),
    /// Finding rings or scoring orders and reviews failed.
    #[error("risk scoring failed")]
    Risk(#[from] shopfuse_risk::RiskError),
    /// A query over the committed tables failed.
    #[error("query failed")]
    Query(#[from] shopfuse_query::QueryError),
    /// An audience cannot be drawn (the message says why and what to run).
    #[error("{0}")]
    Audience(String),
    /// `--only` or `--from` named a stage the pipeline does not have.
    #[error("no stage named {name:?}; the stages are {known} (see `shopfuse stages`)")]
    UnknownStage { name: String, known: String },
    /// A CSV file (a ground truth, a peer's output) cannot be read or lacks a column.
    #[error("{path}: {message}")]
    Csv {
        path: std::path::PathBuf,
        message: String,
        #[source]
        source: Option<csv::Error>,
    },
    /// A bench's child process or generated data set failed.
    #[error("bench: {what}")]
    Bench {
        what: String,
        #[source]
        source: Option<Box<dyn std::error::Error + Send + Sync>>,
    },
}
