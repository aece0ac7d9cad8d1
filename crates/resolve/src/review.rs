//! The human review loop's table: reviewed candidate pairs (`review_labels`), which the next
//! resolve run turns into must-links, cannot-links and training labels.
//!
//! `shopfuse review export` writes the pairs the matcher is least sure of; people fill in a
//! label; `shopfuse review import` parses the labels ([`parse_label`]) and merges them in
//! ([`merge_review_labels`]): earlier labels stay, a pair labelled again takes the new label.

use std::collections::BTreeMap;

use shopfuse_core::value::rows_to_batch;
use shopfuse_core::{Transaction, Value};

use crate::catalogue::{review_labels, ResolveError, ReviewLabel};

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
