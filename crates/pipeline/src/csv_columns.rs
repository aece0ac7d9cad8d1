//! Reading named columns of a CSV file with a header: the generator's ground truths and a
//! peer's output, for the evaluation commands and the benches.

use std::path::Path;

use crate::PipelineError;

/// One row: the cells of the required columns, and of the optional one when the file has it.
pub type CsvRow<const N: usize> = ([String; N], Option<String>);

/// Per row, the cells of the `required` columns and of the `optional` one (when the file has
/// it). Errors name the file, the missing column (with `need`, what the file must hold) and
/// the line.
pub fn read_csv_columns<const N: usize>(
    path: &Path,
    required: [&str; N],
    optional: &str,
    need: &str,
) -> Result<Vec<CsvRow<N>>, PipelineError> {
    let err = |message: String, source: Option<csv::Error>| PipelineError::Csv {
        path: path.to_path_buf(),
        message,
        source,
    };
    let mut reader =
        csv::Reader::from_path(path).map_err(|e| err("cannot read it".into(), Some(e)))?;
    let headers = reader
        .headers()
        .map_err(|e| err("unreadable header".into(), Some(e)))?
        .clone();
    let mut cols = [0; N];
    for (c, name) in cols.iter_mut().zip(required) {
        *c = headers
            .iter()
            .position(|h| h == name)
            .ok_or_else(|| err(format!("no `{name}` column ({need})"), None))?;
    }
    let optional_col = headers.iter().position(|h| h == optional);
    let mut rows = Vec::new();
    for (k, record) in reader.records().enumerate() {
        let record = record.map_err(|e| err(format!("line {}: malformed row", k + 2), Some(e)))?;
        let cell = |i: usize| record.get(i).unwrap_or_default().to_string();
        rows.push((cols.map(cell), optional_col.map(cell)));
    }
    Ok(rows)
}
