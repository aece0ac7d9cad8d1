//! Readers turn a source file of any supported format into a header and rows of optional
//! strings, each with its row number. A row whose structure is broken (wrong field count,
//! invalid JSON) is kept as such, with the reason, so it can be quarantined rather than lost.

use std::borrow::Cow;
use std::collections::HashMap;

use arrow::array::{Array, RecordBatchReader, StringArray};
use arrow::compute::cast;
use arrow::datatypes::DataType;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use rayon::prelude::*;
use shopfuse_core::config::FileFormat;

use crate::encoding::{decode, Decoded};
use crate::json_fields::{text_cell, JsonRecord};

#[derive(Debug)]
pub struct SourceRecord {
    /// 1-based line in the file (CSV/TSV/JSONL), or 1-based record index (JSON array, Parquet).
    pub row: u64,
    /// The row's cells, one per header column; or why its structure is broken.
    pub cells: Result<Vec<Option<String>>, MalformedRow>,
}

/// A row whose structure is broken (wrong field count, invalid JSON, bytes not valid in the
/// file's encoding): why, and its text as read, for the quarantine table. Only such rows keep
/// their text; a well-formed row's text is its cells.
#[derive(Debug)]
pub struct MalformedRow {
    pub reason: String,
    pub raw: String,
}

impl MalformedRow {
    fn new(reason: impl Into<String>, raw: impl Into<String>) -> Self {
        Self {
            reason: reason.into(),
            raw: raw.into(),
        }
    }
}

/// Says which well-formed rows hold bytes the file's encoding could not decode (now U+FFFD):
/// such a row is quarantined rather than ingested with replacement characters.
#[derive(Clone, Copy)]
struct InvalidBytes<'a>(Option<&'a str>);

impl InvalidBytes<'_> {
    /// The row as malformed when its text `raw` holds a replacement character.
    fn malformed(self, raw: &str) -> Option<MalformedRow> {
        let message = self.0?;
        raw.contains('\u{fffd}')
            .then(|| MalformedRow::new(message, raw))
    }
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
            let message = format!(
                "bytes that are not valid {encoding}; re-export the file or declare its encoding"
            );
            let invalid = InvalidBytes(had_errors.then_some(message.as_str()));
            let mut table = match format {
                FileFormat::Csv => read_delimited(&text, b',', invalid)?,
                FileFormat::Tsv => read_delimited(&text, b'\t', invalid)?,
                FileFormat::Json => read_json(&text, invalid)?,
                FileFormat::Jsonl => read_jsonl(&text, invalid),
                FileFormat::Parquet => unreachable!(),
            };
            table.encoding = encoding.to_string();
            Ok(table)
        }
    }
}

fn read_delimited(text: &str, delimiter: u8, invalid: InvalidBytes) -> Result<SourceTable, String> {
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
                    .trim_end_matches(['\r', '\n']);
                let row = lines.line_of(start);
                if record.len() == 1 && record[0].trim().is_empty() {
                    continue; // a blank line is not a row
                }
                let cells = if record.len() != header.len() {
                    Err(MalformedRow::new(
                        format!(
                            "has {} fields, the header has {}",
                            record.len(),
                            header.len()
                        ),
                        raw,
                    ))
                } else {
                    match invalid.malformed(raw) {
                        Some(malformed) => Err(malformed),
                        None => Ok(record.iter().map(text_cell).collect()),
                    }
                };
                records.push(SourceRecord { row, cells });
            }
            Err(e) => {
                let end = reader.position().byte() as usize;
                let raw = text.get(before..end).unwrap_or("");
                let row = lines.line_of(before);
                records.push(SourceRecord {
                    row,
                    cells: Err(MalformedRow::new(format!("unreadable row: {e}"), raw)),
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

fn json_cell(v: &serde_json::Value) -> Option<String> {
    match v {
        serde_json::Value::Null => None,
        serde_json::Value::String(s) => text_cell(s),
        serde_json::Value::Number(n) => Some(n.to_string()),
        serde_json::Value::Bool(b) => Some(b.to_string()),
        other => Some(other.to_string()),
    }
}

/// A JSON object's fields in byte order of their keys.
type JsonFieldCells<'a> = Vec<(Cow<'a, str>, Option<String>)>;

/// One JSON record as parsed, before it is laid out on the file's header.
struct ParsedObject<'a> {
    row: u64,
    fields: Result<JsonFieldCells<'a>, MalformedRow>,
    /// Set when the record holds bytes the encoding could not decode: the record is
    /// quarantined, though its keys still count towards the header.
    invalid: Option<MalformedRow>,
}

/// Lays JSON objects out on the union of their keys, in first-seen order.
fn objects_to_table(objects: Vec<ParsedObject>) -> SourceTable {
    let mut header: Vec<String> = Vec::new();
    let mut index: HashMap<String, usize> = HashMap::new();
    let mut previous_keys: Option<&JsonFieldCells> = None;
    for fields in objects.iter().filter_map(|o| o.fields.as_ref().ok()) {
        // Most exports write every record with the same keys: nothing new to look up.
        let same_keys = previous_keys.is_some_and(|p| {
            p.len() == fields.len() && p.iter().zip(fields).all(|(a, b)| a.0 == b.0)
        });
        if !same_keys {
            for (key, _) in fields {
                if !index.contains_key(key.as_ref()) {
                    index.insert(key.to_string(), header.len());
                    header.push(key.to_string());
                }
            }
        }
        previous_keys = Some(fields);
    }
    let records = objects
        .into_par_iter()
        .map(|object| {
            let cells = match (object.fields, object.invalid) {
                (Err(malformed), _) | (Ok(_), Some(malformed)) => Err(malformed),
                (Ok(fields), None) => {
                    let mut cells = vec![None; header.len()];
                    for (key, cell) in fields {
                        cells[index[key.as_ref()]] = cell;
                    }
                    Ok(cells)
                }
            };
            SourceRecord {
                row: object.row,
                cells,
            }
        })
        .collect();
    SourceTable {
        header,
        records,
        encoding: String::new(),
    }
}

fn read_jsonl(text: &str, invalid: InvalidBytes) -> SourceTable {
    // Lines parse independently: in parallel, in file order.
    let lines: Vec<(usize, &str)> = text
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
        .collect();
    let objects = lines
        .into_par_iter()
        .map(|(i, line)| {
            let fields = match JsonRecord::parse(line) {
                Ok(JsonRecord::Object(fields)) => Ok(fields),
                Ok(JsonRecord::NotObject) => {
                    Err(MalformedRow::new("is JSON but not an object", line))
                }
                Err(e) => Err(MalformedRow::new(format!("invalid JSON: {e}"), line)),
            };
            ParsedObject {
                row: i as u64 + 1,
                fields,
                invalid: invalid.malformed(line),
            }
        })
        .collect();
    objects_to_table(objects)
}

fn read_json(text: &str, invalid: InvalidBytes) -> Result<SourceTable, String> {
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
            let invalid = invalid.0.and_then(|_| invalid.malformed(&v.to_string()));
            let fields = match v {
                serde_json::Value::Object(m) => Ok(m
                    .into_iter()
                    .map(|(k, v)| (Cow::Owned(k), json_cell(&v)))
                    .collect()),
                v => Err(MalformedRow::new(
                    "array element is not an object",
                    v.to_string(),
                )),
            };
            ParsedObject {
                row: i as u64 + 1,
                fields,
                invalid,
            }
        })
        .collect();
    Ok(objects_to_table(objects))
}

fn read_parquet(bytes: &[u8]) -> Result<SourceTable, String> {
    let data = bytes::Bytes::copy_from_slice(bytes);
    let reader = ParquetRecordBatchReaderBuilder::try_new(data)
        .and_then(|b| b.build())
        .map_err(|e| format!("unreadable Parquet: {e}"))?;
    // From the file's schema, not the first batch: a file with no rows has no batch, and
    // its columns still have to match the source's mapping.
    let header: Vec<String> = reader
        .schema()
        .fields()
        .iter()
        .map(|f| f.name().clone())
        .collect();
    let mut records = Vec::new();
    for batch in reader {
        let batch = batch.map_err(|e| format!("unreadable Parquet: {e}"))?;
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
                        text_cell(c.value(i))
                    }
                })
                .collect();
            records.push(SourceRecord {
                row: records.len() as u64 + 1,
                cells: Ok(cells),
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
    use proptest::prelude::*;

    #[test]
    fn a_parquet_file_without_rows_still_has_its_header() {
        use arrow::datatypes::{Field, Schema};
        let schema = std::sync::Arc::new(Schema::new(vec![
            Field::new("review_id", DataType::Utf8, true),
            Field::new("rating", DataType::Float64, true),
        ]));
        let mut bytes = Vec::new();
        let writer = parquet::arrow::ArrowWriter::try_new(&mut bytes, schema, None).unwrap();
        writer.close().unwrap();
        let t = read(&bytes, FileFormat::Parquet, None).unwrap();
        assert_eq!(t.header, ["review_id", "rating"]);
        assert!(t.records.is_empty());
    }

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
            .reason
            .contains("has 2 fields"));
        assert_eq!(t.records[1].cells.as_ref().unwrap_err().raw, "4,5");
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
            .reason
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

    /// The JSON Lines reader as it was, on `serde_json::Value`: the definition the streaming
    /// reader must equal.
    /// A header, and each row's number and cells or why it is malformed.
    type ReferenceTable = (Vec<String>, Vec<(u64, Result<Vec<Option<String>>, String>)>);

    fn reference_jsonl(text: &str) -> ReferenceTable {
        let mut header: Vec<String> = Vec::new();
        let mut parsed = Vec::new();
        for (i, line) in text
            .lines()
            .enumerate()
            .filter(|(_, l)| !l.trim().is_empty())
        {
            let obj = match serde_json::from_str::<serde_json::Value>(line) {
                Ok(serde_json::Value::Object(m)) => Ok(m),
                Ok(_) => Err("is JSON but not an object".to_string()),
                Err(e) => Err(format!("invalid JSON: {e}")),
            };
            if let Ok(m) = &obj {
                for k in m.keys() {
                    if !header.contains(k) {
                        header.push(k.clone());
                    }
                }
            }
            parsed.push((i as u64 + 1, obj));
        }
        let rows = parsed
            .into_iter()
            .map(|(row, obj)| {
                let cells = obj.map(|m| {
                    let mut cells = vec![None; header.len()];
                    for (k, v) in &m {
                        cells[header.iter().position(|h| h == k).unwrap()] = json_cell(v);
                    }
                    cells
                });
                (row, cells)
            })
            .collect();
        (header, rows)
    }

    fn json_value() -> impl Strategy<Value = String> {
        let leaf = prop_oneof![
            Just("null".to_string()),
            Just("true".to_string()),
            Just("false".to_string()),
            any::<i64>().prop_map(|n| n.to_string()),
            any::<u64>().prop_map(|n| n.to_string()),
            (-1e6f64..1e6).prop_map(|x| format!("{x}")),
            Just("1e400".to_string()),
            Just("2.50".to_string()),
            "[ a-z\\\\\"é手机]{0,8}".prop_map(|s| format!("\"{s}\"")),
            Just("\"\\u00e9 x \"".to_string()),
        ];
        leaf.prop_recursive(2, 8, 3, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..3)
                    .prop_map(|v| format!("[{}]", v.join(","))),
                prop::collection::vec(("[ab]", inner), 0..3).prop_map(|v| {
                    let fields: Vec<String> =
                        v.into_iter().map(|(k, x)| format!("\"{k}\":{x}")).collect();
                    format!("{{{}}}", fields.join(","))
                }),
            ]
        })
    }

    fn json_line() -> impl Strategy<Value = String> {
        let key = prop_oneof![
            Just("pin".to_string()),
            Just("skuId".to_string()),
            Just("time".to_string()),
            Just("a\\u0062".to_string()),
            Just("ab".to_string()),
            Just("价格".to_string()),
        ];
        prop_oneof![
            8 => prop::collection::vec((key, json_value()), 0..6).prop_map(|fields| {
                let fields: Vec<String> =
                    fields.into_iter().map(|(k, v)| format!("\"{k}\": {v}")).collect();
                format!("{{{}}}", fields.join(", "))
            }),
            1 => json_value(),
            1 => "[{}\\[\\]:,\"a-z0-9 ]{0,12}",
            1 => Just(String::new()),
        ]
    }

    proptest! {
        #[test]
        fn jsonl_cells_equal_the_serde_json_value_reading(
            lines in prop::collection::vec(json_line(), 0..12)
        ) {
            let text = lines.join("\n");
            let table = read_jsonl(&text, InvalidBytes(None));
            let (header, rows) = reference_jsonl(&text);
            prop_assert_eq!(&table.header, &header);
            prop_assert_eq!(table.records.len(), rows.len());
            for (record, (row, cells)) in table.records.iter().zip(&rows) {
                prop_assert_eq!(record.row, *row);
                let got = record.cells.as_ref().map_err(|m| m.reason.clone());
                prop_assert_eq!(got, cells.as_ref().map_err(String::clone), "{}", text);
            }
        }
    }
}
