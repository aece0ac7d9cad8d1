//! Labelled record pairs from the entity-matching benchmarks: the serialized one-pair-per-line
//! form (`COL attr VAL value … \t COL attr VAL value … \t label`, as Ditto distributes them)
//! and the DeepMatcher directory layout (tableA.csv, tableB.csv, train/valid/test.csv with
//! ltable_id, rtable_id, label).

use std::collections::HashMap;
use std::path::{Path, PathBuf};

/// One record: attribute → value, in the file's attribute order.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Record {
    pub attrs: Vec<(String, String)>,
}

impl Record {
    pub fn get(&self, attr: &str) -> Option<&str> {
        self.attrs
            .iter()
            .find(|(a, _)| a == attr)
            .map(|(_, v)| v.as_str())
    }

    /// All values joined with spaces: the record as one text.
    pub fn text(&self) -> String {
        let parts: Vec<&str> = self
            .attrs
            .iter()
            .map(|(_, v)| v.trim())
            .filter(|v| !v.is_empty())
            .collect();
        parts.join(" ")
    }
}

#[derive(Debug, Clone)]
pub struct LabelledPair {
    pub left: Record,
    pub right: Record,
    pub is_match: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum PairsError {
    /// A pairs or tables file could not be read.
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    /// A line of a pairs file is malformed; the message says what was expected.
    #[error("{path}: line {line}: {message}")]
    Line {
        path: PathBuf,
        line: usize,
        message: String,
    },
}

/// Parses `COL title VAL apple iphone COL price VAL 9.99` into a record.
pub fn parse_serialized(text: &str) -> Result<Record, String> {
    let tokens: Vec<&str> = text.split(' ').collect();
    let mut attrs: Vec<(String, String)> = Vec::new();
    let mut i = 0;
    // Skip leading blanks; anything else before the first COL is malformed.
    while i < tokens.len() && tokens[i].is_empty() {
        i += 1;
    }
    while i < tokens.len() {
        if tokens[i] != "COL" {
            return Err(format!(
                "expected `COL <attribute> VAL <value>`, found {:?}",
                tokens[i]
            ));
        }
        i += 1;
        let mut name = Vec::new();
        while i < tokens.len() && tokens[i] != "VAL" {
            name.push(tokens[i]);
            i += 1;
        }
        if i >= tokens.len() {
            return Err(format!("attribute {:?} has no VAL", name.join(" ")));
        }
        i += 1;
        let mut value = Vec::new();
        while i < tokens.len() && tokens[i] != "COL" {
            value.push(tokens[i]);
            i += 1;
        }
        let name = name.join(" ").trim().to_string();
        if name.is_empty() {
            return Err("an attribute without a name".into());
        }
        let value = value
            .into_iter()
            .filter(|t| !t.is_empty())
            .collect::<Vec<_>>()
            .join(" ");
        attrs.push((name, value));
    }
    if attrs.is_empty() {
        return Err("empty record".into());
    }
    Ok(Record { attrs })
}

/// Reads a serialized pair file (one `left \t right \t label` per line).
pub fn read_serialized(path: &Path) -> Result<Vec<LabelledPair>, PairsError> {
    let text = std::fs::read_to_string(path).map_err(|source| PairsError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    let mut pairs = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let line_err = |message: String| PairsError::Line {
            path: path.to_path_buf(),
            line: n + 1,
            message,
        };
        if line.trim().is_empty() {
            continue;
        }
        let fields: Vec<&str> = line.split('\t').collect();
        if fields.len() != 3 {
            return Err(line_err(format!(
                "expected 3 tab-separated fields (left, right, label), found {}",
                fields.len()
            )));
        }
        let left =
            parse_serialized(fields[0]).map_err(|m| line_err(format!("left record: {m}")))?;
        let right =
            parse_serialized(fields[1]).map_err(|m| line_err(format!("right record: {m}")))?;
        let is_match = parse_label(fields[2]).map_err(line_err)?;
        pairs.push(LabelledPair {
            left,
            right,
            is_match,
        });
    }
    Ok(pairs)
}

fn parse_label(s: &str) -> Result<bool, String> {
    crate::review::parse_label(s)
        .flatten()
        .ok_or_else(|| format!("label must be 0 or 1, found {:?}", s.trim()))
}

/// Reads a DeepMatcher-layout directory: `tableA.csv`, `tableB.csv` (first column `id`) and
/// `split` (e.g. `train.csv`) with columns ltable_id, rtable_id, label.
pub fn read_deepmatcher(dir: &Path, split: &str) -> Result<Vec<LabelledPair>, PairsError> {
    let a = read_table(&dir.join("tableA.csv"))?;
    let b = read_table(&dir.join("tableB.csv"))?;
    let path = dir.join(split);
    let mut reader = csv_reader(&path)?;
    let headers = reader.headers().map_err(|e| csv_err(&path, 1, e))?.clone();
    let col = |name: &str| {
        headers
            .iter()
            .position(|h| h.trim() == name)
            .ok_or_else(|| PairsError::Line {
                path: path.clone(),
                line: 1,
                message: format!("no column {name} (expected ltable_id, rtable_id, label)"),
            })
    };
    let (li, ri, lab) = (col("ltable_id")?, col("rtable_id")?, col("label")?);
    let mut pairs = Vec::new();
    for (n, row) in reader.records().enumerate() {
        let line = n + 2;
        let row = row.map_err(|e| csv_err(&path, line, e))?;
        let line_err = |message: String| PairsError::Line {
            path: path.clone(),
            line,
            message,
        };
        let lookup = |table: &HashMap<String, Record>, id: &str, name: &str| {
            table
                .get(id.trim())
                .cloned()
                .ok_or_else(|| line_err(format!("{name} has no record with id {id:?}")))
        };
        pairs.push(LabelledPair {
            left: lookup(&a, &row[li], "tableA.csv")?,
            right: lookup(&b, &row[ri], "tableB.csv")?,
            is_match: parse_label(&row[lab]).map_err(line_err)?,
        });
    }
    Ok(pairs)
}

fn csv_reader(path: &Path) -> Result<csv::Reader<std::fs::File>, PairsError> {
    let file = std::fs::File::open(path).map_err(|source| PairsError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    Ok(csv::ReaderBuilder::new().flexible(false).from_reader(file))
}

fn csv_err(path: &Path, line: usize, e: csv::Error) -> PairsError {
    PairsError::Line {
        path: path.to_path_buf(),
        line,
        message: e.to_string(),
    }
}

fn read_table(path: &Path) -> Result<HashMap<String, Record>, PairsError> {
    let mut reader = csv_reader(path)?;
    let headers = reader.headers().map_err(|e| csv_err(path, 1, e))?.clone();
    let id_col = headers
        .iter()
        .position(|h| h.trim() == "id")
        .ok_or_else(|| PairsError::Line {
            path: path.to_path_buf(),
            line: 1,
            message: "no id column".into(),
        })?;
    let mut out = HashMap::new();
    for (n, row) in reader.records().enumerate() {
        let row = row.map_err(|e| csv_err(path, n + 2, e))?;
        let attrs = headers
            .iter()
            .zip(row.iter())
            .enumerate()
            .filter(|(i, _)| *i != id_col)
            .map(|(_, (h, v))| (h.trim().to_string(), v.trim().to_lowercase()))
            .collect();
        out.insert(row[id_col].trim().to_string(), Record { attrs });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn parses_a_serialized_record_with_an_empty_value() {
        let r = parse_serialized(
            "COL title VAL adobe cs3 upgrade COL manufacturer VAL  COL price VAL 413.99 ",
        )
        .unwrap();
        assert_eq!(r.get("title"), Some("adobe cs3 upgrade"));
        assert_eq!(r.get("manufacturer"), Some(""));
        assert_eq!(r.get("price"), Some("413.99"));
        assert_eq!(r.text(), "adobe cs3 upgrade 413.99");
    }

    #[test]
    fn rejects_text_that_is_not_a_record() {
        assert!(parse_serialized("title: adobe").is_err());
        assert!(parse_serialized("COL title adobe").is_err());
    }

    #[test]
    fn deepmatcher_layout_joins_ids_to_records() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("tableA.csv"),
            "id,title,price\n0,Apple iPhone,9\n1,Dell XPS,8\n",
        )
        .unwrap();
        std::fs::write(
            dir.path().join("tableB.csv"),
            "id,title,price\n5,iphone apple,9.5\n",
        )
        .unwrap();
        std::fs::write(
            dir.path().join("train.csv"),
            "ltable_id,rtable_id,label\n0,5,1\n1,5,0\n",
        )
        .unwrap();
        let pairs = read_deepmatcher(dir.path(), "train.csv").unwrap();
        assert_eq!(pairs.len(), 2);
        assert_eq!(pairs[0].left.get("title"), Some("apple iphone"));
        assert!(pairs[0].is_match && !pairs[1].is_match);
        std::fs::write(
            dir.path().join("bad.csv"),
            "ltable_id,rtable_id,label\n7,5,1\n",
        )
        .unwrap();
        let err = read_deepmatcher(dir.path(), "bad.csv")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("bad.csv") && err.contains("line 2") && err.contains("\"7\""),
            "{err}"
        );
    }

    proptest! {
        #[test]
        fn serialized_round_trip(values in proptest::collection::vec("([a-z0-9.]{1,8}( [a-z0-9.]{1,8}){0,3})?", 1..4)) {
            let names = ["title", "brand", "price", "model"];
            let text: String = values.iter().enumerate()
                .map(|(i, v)| format!("COL {} VAL {} ", names[i], v))
                .collect();
            let r = parse_serialized(&text).unwrap();
            prop_assert_eq!(r.attrs.len(), values.len());
            for (i, v) in values.iter().enumerate() {
                prop_assert_eq!(r.get(names[i]).unwrap(), v.as_str());
            }
        }
    }
}
