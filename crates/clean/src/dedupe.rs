//! Duplicate removal within one source. Across sources, equal records are not duplicates but
//! the same thing seen twice, which is the resolve stage's job.
//!
//! - exact: every canonical field equal after normalisation (the same export downloaded twice);
//! - same key: one listing/order/review/account id twice in a source, with some fields
//!   differing (an overlapping later export): the most complete row is kept;
//! - same event id: one sender's event id twice in a source (a client that retried a batch
//!   the API had already stored): the first stays;
//! - repeated event: the same account, listing and event type within a few seconds (a client
//!   retry or double click).

use std::collections::hash_map::Entry;
use std::collections::HashMap;

use shopfuse_core::{EntityKind, Value};

use crate::{Removal, WorkRow};

/// Rows must be sorted by (source, file, row). Returns kept rows (same order) and removals.
pub fn remove_duplicates(
    kind: EntityKind,
    rows: Vec<WorkRow>,
    event_window_secs: i64,
) -> (Vec<WorkRow>, Vec<Removal>) {
    let mut pass = Pass {
        kind,
        rows: &rows,
        keep: vec![true; rows.len()],
        removed: Vec::new(),
    };
    pass.exact_duplicates();
    if let Some(key_field) = kind.key_field() {
        pass.same_key(key_field);
    } else if kind == EntityKind::Events {
        pass.same_event_id();
        pass.repeated_events(event_window_secs);
    }
    let Pass {
        keep, mut removed, ..
    } = pass;
    removed.sort_by(|a, b| (&a.source, &a.file, a.row).cmp(&(&b.source, &b.file, b.row)));
    let kept = rows
        .into_iter()
        .zip(keep)
        .filter(|(_, k)| *k)
        .map(|(r, _)| r)
        .collect();
    (kept, removed)
}

/// The rows of one kind, which of them are still kept, and what was removed so far.
struct Pass<'r> {
    kind: EntityKind,
    rows: &'r [WorkRow],
    keep: Vec<bool>,
    removed: Vec<Removal>,
}

impl Pass<'_> {
    /// Drops row `dup` as a duplicate of row `kept`.
    fn remove(&mut self, dup: usize, kept: usize, reason: &'static str, detail: String) {
        let (d, k) = (&self.rows[dup], &self.rows[kept]);
        self.keep[dup] = false;
        self.removed.push(Removal {
            source: d.source.clone(),
            kind: self.kind,
            file: d.file.clone(),
            row: d.row,
            kept_file: k.file.clone(),
            kept_row: k.row,
            reason,
            detail,
        });
    }

    /// Every canonical field equal within a source: the first row stays.
    fn exact_duplicates(&mut self) {
        let rows = self.rows;
        let mut seen: HashMap<(&str, String), usize> = HashMap::new();
        for (i, r) in rows.iter().enumerate() {
            let key = r
                .values
                .iter()
                .map(Value::render)
                .collect::<Vec<_>>()
                .join("\u{1f}");
            match seen.entry((r.source.as_str(), key)) {
                Entry::Occupied(first) => {
                    self.remove(
                        i,
                        *first.get(),
                        "exact_duplicate",
                        "all fields equal".into(),
                    );
                }
                Entry::Vacant(slot) => {
                    slot.insert(i);
                }
            }
        }
    }

    /// One key (listing, order, review, account id) twice in a source: the most complete row
    /// stays; on a tie the first exported one.
    fn same_key(&mut self, key_field: &str) {
        let (rows, kind) = (self.rows, self.kind);
        let k = kind.field_index(key_field).expect("key field");
        let mut groups: HashMap<(&str, String), Vec<usize>> = HashMap::new();
        for (i, r) in rows.iter().enumerate().filter(|(i, _)| self.keep[*i]) {
            if let Some(id) = r.values[k].as_str() {
                groups
                    .entry((r.source.as_str(), id.to_string()))
                    .or_default()
                    .push(i);
            }
        }
        let mut groups: Vec<Vec<usize>> = groups.into_values().filter(|g| g.len() > 1).collect();
        groups.sort();
        let completeness = |i: usize| rows[i].values.iter().filter(|v| !v.is_null()).count();
        for group in groups {
            let best = *group
                .iter()
                .max_by_key(|&&i| (completeness(i), std::cmp::Reverse(i)))
                .expect("non-empty");
            for &i in group.iter().filter(|&&i| i != best) {
                let differing: Vec<&str> = kind
                    .fields()
                    .iter()
                    .zip(rows[i].values.iter().zip(&rows[best].values))
                    .filter(|(_, (a, b))| a != b)
                    .map(|(f, _)| f.name)
                    .collect();
                let detail = format!("{key_field} repeated; differs in {}", differing.join(", "));
                self.remove(i, best, "same_key", detail);
            }
        }
    }

    /// One event id twice in a source: the first exported stays, whatever else differs.
    fn same_event_id(&mut self) {
        let rows = self.rows;
        let Some(k) = self.kind.field_index("event_id") else {
            return;
        };
        let mut first: HashMap<(&str, &str), usize> = HashMap::new();
        for (i, row) in rows.iter().enumerate() {
            let Some(id) = row.values[k].as_str().filter(|_| self.keep[i]) else {
                continue;
            };
            match first.entry((row.source.as_str(), id)) {
                Entry::Occupied(kept) => {
                    let detail = format!("event_id {id:?} repeated");
                    self.remove(i, *kept.get(), "same_event_id", detail);
                }
                Entry::Vacant(slot) => {
                    slot.insert(i);
                }
            }
        }
    }

    /// The same account, listing and event type within `window_secs` of the event kept
    /// before it (a client retry or double click).
    fn repeated_events(&mut self, window_secs: i64) {
        let (rows, kind) = (self.rows, self.kind);
        let field = |name| kind.field_index(name).expect("event field");
        let (acc, lst, typ, at) = (
            field("account_id"),
            field("listing_id"),
            field("event_type"),
            field("occurred_at"),
        );
        let mut order: Vec<usize> = (0..rows.len()).filter(|&i| self.keep[i]).collect();
        // Borrowed, not rendered: this runs inside the sort comparator for every event.
        let event_key = |i: usize| {
            let r = &rows[i];
            (
                r.source.as_str(),
                r.values[acc].as_str(),
                r.values[lst].as_str(),
                r.values[typ].as_str(),
            )
        };
        let time = |i: usize| rows[i].values[at].as_i64();
        order.sort_by(|&a, &b| {
            event_key(a)
                .cmp(&event_key(b))
                .then(time(a).cmp(&time(b)))
                .then(a.cmp(&b))
        });
        let window_us = window_secs * 1_000_000;
        let mut anchor: Option<usize> = None;
        for &i in &order {
            if let (Some(a), Some(ti)) = (anchor, time(i)) {
                if let Some(ta) = time(a) {
                    if event_key(a) == event_key(i) && ti - ta <= window_us {
                        let later = (ti - ta) as f64 / 1e6;
                        let detail = format!("same account, listing and type {later:.1}s later");
                        self.remove(i, a, "repeated_event", detail);
                        continue;
                    }
                }
            }
            anchor = Some(i);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(kind: EntityKind, file: &str, n: i64, values: &[(&str, Value)]) -> WorkRow {
        let mut v = vec![Value::Null; kind.fields().len()];
        for (name, value) in values {
            v[kind.field_index(name).unwrap()] = value.clone();
        }
        WorkRow {
            values: v,
            source: "s".into(),
            platform: "p".into(),
            file: file.into(),
            row: n,
            extras: vec![],
            imputed: vec![],
            outlier_reasons: vec![],
        }
    }

    #[test]
    fn exact_and_same_key_duplicates_are_removed_with_a_record() {
        let k = EntityKind::Products;
        let t = |s: &str| Value::Text(s.into());
        let rows = vec![
            row(k, "a.csv", 2, &[("listing_id", t("1")), ("title", t("x"))]),
            row(k, "a.csv", 3, &[("listing_id", t("2")), ("title", t("y"))]),
            row(k, "b.csv", 2, &[("listing_id", t("1")), ("title", t("x"))]),
            row(
                k,
                "b.csv",
                3,
                &[
                    ("listing_id", t("2")),
                    ("title", t("y")),
                    ("brand", t("apple")),
                ],
            ),
        ];
        let (kept, removed) = remove_duplicates(k, rows, 2);
        assert_eq!(kept.len(), 2);
        assert_eq!(removed.len(), 2);
        assert_eq!(
            (removed[0].file.as_str(), removed[0].row, removed[0].reason),
            ("a.csv", 3, "same_key")
        );
        assert_eq!(
            (removed[0].kept_file.as_str(), removed[0].kept_row),
            ("b.csv", 3)
        );
        assert!(removed[0].detail.contains("brand"));
        assert_eq!(
            (removed[1].file.as_str(), removed[1].reason),
            ("b.csv", "exact_duplicate")
        );
    }

    #[test]
    fn repeated_events_within_window_collapse() {
        let k = EntityKind::Events;
        let t = |s: &str| Value::Text(s.into());
        let ev = |n, at: i64| {
            row(
                k,
                "e.csv",
                n,
                &[
                    ("account_id", t("u")),
                    ("listing_id", t("l")),
                    ("event_type", t("view")),
                    ("occurred_at", Value::Timestamp(at * 1_000_000)),
                ],
            )
        };
        let rows = vec![ev(2, 100), ev(3, 101), ev(4, 102), ev(5, 200)];
        let (kept, removed) = remove_duplicates(k, rows, 2);
        assert_eq!(kept.iter().map(|r| r.row).collect::<Vec<_>>(), vec![2, 5]);
        assert_eq!(removed.len(), 2);
        assert!(removed
            .iter()
            .all(|r| r.reason == "repeated_event" && r.kept_row == 2));
    }

    #[test]
    fn a_repeated_event_id_is_one_event() {
        let k = EntityKind::Events;
        let t = |s: &str| Value::Text(s.into());
        let ev = |n, id: &str, listing: &str| {
            row(
                k,
                "e.jsonl",
                n,
                &[
                    ("account_id", t("u")),
                    ("listing_id", t(listing)),
                    ("event_type", t("view")),
                    ("occurred_at", Value::Timestamp(n * 60_000_000)),
                    ("event_id", t(id)),
                ],
            )
        };
        let rows = vec![ev(1, "e1", "a"), ev(2, "e2", "b"), ev(3, "e1", "c")];
        let (kept, removed) = remove_duplicates(k, rows, 2);
        assert_eq!(kept.iter().map(|r| r.row).collect::<Vec<_>>(), vec![1, 2]);
        assert_eq!(
            (removed[0].row, removed[0].kept_row, removed[0].reason),
            (3, 1, "same_event_id")
        );
    }
}
