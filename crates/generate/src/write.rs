//! Writes records the way each platform exports them, and keeps the list of every malformed
//! row and outlier it planted (by file and row number) for `truth/`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow::array::{
    ArrayRef, Float64Builder, Int64Builder, RecordBatch, StringBuilder, TimestampMicrosecondBuilder,
};
use arrow::datatypes::{Field, Schema};
use parquet::arrow::ArrowWriter;
use shopfuse_core::schema::FieldType;
use shopfuse_core::EntityKind;
use shopfuse_ingest::preset::preset_header;

use crate::GenerateError;

/// Canonical field → text as the platform writes it; absent means empty.
pub type Rec = Vec<(&'static str, String)>;

#[derive(Debug, Clone)]
pub enum Line {
    Good(Rec),
    /// A row cut short by a broken export.
    Truncated(Rec),
    /// A planted malformed row, with the reason ingest must give.
    Bad(Box<Line>, &'static str, String),
}

impl Line {
    /// The record to write and whether the export cut it short; a planted bad row is written
    /// like the line it wraps.
    fn record(&self) -> (&Rec, bool) {
        match self {
            Line::Good(r) => (r, false),
            Line::Truncated(r) => (r, true),
            Line::Bad(inner, _, _) => inner.record(),
        }
    }
}

pub struct Malformed {
    pub file: String,
    pub row: usize,
    pub reason: &'static str,
    pub detail: String,
}

pub struct FileWriter {
    root: PathBuf,
    pub rows_per_file: BTreeMap<String, usize>,
    pub malformed: Vec<Malformed>,
    outliers: Vec<(String, String, String)>,
}

fn get<'r>(r: &'r Rec, field: &str) -> &'r str {
    r.iter()
        .find(|(k, _)| *k == field)
        .map(|(_, v)| v.as_str())
        .unwrap_or("")
}

impl FileWriter {
    pub fn new(root: &Path) -> Self {
        Self {
            root: root.to_path_buf(),
            rows_per_file: BTreeMap::new(),
            malformed: Vec::new(),
            outliers: Vec::new(),
        }
    }

    fn put(&self, rel: &str, bytes: &[u8]) -> Result<(), GenerateError> {
        let path = self.root.join(rel);
        let err = |source: std::io::Error| GenerateError::Write {
            path: path.clone(),
            source,
        };
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(err)?;
        }
        std::fs::write(&path, bytes).map_err(err)
    }

    pub fn write_text(&self, rel: &str, text: &str) -> Result<(), GenerateError> {
        self.put(rel, text.as_bytes())
    }

    pub fn outlier(&mut self, platform: &str, id: &str, field: &str) {
        self.outliers
            .push((platform.into(), id.into(), field.into()));
    }

    pub fn write_outlier_truth(&self) -> Result<(), GenerateError> {
        let mut text = String::from("platform,id,field\n");
        for (p, id, f) in &self.outliers {
            text.push_str(&format!("{p},{id},{f}\n"));
        }
        self.write_text("truth/outliers.csv", &text)
    }

    pub fn write_malformed_truth(&self) -> Result<(), GenerateError> {
        let mut text = String::from("file,row,reason,detail\n");
        for m in &self.malformed {
            text.push_str(&format!(
                "{},{},{},\"{}\"\n",
                m.file,
                m.row,
                m.reason,
                m.detail.replace('"', "\"\"")
            ));
        }
        self.write_text("truth/malformed.csv", &text)
    }

    fn note(&mut self, rel: &str, lines: &[Line], first_row: usize) {
        self.rows_per_file.insert(rel.to_string(), lines.len());
        for (i, line) in lines.iter().enumerate() {
            if let Line::Bad(_, reason, detail) = line {
                self.malformed.push(Malformed {
                    file: rel.to_string(),
                    row: i + first_row,
                    reason,
                    detail: detail.clone(),
                });
            }
        }
    }

    /// CSV or TSV with the preset's header; `gbk` encodes the file the way Chinese desktop
    /// tools save it.
    #[allow(clippy::too_many_arguments)]
    pub fn csv(
        &mut self,
        rel: &str,
        preset: &str,
        kind: EntityKind,
        delimiter: u8,
        gbk: bool,
        lines: Vec<Line>,
    ) -> Result<(), GenerateError> {
        let header = preset_header(preset, kind).expect("preset covers kind");
        let d = delimiter as char;
        let quote = |s: &str| {
            if s.contains([d, '"', '\n', '\r']) {
                format!("\"{}\"", s.replace('"', "\"\""))
            } else {
                s.to_string()
            }
        };
        let render = |r: &Rec| {
            header
                .iter()
                .map(|(c, _)| quote(get(r, c)))
                .collect::<Vec<_>>()
        };
        let mut text = header
            .iter()
            .map(|(_, col)| *col)
            .collect::<Vec<_>>()
            .join(&d.to_string());
        text.push('\n');
        for line in &lines {
            let (r, cut_short) = line.record();
            let mut cells = render(r);
            if cut_short {
                cells.truncate(cells.len() / 2);
            }
            text.push_str(&cells.join(&d.to_string()));
            text.push('\n');
        }
        let bytes = if gbk {
            let (bytes, _, had_errors) = encoding_rs::GBK.encode(&text);
            if had_errors {
                return Err(GenerateError::NotGbk {
                    path: self.root.join(rel),
                });
            }
            bytes.into_owned()
        } else {
            text.into_bytes()
        };
        self.put(rel, &bytes)?;
        self.note(rel, &lines, 2);
        Ok(())
    }

    fn json_object(header: &[(&str, &str)], r: &Rec, numeric: &[&str]) -> serde_json::Value {
        let mut obj = serde_json::Map::new();
        for (canonical, col) in header {
            let v = get(r, canonical);
            if v.is_empty() {
                continue; // exporters omit empty keys
            }
            let value = if numeric.contains(canonical) {
                v.parse::<i64>()
                    .map(serde_json::Value::from)
                    .or_else(|_| v.parse::<f64>().map(serde_json::Value::from))
                    .unwrap_or_else(|_| serde_json::Value::from(v))
            } else {
                serde_json::Value::from(v)
            };
            obj.insert(col.to_string(), value);
        }
        serde_json::Value::Object(obj)
    }

    pub fn jsonl(
        &mut self,
        rel: &str,
        preset: &str,
        kind: EntityKind,
        lines: Vec<Line>,
        numeric: &[&str],
    ) -> Result<(), GenerateError> {
        let header = preset_header(preset, kind).expect("preset covers kind");
        let mut text = String::new();
        for line in &lines {
            let (r, cut_short) = line.record();
            let mut json = Self::json_object(&header, r, numeric).to_string();
            if cut_short {
                let half = json.chars().count() / 2;
                let cut = json.char_indices().nth(half).map(|(i, _)| i).unwrap_or(0);
                json.truncate(cut);
            }
            text.push_str(&json);
            text.push('\n');
        }
        self.put(rel, text.as_bytes())?;
        self.note(rel, &lines, 1);
        Ok(())
    }

    /// One JSON array of objects (no planted bad rows: a broken array is unreadable as a whole).
    pub fn json_array(
        &mut self,
        rel: &str,
        preset: &str,
        kind: EntityKind,
        lines: Vec<Line>,
        numeric: &[&str],
    ) -> Result<(), GenerateError> {
        let header = preset_header(preset, kind).expect("preset covers kind");
        let items: Vec<serde_json::Value> = lines
            .iter()
            .filter_map(|l| {
                if let Line::Good(r) = l {
                    Some(Self::json_object(&header, r, numeric))
                } else {
                    None
                }
            })
            .collect();
        let text = serde_json::to_string_pretty(&items).expect("json serialises");
        self.put(rel, text.as_bytes())?;
        self.note(rel, &lines, 1);
        Ok(())
    }

    /// Parquet with the canonical column names and typed columns.
    pub fn parquet(
        &mut self,
        rel: &str,
        kind: EntityKind,
        recs: &[Rec],
    ) -> Result<(), GenerateError> {
        let path = self.root.join(rel);
        let err = |e: Box<dyn std::error::Error + Send + Sync>| GenerateError::Parquet {
            path: path.clone(),
            source: e,
        };
        let mut fields = Vec::new();
        let mut columns: Vec<ArrayRef> = Vec::new();
        for f in kind.fields() {
            let texts = recs.iter().map(|r| get(r, f.name));
            fields.push(Field::new(f.name, f.ty.arrow_type(), true));
            columns.push(match f.ty {
                FieldType::Integer => {
                    let mut b = Int64Builder::new();
                    texts.for_each(|t| b.append_option(t.parse().ok()));
                    Arc::new(b.finish())
                }
                FieldType::Decimal | FieldType::Price | FieldType::Rating => {
                    let mut b = Float64Builder::new();
                    texts.for_each(|t| b.append_option(t.parse().ok()));
                    Arc::new(b.finish())
                }
                FieldType::Timestamp => {
                    let mut b = TimestampMicrosecondBuilder::new();
                    texts.for_each(|t| {
                        b.append_option(
                            chrono::DateTime::parse_from_rfc3339(t)
                                .ok()
                                .map(|d| d.timestamp_micros()),
                        )
                    });
                    Arc::new(b.finish().with_timezone("UTC"))
                }
                _ => {
                    let mut b = StringBuilder::new();
                    texts.for_each(|t| b.append_option((!t.is_empty()).then_some(t)));
                    Arc::new(b.finish())
                }
            });
        }
        let batch = RecordBatch::try_new(Arc::new(Schema::new(fields)), columns)
            .map_err(|e| err(e.into()))?;
        let mut buf = Vec::new();
        let mut writer =
            ArrowWriter::try_new(&mut buf, batch.schema(), None).map_err(|e| err(e.into()))?;
        writer.write(&batch).map_err(|e| err(e.into()))?;
        writer.close().map_err(|e| err(e.into()))?;
        self.put(rel, &buf)?;
        self.rows_per_file.insert(rel.to_string(), recs.len());
        Ok(())
    }
}
