//! Readers turn a source file of any supported format into a header and rows of optional
//! strings, each with its row number. A row whose structure is broken (wrong field count,
//! invalid JSON) is kept as such, with the reason, so it can be quarantined rather than lost.

use std::collections::BTreeMap;

use arrow::array::{Array, StringArray};
use arrow::compute::cast;
use arrow::datatypes::DataType;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use shopfuse_core::config::FileFormat;

use crate::encoding::{decode, Decoded};

#[derive(Debug)]
pub struct SourceRecord {
    /// 1-based line in the file (CSV/TSV/JSONL), or 1-based record index (JSON array, Parquet).
    pub row: u64,
    pub cells: Result<Vec<Option<String>>, String>,
    /// The record as read, for the quarantine table.
    pub raw: String,
}

#[derive(Debug)]
pub struct SourceTable {
    pub header: Vec<String>,
    pub records: Vec<SourceRecord>,
    pub encoding: String,
}

pub fn read(
    bytes: &[u8],
    format: FileFormat,
    encoding: Option<&str>,
) -> Result<SourceTable, String> {
    match format {
        FileFormat::Parquet => read_parquet(bytes),
        _ => {
            let Decoded {
                text,
                encoding,
                had_errors,
            } = decode(bytes, encoding)?;
            let mut table = match format {
                FileFormat::Csv => read_delimited(&text, b',')?,
                FileFormat::Tsv => read_delimited(&text, b'\t')?,
                FileFormat::Json => read_json(&text)?,
                FileFormat::Jsonl => read_jsonl(&text),
                FileFormat::Parquet => unreachable!(),
            };
            table.encoding = encoding.to_string();
            if had_errors {
                for r in &mut table.records {
                    if r.raw.contains('\u{fffd}') && r.cells.is_ok() {
                        r.cells = Err(format!("bytes that are not valid {encoding}; re-export the file or declare its encoding"));
                    }
                }
            }
            Ok(table)
        }
    }
}

fn read_delimited(text: &str, delimiter: u8) -> Result<SourceTable, String> {
    let mut reader = csv::ReaderBuilder::new()
        .delimiter(delimiter)
        .flexible(true)
        .has_headers(true)
        .from_reader(text.as_bytes());
    let header: Vec<String> = reader
        .headers()
        .map_err(|e| format!("unreadable header: {e}"))?
        .iter()
        .map(|h| h.trim().to_string())
        .collect();
    if header.iter().all(|h| h.is_empty()) {
        return Err("the file has no header row".into());
    }
    let mut records = Vec::new();
    let mut record = csv::StringRecord::new();
    let mut lines = LineCounter::new(text);
    loop {
        let before = reader.position().byte() as usize;
        match reader.read_record(&mut record) {
            Ok(false) => break,
            Ok(true) => {
                let mut start = record
                    .position()
                    .map(|p| p.byte() as usize)
                    .unwrap_or(before);
                // The reported start may include the blank lines skipped before the record.
                while matches!(text.as_bytes().get(start), Some(b'\n' | b'\r')) {
                    start += 1;
                }
                let end = reader.position().byte() as usize;
                let raw = text
                    .get(start..end)
                    .unwrap_or("")
                    .trim_end_matches(['\r', '\n'])
                    .to_string();
                let row = lines.line_of(start);
                if record.len() == 1 && record[0].trim().is_empty() {
                    continue; // a blank line is not a row
                }
                let cells = if record.len() != header.len() {
                    Err(format!(
                        "has {} fields, the header has {}",
                        record.len(),
                        header.len()
                    ))
                } else {
                    Ok(record.iter().map(non_empty).collect())
                };
                records.push(SourceRecord { row, cells, raw });
            }
            Err(e) => {
                let end = reader.position().byte() as usize;
                let raw = text.get(before..end).unwrap_or("").to_string();
                let row = lines.line_of(before);
                records.push(SourceRecord {
                    row,
                    cells: Err(format!("unreadable row: {e}")),
                    raw,
                });
            }
        }
    }
    Ok(SourceTable {
        header,
        records,
        encoding: String::new(),
    })
}

/// Line numbers of byte offsets, counted forward from the last offset asked. The csv
/// crate's line counter skips blank lines; counting newlines ourselves makes the row number
/// in an error the line an editor shows.
struct LineCounter<'a> {
    text: &'a str,
    byte: usize,
    line: u64,
}

impl<'a> LineCounter<'a> {
    fn new(text: &'a str) -> Self {
        Self {
            text,
            byte: 0,
            line: 1,
        }
    }

    /// The 1-based line of `byte`; offsets must not decrease between calls.
    fn line_of(&mut self, byte: usize) -> u64 {
        let byte = byte.min(self.text.len());
        self.line += self.text.as_bytes()[self.byte..byte]
            .iter()
            .filter(|b| **b == b'\n')
            .count() as u64;
        self.byte = byte;
        self.line
    }
}

fn non_empty(s: &str) -> Option<String> {
    let t = s.trim();
    (!t.is_empty()).then(|| t.to_string())
}

fn json_cell(v: &serde_json::Value) -> Option<String> {
    match v {
        serde_json::Value::Null => None,
        serde_json::Value::String(s) => non_empty(s),
        serde_json::Value::Number(n) => Some(n.to_string()),
        serde_json::Value::Bool(b) => Some(b.to_string()),
        other => Some(other.to_string()),
    }
}

/// Lays JSON objects out on the union of their keys, in first-seen order.
/// (row, the object or why it could not be parsed, the raw text).
type ParsedObject = (
    u64,
    Result<serde_json::Map<String, serde_json::Value>, String>,
    String,
);

fn objects_to_table(objects: Vec<ParsedObject>) -> SourceTable {
    let mut header: Vec<String> = Vec::new();
    let mut index: BTreeMap<String, usize> = BTreeMap::new();
    for (_, obj, _) in &objects {
        if let Ok(obj) = obj {
            for k in obj.keys() {
                if !index.contains_key(k) {
                    index.insert(k.clone(), header.len());
                    header.push(k.clone());
                }
            }
        }
    }
    let records = objects
        .into_iter()
        .map(|(row, obj, raw)| {
            let cells = obj.map(|obj| {
                let mut cells = vec![None; header.len()];
                for (k, v) in &obj {
                    cells[index[k]] = json_cell(v);
                }
                cells
            });
            SourceRecord { row, cells, raw }
        })
        .collect();
    SourceTable {
        header,
        records,
        encoding: String::new(),
    }
}

fn read_jsonl(text: &str) -> SourceTable {
    let objects = text
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
        .map(|(i, line)| {
            let obj = match serde_json::from_str::<serde_json::Value>(line) {
                Ok(serde_json::Value::Object(m)) => Ok(m),
                Ok(_) => Err("is JSON but not an object".to_string()),
                Err(e) => Err(format!("invalid JSON: {e}")),
            };
            (i as u64 + 1, obj, line.to_string())
        })
        .collect();
    objects_to_table(objects)
}

fn read_json(text: &str) -> Result<SourceTable, String> {
    let value: serde_json::Value =
        serde_json::from_str(text).map_err(|e| format!("invalid JSON: {e}"))?;
    let items = match value {
        serde_json::Value::Array(items) => items,
        serde_json::Value::Object(mut m) => {
            // Exports often wrap the rows: {"data": [...]} or {"items": [...]}.
            let key = m.iter().find(|(_, v)| v.is_array()).map(|(k, _)| k.clone());
            match key.and_then(|k| m.remove(&k)) {
                Some(serde_json::Value::Array(items)) => items,
                _ => {
                    return Err(
                        "a JSON file must hold an array of objects (or an object wrapping one)"
                            .into(),
                    )
                }
            }
        }
        _ => return Err("a JSON file must hold an array of objects".into()),
    };
    let objects = items
        .into_iter()
        .enumerate()
        .map(|(i, v)| {
            let raw = v.to_string();
            let obj = match v {
                serde_json::Value::Object(m) => Ok(m),
                _ => Err("array element is not an object".to_string()),
            };
            (i as u64 + 1, obj, raw)
        })
        .collect();
    Ok(objects_to_table(objects))
}

fn read_parquet(bytes: &[u8]) -> Result<SourceTable, String> {
    let data = bytes::Bytes::copy_from_slice(bytes);
    let reader = ParquetRecordBatchReaderBuilder::try_new(data)
        .and_then(|b| b.build())
        .map_err(|e| format!("unreadable Parquet: {e}"))?;
    let mut header: Vec<String> = Vec::new();
    let mut records = Vec::new();
    for batch in reader {
        let batch = batch.map_err(|e| format!("unreadable Parquet: {e}"))?;
        if header.is_empty() {
            header = batch
                .schema()
                .fields()
                .iter()
                .map(|f| f.name().clone())
                .collect();
        }
        let columns: Vec<StringArray> = batch
            .columns()
            .iter()
            .map(|c| {
                let s = cast(c, &DataType::Utf8)
                    .map_err(|e| format!("column cannot be read as text: {e}"))?;
                Ok(s.as_any()
                    .downcast_ref::<StringArray>()
                    .expect("cast to Utf8")
                    .clone())
            })
            .collect::<Result<_, String>>()?;
        for i in 0..batch.num_rows() {
            let cells: Vec<Option<String>> = columns
                .iter()
                .map(|c| {
                    if c.is_null(i) {
                        None
                    } else {
                        non_empty(c.value(i))
                    }
                })
                .collect();
            let raw = cells
                .iter()
                .map(|c| c.as_deref().unwrap_or(""))
                .collect::<Vec<_>>()
                .join("\t");
            records.push(SourceRecord {
                row: records.len() as u64 + 1,
                cells: Ok(cells),
                raw,
            });
        }
    }
    Ok(SourceTable {
        header,
        records,
        encoding: "parquet".into(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_rows_keep_line_numbers_and_flag_wrong_field_counts() {
        let t = read(b"a,b,c\n1,2,3\n\n4,5\n\"x,y\",2,3\n", FileFormat::Csv, None).unwrap();
        assert_eq!(t.header, ["a", "b", "c"]);
        assert_eq!(t.records.len(), 3);
        assert_eq!(t.records[0].row, 2);
        assert_eq!(t.records[1].row, 4);
        assert!(t.records[1]
            .cells
            .as_ref()
            .unwrap_err()
            .contains("has 2 fields"));
        assert_eq!(t.records[1].raw, "4,5");
        assert_eq!(
            t.records[2].cells.as_ref().unwrap()[0].as_deref(),
            Some("x,y")
        );
    }

    #[test]
    fn jsonl_keeps_bad_lines() {
        let t = read(
            b"{\"a\":1,\"b\":\"x\"}\n{oops\n{\"b\":null,\"c\":[1]}\n",
            FileFormat::Jsonl,
            None,
        )
        .unwrap();
        assert_eq!(t.header, ["a", "b", "c"]);
        assert_eq!(
            t.records[0].cells.as_ref().unwrap(),
            &vec![Some("1".into()), Some("x".into()), None]
        );
        assert!(t.records[1]
            .cells
            .as_ref()
            .unwrap_err()
            .contains("invalid JSON"));
        assert_eq!(t.records[2].row, 3);
        assert_eq!(
            t.records[2].cells.as_ref().unwrap()[2].as_deref(),
            Some("[1]")
        );
    }

    #[test]
    fn json_array_wrapped_in_object() {
        let t = read(br#"{"data":[{"a":"1"},{"a":"2"}]}"#, FileFormat::Json, None).unwrap();
        assert_eq!(t.records.len(), 2);
        assert_eq!(t.records[1].row, 2);
    }
}
