//! Product search and the customer-service assistant over the fused catalogue.
//!
//! A shopper types "华为 mate 50 紫色 256G" or "purple Mate 50"; both must find the one golden
//! product, whichever language its listings are in. Two rankings are fused:
//! - **lexical**: BM25 in tantivy over every offer title of a product, tokenised by
//!   [`tokenizer::ProductTokenizer`] (jieba for Chinese, stemming for English, model codes
//!   whole), typo-tolerant for Latin words the index does not know;
//! - **dense**: the cosine of the project's multilingual encoder vectors, which is what
//!   carries a query across languages;
//!
//! fused by reciprocal rank ([`query::fuse`]). Colour and capacity words become filters
//! ([`attributes`]), so an attribute query never ranks a wrong variant first.
//!
//! Vocabulary:
//! - **document**: one golden product as the index sees it ([`document::ProductDocument`]),
//!   one row of the `search_documents` table the `search` stage writes.
//! - **hit**: a ranked document with its best offer per platform and why it matched.
//! - **intent**: what a customer-service question asks for ([`assistant::Intent`]).
//! - **fact**: a table row or a policy section an answer is drawn from, cited by the answer.
//!
//! Modules, in the order data flows: `tokenizer`, `attributes`, `document` (the table),
//! `dense`, `index` (sync and search), `query` (requests, fusion, explanations),
//! `assistant` (intent, retrieval, grounded answers), `eval` (relevance and intent
//! accuracy), `bench`.

pub mod assistant;
pub mod attributes;
pub mod bench;
pub mod dense;
pub mod document;
pub mod eval;
pub mod index;
pub mod postings;
pub mod query;
pub mod tokenizer;

pub use document::{search_documents, ProductDocument};
pub use index::{SearchIndex, SyncReport};
pub use query::{Filters, FusionWeights, Mode, SearchHit, SearchRequest, SearchResults};

/// Where a project keeps its search index (derived from `search_documents`).
pub fn index_dir(project: &shopfuse_core::Project) -> std::path::PathBuf {
    project.state_dir().join("search")
}

/// The project's committed search index, first synced to the committed `search_documents`.
pub fn open_project(
    project: &shopfuse_core::Project,
) -> Result<(SearchIndex, SyncReport), SearchError> {
    let store = shopfuse_core::TableStore::open(project)?;
    let (_, batches) = store
        .read_table(search_documents::NAME)?
        .ok_or(SearchError::NoIndex)?;
    let docs = document::read_documents(&batches)?;
    let read = |t: &str, cols: &[&str]| store.read_columns(t, cols);
    let aliases = document::read_aliases(&read)?;
    SearchIndex::open(&index_dir(project), docs, aliases)
}

/// What can stop an index build, a search, an answer or an evaluation.
#[derive(Debug, thiserror::Error)]
pub enum SearchError {
    /// The project has no golden products yet.
    #[error("the project has no golden products: run `shopfuse run` first")]
    NoCatalogue,
    /// The project has no search index yet.
    #[error("the project has no search_documents table: run `shopfuse run` (the search stage builds it)")]
    NoIndex,
    /// A request is invalid: the message names the field and the fix.
    #[error("{0}")]
    Request(String),
    /// The `search_documents` table is not what this version writes.
    #[error("table search_documents: {0} (re-run `shopfuse run --only search --force`)")]
    Layout(String),
    /// Vectors do not fit together.
    #[error("vectors: {0}")]
    Vectors(String),
    /// The tantivy index failed.
    #[error("search index: {0}")]
    Index(String),
    #[error("search index")]
    Tantivy(#[from] tantivy::TantivyError),
    #[error("{path}: {source}")]
    Io {
        path: std::path::PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// A data file (evaluation set, policy, intent examples) has a line that does not parse.
    #[error("{path}, line {line}: {message}")]
    Parse {
        path: std::path::PathBuf,
        line: usize,
        message: String,
    },
    /// The encoder failed on a query or a title.
    #[error(transparent)]
    Encoder(#[from] shopfuse_core::encoder::EncoderError),
    /// A project table cannot be read or written.
    #[error(transparent)]
    Store(#[from] shopfuse_core::CoreError),
    #[error("arrow")]
    Arrow(#[from] arrow::error::ArrowError),
}

impl SearchError {
    pub(crate) fn io(path: &std::path::Path, source: std::io::Error) -> Self {
        SearchError::Io {
            path: path.to_path_buf(),
            source,
        }
    }
}
