//! The human review loop's table: reviewed candidate pairs (`review_labels`), which the next
//! resolve run turns into must-links, cannot-links and training labels.
//!
//! `shopfuse review export` writes the pairs the matcher is least sure of; people fill in a
//! label; `shopfuse review import` parses the labels ([`parse_label`]) and merges them in
//! ([`merge_review_labels`]): earlier labels stay, a pair labelled again takes the new label.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use shopfuse_core::value::rows_to_batch;
use shopfuse_core::{TableStore, Transaction, Value};

use crate::catalogue::{offers, review_labels, ResolveError, ReviewLabel};

/// Why a reviewed file cannot be imported; each names the file, and the line and field where
/// there is one. Nothing is imported from a file with an error.
#[derive(Debug, thiserror::Error)]
pub enum ReviewFileError {
    /// The file cannot be opened or its header read.
    #[error("{file}: cannot read it")]
    Read {
        file: String,
        #[source]
        source: csv::Error,
    },
    /// A column the import needs is not in the header.
    #[error(
        "{file}: no `{column}` column; the file needs left_platform, left_listing_id, \
         right_platform, right_listing_id and label (as `shopfuse review export` writes it)"
    )]
    MissingColumn { file: String, column: &'static str },
    /// A row is not valid CSV.
    #[error("{file}: line {line}: malformed CSV row")]
    Malformed {
        file: String,
        line: usize,
        #[source]
        source: csv::Error,
    },
    /// The label cell holds something that is not a label.
    #[error(
        "{file}: line {line}, field label: {label:?} is not a label; write 1 (same product) or 0 \
         (different), or leave it empty to skip the pair"
    )]
    BadLabel {
        file: String,
        line: usize,
        label: String,
    },
    /// A listing the project does not have.
    #[error(
        "{file}: line {line}, fields {side}_platform/{side}_listing_id: listing \
         {platform}:{listing_id} is not in this project's offers; was the file exported from \
         another project?"
    )]
    UnknownListing {
        file: String,
        line: usize,
        side: &'static str,
        platform: String,
        listing_id: String,
    },
}

/// The labels of a reviewed file, and how many rows had none (skipped).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ReviewFile {
    pub labels: Vec<ReviewLabel>,
    pub skipped: usize,
}

/// Every (platform, listing id) of the committed `offers`; `None` before the first run.
pub fn known_listings(
    store: &TableStore,
) -> Result<Option<BTreeSet<(String, String)>>, ResolveError> {
    let Some(t) = store.read_rows(offers::NAME)? else {
        return Ok(None);
    };
    Ok(Some(
        t.rows
            .iter()
            .filter_map(|r| Some((t.text(r, offers::platform)?, t.text(r, offers::listing_id)?)))
            .collect(),
    ))
}

const REVIEW_COLUMNS: [&str; 5] = [
    "left_platform",
    "left_listing_id",
    "right_platform",
    "right_listing_id",
    "label",
];

/// Reads a reviewed CSV (as `shopfuse review export` writes it, label filled in): the labelled
/// pairs, each with its listings in key order; every listing must be in `known`.
pub fn read_review_file(
    path: &Path,
    known: &BTreeSet<(String, String)>,
) -> Result<ReviewFile, ReviewFileError> {
    let file = path.display().to_string();
    let read = |source| ReviewFileError::Read {
        file: file.clone(),
        source,
    };
    let mut reader = csv::Reader::from_path(path).map_err(read)?;
    let headers = reader.headers().map_err(read)?.clone();
    let mut cols = [0usize; 5];
    for (col, name) in cols.iter_mut().zip(REVIEW_COLUMNS) {
        *col = headers
            .iter()
            .position(|h| h.trim() == name)
            .ok_or_else(|| ReviewFileError::MissingColumn {
                file: file.clone(),
                column: name,
            })?;
    }
    let mut out = ReviewFile::default();
    for (k, record) in reader.records().enumerate() {
        // Line numbers as an editor shows them: the header is line 1.
        let line = k + 2;
        let record = record.map_err(|source| ReviewFileError::Malformed {
            file: file.clone(),
            line,
            source,
        })?;
        let cell = |i: usize| record.get(cols[i]).unwrap_or_default().trim().to_string();
        match review_row(&cell, known).map_err(|e| e.at(&file, line))? {
            Some(label) => out.labels.push(label),
            None => out.skipped += 1,
        }
    }
    Ok(out)
}

/// A row's error before the file and line are known.
enum RowError {
    BadLabel(String),
    UnknownListing(&'static str, (String, String)),
}

impl RowError {
    fn at(self, file: &str, line: usize) -> ReviewFileError {
        let file = file.to_string();
        match self {
            RowError::BadLabel(label) => ReviewFileError::BadLabel { file, line, label },
            RowError::UnknownListing(side, (platform, listing_id)) => {
                ReviewFileError::UnknownListing {
                    file,
                    line,
                    side,
                    platform,
                    listing_id,
                }
            }
        }
    }
}

/// One row's label (`None`: no label, skip), listings checked and put in key order.
fn review_row(
    cell: &dyn Fn(usize) -> String,
    known: &BTreeSet<(String, String)>,
) -> Result<Option<ReviewLabel>, RowError> {
    let label = cell(4);
    let Some(is_match) = parse_label(&label).ok_or(RowError::BadLabel(label))? else {
        return Ok(None);
    };
    let (left, right) = ((cell(0), cell(1)), (cell(2), cell(3)));
    for (side, key) in [("left", &left), ("right", &right)] {
        if !known.contains(key) {
            return Err(RowError::UnknownListing(side, key.clone()));
        }
    }
    let (left, right) = if left <= right {
        (left, right)
    } else {
        (right, left)
    };
    Ok(Some(ReviewLabel {
        left,
        right,
        is_match,
    }))
}

/// A reviewed pair as stored: the label, when and from which file it came.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReviewedPair {
    pub label: ReviewLabel,
    pub labelled_at: Option<String>,
    pub source_file: Option<String>,
}

/// A label as reviewers and benchmark files write it: `Some(Some(true))` for 1/yes/match/same,
/// `Some(Some(false))` for 0/no/non-match/different, `Some(None)` for empty (skip the pair),
/// `None` for anything else.
pub fn parse_label(text: &str) -> Option<Option<bool>> {
    match text.trim().to_lowercase().as_str() {
        "" => Some(None),
        "1" | "1.0" | "y" | "yes" | "true" | "match" | "same" => Some(Some(true)),
        "0" | "0.0" | "n" | "no" | "false" | "non-match" | "nonmatch" | "no-match"
        | "different" => Some(Some(false)),
        _ => None,
    }
}

/// Every reviewed pair in the transaction's view, in key order.
pub fn read_reviewed(tx: &Transaction<'_>) -> Result<Vec<ReviewedPair>, ResolveError> {
    use review_labels as rl;
    let Some(t) = tx.read_rows(rl::NAME)? else {
        return Ok(Vec::new());
    };
    let mut out: Vec<ReviewedPair> = t
        .rows
        .iter()
        .map(|row| {
            let text = |c: &str| t.text(row, c).unwrap_or_default();
            ReviewedPair {
                label: ReviewLabel {
                    left: (text(rl::left_platform), text(rl::left_listing_id)),
                    right: (text(rl::right_platform), text(rl::right_listing_id)),
                    is_match: t.bool(row, rl::is_match).unwrap_or(false),
                },
                labelled_at: t.text(row, rl::labelled_at),
                source_file: t.text(row, rl::source_file),
            }
        })
        .collect();
    out.sort_by(|a, b| a.label.cmp(&b.label));
    Ok(out)
}

/// Adds `labels` (imported at `labelled_at` from `source_file`) to the reviewed pairs; a pair
/// labelled before takes the new label. Returns the number of reviewed pairs afterwards.
pub fn merge_review_labels(
    tx: &mut Transaction<'_>,
    labels: &[ReviewLabel],
    labelled_at: &str,
    source_file: &str,
) -> Result<usize, ResolveError> {
    type Key = ((String, String), (String, String));
    let mut merged: BTreeMap<Key, (bool, Option<String>, Option<String>)> = BTreeMap::new();
    for r in read_reviewed(tx)? {
        let l = r.label;
        merged.insert(
            (l.left, l.right),
            (l.is_match, r.labelled_at, r.source_file),
        );
    }
    for l in labels {
        let stamp = (
            l.is_match,
            Some(labelled_at.to_string()),
            Some(source_file.to_string()),
        );
        merged.insert((l.left.clone(), l.right.clone()), stamp);
    }
    let rows: Vec<Vec<Value>> = merged
        .into_iter()
        .map(|((l, r), (y, at, file))| {
            vec![
                Value::Text(l.0),
                Value::Text(l.1),
                Value::Text(r.0),
                Value::Text(r.1),
                Value::Bool(y),
                at.map_or(Value::Null, Value::Text),
                file.map_or(Value::Null, Value::Text),
            ]
        })
        .collect();
    let schema = review_labels::TABLE.schema();
    tx.replace(
        review_labels::NAME,
        &schema,
        &[rows_to_batch(&schema, &rows)?],
    )?;
    Ok(rows.len())
}

#[cfg(test)]
mod tests {
    use super::*;
    use shopfuse_core::TableStore;

    #[test]
    fn labels_parse_in_the_usual_spellings() {
        assert_eq!(parse_label(" Yes "), Some(Some(true)));
        assert_eq!(parse_label("0"), Some(Some(false)));
        assert_eq!(parse_label("non-match"), Some(Some(false)));
        assert_eq!(parse_label(""), Some(None));
        assert_eq!(parse_label("maybe"), None);
    }

    #[test]
    fn a_reviewed_file_names_the_line_and_field_of_its_errors() {
        let dir = tempfile::tempdir().unwrap();
        let known: BTreeSet<(String, String)> = [("jd", "j1"), ("taobao", "t1")]
            .iter()
            .map(|(p, l)| (p.to_string(), l.to_string()))
            .collect();
        let header = "left_platform,left_listing_id,right_platform,right_listing_id,label\n";
        let write = |name: &str, body: &str| {
            let path = dir.path().join(name);
            std::fs::write(&path, format!("{header}{body}")).unwrap();
            path
        };
        let ok = write("ok.csv", "taobao,t1,jd,j1,yes\ntaobao,t1,jd,j1,\n");
        let read = read_review_file(&ok, &known).unwrap();
        assert_eq!(read.skipped, 1);
        assert_eq!(read.labels[0].left, ("jd".to_string(), "j1".to_string()));
        let bad = write("bad.csv", "taobao,t1,jd,j1,1\ntaobao,t1,jd,j1,maybe\n");
        let e = read_review_file(&bad, &known).unwrap_err().to_string();
        assert!(e.contains("bad.csv: line 3, field label"), "{e}");
        let unknown = write("unknown.csv", "taobao,t9,jd,j1,0\n");
        let e = read_review_file(&unknown, &known).unwrap_err().to_string();
        assert!(
            e.contains("line 2, fields left_platform/left_listing_id") && e.contains("taobao:t9"),
            "{e}"
        );
        let path = dir.path().join("cols.csv");
        std::fs::write(&path, "a,b\n1,2\n").unwrap();
        let e = read_review_file(&path, &known).unwrap_err().to_string();
        assert!(e.contains("no `left_platform` column"), "{e}");
    }

    #[test]
    fn a_pair_labelled_again_takes_the_new_label() {
        let dir = tempfile::tempdir().unwrap();
        let store = TableStore::at(dir.path());
        let pair = |a: &str, y| ReviewLabel {
            left: ("jd".into(), a.into()),
            right: ("taobao".into(), "t1".into()),
            is_match: y,
        };
        let mut tx = store.begin().unwrap();
        let n = merge_review_labels(
            &mut tx,
            &[pair("j1", true), pair("j2", false)],
            "t0",
            "a.csv",
        )
        .unwrap();
        assert_eq!(n, 2);
        tx.commit("t0".into()).unwrap();
        let mut tx = store.begin().unwrap();
        merge_review_labels(&mut tx, &[pair("j1", false)], "t1", "b.csv").unwrap();
        let reviewed = read_reviewed(&tx).unwrap();
        assert_eq!(reviewed.len(), 2);
        assert_eq!(reviewed[0].label, pair("j1", false));
        assert_eq!(reviewed[0].source_file.as_deref(), Some("b.csv"));
        assert_eq!(reviewed[1].source_file.as_deref(), Some("a.csv"));
    }
}
