//! SQL over every committed table of a project, with DataFusion.
//!
//! Each table is registered as a Parquet listing over exactly the files of the committed
//! manifest, so a query never sees a half-written run. The same Parquet files are what a
//! distributed engine (Ballista, Spark) would read when a project outgrows one machine.

use std::sync::Arc;

use arrow::array::RecordBatch;
use arrow::datatypes::SchemaRef;
use datafusion::datasource::file_format::parquet::ParquetFormat;
use datafusion::datasource::listing::{
    ListingOptions, ListingTable, ListingTableConfig, ListingTableUrl,
};
use datafusion::prelude::{SessionConfig, SessionContext};
use shopfuse_core::{Project, TableStore};

/// What can stop a query.
#[derive(Debug, thiserror::Error)]
pub enum QueryError {
    /// The project's manifest or a table file could not be read.
    #[error(transparent)]
    Core(#[from] shopfuse_core::CoreError),
    /// DataFusion rejected or failed the query (the message names the table or column).
    #[error("{0}")]
    DataFusion(#[from] datafusion::error::DataFusionError),
    /// A result could not be formatted.
    #[error("cannot format the result")]
    Format(#[from] arrow::error::ArrowError),
    /// The peer reader was given a file of a format it does not read.
    #[error("the peer does not read .{0} files")]
    UnknownFormat(String),
    /// The query runtime's threads could not be started.
    #[error("cannot start the query runtime")]
    Runtime(#[source] std::io::Error),
    /// A read-only session was given something other than one query.
    #[error("only a single SELECT (or WITH … SELECT) is allowed here: {0}")]
    NotReadOnly(String),
    /// A filter expression is not one SQL boolean expression.
    #[error("not a single SQL condition ({0}); write it as you would after WHERE, e.g. \"p_buy_30d > 0.6 and segment = 'at risk'\"")]
    NotACondition(String),
    /// A read-only query ran past its time limit and was cancelled.
    #[error("the query ran past its {0:?} limit and was cancelled; narrow it or add a LIMIT")]
    Timeout(std::time::Duration),
}

impl QueryError {
    /// True when the query text is at fault (bad SQL, a missing table or column, not
    /// read-only, too slow), not the project's files or the machine.
    pub fn is_caller_error(&self) -> bool {
        matches!(
            self,
            QueryError::DataFusion(_)
                | QueryError::NotReadOnly(_)
                | QueryError::NotACondition(_)
                | QueryError::Timeout(_)
        )
    }
}

/// The answer of [`QueryEngine::read_only`]: at most the row limit, and whether more rows
/// were there.
pub struct LimitedResult {
    pub result: QueryResult,
    pub truncated: bool,
}

pub struct QueryResult {
    pub schema: SchemaRef,
    pub batches: Vec<RecordBatch>,
}

impl QueryResult {
    pub fn num_rows(&self) -> usize {
        self.batches.iter().map(|b| b.num_rows()).sum()
    }

    pub fn to_pretty(&self) -> Result<String, QueryError> {
        Ok(arrow::util::pretty::pretty_format_batches(&self.batches)?.to_string())
    }

    /// Rows as JSON objects, column name → value, for `--json`.
    pub fn to_json_rows(
        &self,
    ) -> Result<Vec<serde_json::Map<String, serde_json::Value>>, QueryError> {
        use arrow::util::display::{ArrayFormatter, FormatOptions};
        let mut out = Vec::with_capacity(self.num_rows());
        let opts = FormatOptions::default();
        for batch in &self.batches {
            let formatters: Vec<_> = batch
                .columns()
                .iter()
                .map(|c| ArrayFormatter::try_new(c.as_ref(), &opts))
                .collect::<Result<_, _>>()?;
            for row in 0..batch.num_rows() {
                let mut obj = serde_json::Map::new();
                for (ci, field) in batch.schema().fields().iter().enumerate() {
                    let col = batch.column(ci);
                    let v = if col.is_null(row) {
                        serde_json::Value::Null
                    } else {
                        let text = formatters[ci].value(row).to_string();
                        if field.data_type().is_numeric() {
                            serde_json::from_str(&text).unwrap_or(serde_json::Value::String(text))
                        } else if matches!(field.data_type(), arrow::datatypes::DataType::Boolean) {
                            serde_json::Value::Bool(text == "true")
                        } else {
                            serde_json::Value::String(text)
                        }
                    };
                    obj.insert(field.name().clone(), v);
                }
                out.push(obj);
            }
        }
        Ok(out)
    }
}

/// `text` as a SQL string literal (single quotes doubled), for values that reach a query
/// built from request input: a value can never end the literal.
pub fn sql_literal(text: &str) -> String {
    format!("'{}'", text.replace('\'', "''"))
}

/// Checks that `text` is exactly one SQL expression (what may follow `WHERE`), so that it
/// can be put inside a query without changing the query's shape: `x > 1) union select …`
/// is refused, not run.
pub fn check_condition(text: &str) -> Result<(), QueryError> {
    use datafusion::sql::sqlparser::dialect::GenericDialect;
    use datafusion::sql::sqlparser::parser::Parser;
    use datafusion::sql::sqlparser::tokenizer::Token;
    let dialect = GenericDialect {};
    let mut parser = Parser::new(&dialect)
        .try_with_sql(text)
        .map_err(|e| QueryError::NotACondition(e.to_string()))?;
    parser
        .parse_expr()
        .map_err(|e| QueryError::NotACondition(e.to_string()))?;
    match parser.peek_token().token {
        Token::EOF => Ok(()),
        other => Err(QueryError::NotACondition(format!(
            "unexpected {other} after the condition"
        ))),
    }
}

/// A SQL session over a project's committed tables.
pub struct QueryEngine {
    ctx: SessionContext,
    /// `Option` only so that `Drop` can shut it down without blocking (an engine may be
    /// dropped on an async runtime's thread, where a blocking shutdown panics).
    runtime: Option<tokio::runtime::Runtime>,
    tables: Vec<String>,
    version: u64,
}

impl Drop for QueryEngine {
    fn drop(&mut self) {
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }
}

impl QueryEngine {
    pub fn open(project: &Project) -> Result<Self, QueryError> {
        let store = TableStore::open(project)?;
        let manifest = store.manifest()?;
        store.check_files(&manifest)?;
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()
            .map_err(QueryError::Runtime)?;
        let config = SessionConfig::new().with_information_schema(true);
        let ctx = SessionContext::new_with_config(config);
        if let Some((url, objects)) = store.object_store() {
            ctx.register_object_store(&url, objects);
        }
        let mut tables = Vec::new();
        for (name, _) in manifest.tables.iter() {
            let files = store.table_files(&manifest, name);
            if files.is_empty() {
                continue;
            }
            let urls = files
                .iter()
                .map(|f| ListingTableUrl::parse(f.to_string_lossy()))
                .collect::<Result<Vec<_>, _>>()?;
            let options = ListingOptions::new(Arc::new(ParquetFormat::default()))
                .with_file_extension(".parquet");
            let state = ctx.state();
            let config = runtime.block_on(
                ListingTableConfig::new_with_multi_paths(urls)
                    .with_listing_options(options)
                    .infer_schema(&state),
            )?;
            ctx.register_table(name.as_str(), Arc::new(ListingTable::try_new(config)?))?;
            tables.push(name.clone());
        }
        Ok(Self {
            ctx,
            runtime: Some(runtime),
            tables,
            version: manifest.version,
        })
    }

    pub fn tables(&self) -> &[String] {
        &self.tables
    }

    /// The committed version the session reads.
    pub fn version(&self) -> u64 {
        self.version
    }

    fn runtime(&self) -> &tokio::runtime::Runtime {
        self.runtime.as_ref().expect("taken only by drop")
    }

    pub fn sql(&self, query: &str) -> Result<QueryResult, QueryError> {
        self.runtime().block_on(async {
            let df = self.ctx.sql(query).await?;
            let schema: SchemaRef = Arc::new(df.schema().as_arrow().clone());
            let batches = df.collect().await?;
            Ok(QueryResult { schema, batches })
        })
    }

    /// Runs `query` only if it is one read-only statement: DataFusion's planner refuses DDL
    /// (`CREATE`, `DROP`), DML (`INSERT`, `COPY … TO`) and statements (`SET`), and the
    /// session reads no file outside the registered tables (URL tables stay off). At most
    /// `max_rows` rows come back; past `timeout` the query is cancelled.
    pub fn read_only(
        &self,
        query: &str,
        max_rows: usize,
        timeout: std::time::Duration,
    ) -> Result<LimitedResult, QueryError> {
        use datafusion::execution::context::SQLOptions;
        let statements =
            datafusion::sql::parser::DFParser::parse_sql(query).map_err(QueryError::DataFusion)?;
        if statements.len() != 1 {
            return Err(QueryError::NotReadOnly(format!(
                "{} statements given",
                statements.len()
            )));
        }
        let options = SQLOptions::new()
            .with_allow_ddl(false)
            .with_allow_dml(false)
            .with_allow_statements(false);
        let run = async {
            let df = self
                .ctx
                .sql_with_options(query, options)
                .await
                .map_err(|e| match e {
                    datafusion::error::DataFusionError::Plan(m) if m.contains("not supported") => {
                        QueryError::NotReadOnly(m)
                    }
                    other => QueryError::DataFusion(other),
                })?;
            let schema: SchemaRef = Arc::new(df.schema().as_arrow().clone());
            let batches = df.limit(0, Some(max_rows + 1))?.collect().await?;
            Ok::<_, QueryError>(QueryResult { schema, batches })
        };
        let mut result = self
            .runtime()
            .block_on(async { tokio::time::timeout(timeout, run).await })
            .map_err(|_| QueryError::Timeout(timeout))??;
        let truncated = result.num_rows() > max_rows;
        if truncated {
            result.batches = truncate_rows(result.batches, max_rows);
        }
        Ok(LimitedResult { result, truncated })
    }

    /// Row count of every table, sorted by name.
    pub fn table_counts(&self) -> Result<Vec<(String, u64)>, QueryError> {
        let mut out = Vec::new();
        for t in &self.tables {
            let r = self.sql(&format!("SELECT count(*) AS n FROM \"{t}\""))?;
            let n = r
                .batches
                .iter()
                .filter(|b| b.num_rows() > 0)
                .find_map(|b| {
                    b.column(0)
                        .as_any()
                        .downcast_ref::<arrow::array::Int64Array>()
                        .map(|a| a.value(0) as u64)
                })
                .unwrap_or(0);
            out.push((t.clone(), n));
        }
        Ok(out)
    }
}

fn truncate_rows(batches: Vec<RecordBatch>, mut left: usize) -> Vec<RecordBatch> {
    let mut out = Vec::new();
    for b in batches {
        if left == 0 {
            break;
        }
        let take = b.num_rows().min(left);
        out.push(b.slice(0, take));
        left -= take;
    }
    out
}

/// DataFusion's own CSV / NDJSON / Parquet readers (schema inference, typed columns, every
/// row materialised): the peer that `shopfuse bench ingest` measures ingest against — the same
/// bytes through a mature engine's plain read path, without validation, mapping,
/// pseudonymisation or quarantine.
pub struct PeerReader {
    ctx: SessionContext,
    runtime: tokio::runtime::Runtime,
}

impl PeerReader {
    pub fn new() -> Result<Self, QueryError> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()
            .map_err(QueryError::Runtime)?;
        Ok(Self {
            ctx: SessionContext::new(),
            runtime,
        })
    }

    /// Rows read from one file; an error where the engine cannot read it (a malformed row is
    /// enough for its CSV and JSON readers to give up on the whole file).
    pub fn read(&self, file: &std::path::Path) -> Result<u64, QueryError> {
        use datafusion::prelude::{CsvReadOptions, JsonReadOptions, ParquetReadOptions};
        let path = file.to_string_lossy();
        let ext = file
            .extension()
            .and_then(|e| e.to_str())
            .unwrap_or_default();
        self.runtime.block_on(async {
            let df = match ext {
                "csv" => {
                    self.ctx
                        .read_csv(path.as_ref(), CsvReadOptions::new())
                        .await?
                }
                "tsv" => {
                    let options = CsvReadOptions::new()
                        .delimiter(b'\t')
                        .file_extension(".tsv");
                    self.ctx.read_csv(path.as_ref(), options).await?
                }
                "jsonl" => {
                    let options = JsonReadOptions::default().file_extension(".jsonl");
                    self.ctx.read_json(path.as_ref(), options).await?
                }
                "parquet" => {
                    self.ctx
                        .read_parquet(path.as_ref(), ParquetReadOptions::default())
                        .await?
                }
                other => return Err(QueryError::UnknownFormat(other.to_string())),
            };
            Ok(df
                .collect()
                .await?
                .iter()
                .map(|b| b.num_rows() as u64)
                .sum())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_condition_is_one_expression() {
        assert!(check_condition("p_buy_30d > 0.6 and segment = 'at risk'").is_ok());
        assert!(check_condition("orders between 1 and 3 or city like '上海%'").is_ok());
        for bad in [
            "",
            "x > 1) union select * from customers --",
            "x > 1; drop table t",
            "x >",
        ] {
            assert!(
                matches!(check_condition(bad), Err(QueryError::NotACondition(_))),
                "{bad:?} was accepted"
            );
        }
    }
}
