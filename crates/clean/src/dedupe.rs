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

use rayon::prelude::*;
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

    /// Every canonical field equal within a source (as rendered text, fields joined by U+001F):
    /// the first row stays.
    fn exact_duplicates(&mut self) {
        let rows = self.rows;
        // Rows are grouped by a hash of their rendering streamed into the hasher, and only
        // rows whose hashes meet are rendered in full to confirm: rendering and joining every
        // row's fields was a third of cleaning a million events.
        let mut seen: HashMap<(&str, u64), Vec<usize>> = HashMap::new();
        for (i, r) in rows.iter().enumerate() {
            let firsts = seen
                .entry((r.source.as_str(), rendering_hash(&r.values)))
                .or_default();
            let rendering = |j: usize| joined_rendering(&rows[j].values);
            match firsts.iter().find(|&&j| rendering(j) == rendering(i)) {
                Some(&first) => {
                    self.remove(i, first, "exact_duplicate", "all fields equal".into());
                }
                None => firsts.push(i),
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
        let key_hash = |i: usize| {
            use std::hash::{Hash, Hasher};
            let mut h = std::collections::hash_map::DefaultHasher::new();
            event_key(i).hash(&mut h);
            h.finish()
        };
        // Events of one key must be adjacent and in time order; the order between keys does
        // not matter, so the key's hash orders them and two keys' strings are compared only
        // when their hashes tie. The index breaks the last ties: the order is total, and the
        // unstable parallel sort gives one result.
        let mut order: Vec<(u64, usize)> = (0..rows.len())
            .into_par_iter()
            .filter(|&i| self.keep[i])
            .map(|i| (key_hash(i), i))
            .collect();
        order.par_sort_unstable_by(|&(ha, a), &(hb, b)| {
            ha.cmp(&hb)
                .then_with(|| event_key(a).cmp(&event_key(b)))
                .then_with(|| time(a).cmp(&time(b)))
                .then(a.cmp(&b))
        });
        let window_us = window_secs * 1_000_000;
        let mut anchor: Option<usize> = None;
        for &(_, i) in &order {
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

/// The row's fields rendered and joined by U+001F: what makes two rows exact duplicates.
fn joined_rendering(values: &[Value]) -> String {
    values
        .iter()
        .map(Value::render)
        .collect::<Vec<_>>()
        .join("\u{1f}")
}

/// A hash of [`joined_rendering`], computed without building the string.
fn rendering_hash(values: &[Value]) -> u64 {
    use std::fmt::Write;
    use std::hash::Hasher;
    struct HashWriter(std::collections::hash_map::DefaultHasher);
    impl Write for HashWriter {
        fn write_str(&mut self, s: &str) -> std::fmt::Result {
            self.0.write(s.as_bytes());
            Ok(())
        }
    }
    let mut w = HashWriter(Default::default());
    for (i, v) in values.iter().enumerate() {
        if i > 0 {
            w.0.write(&[0x1f]);
        }
        let _ = write!(w, "{v}");
    }
    w.0.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_streamed_hash_is_the_hash_of_the_joined_rendering() {
        use std::hash::Hasher;
        let rows = [
            vec![
                Value::text("华为 Mate 60"),
                Value::Int(-12),
                Value::Null,
                Value::Float(0.1),
            ],
            vec![
                Value::Timestamp(1_709_265_600_000_000),
                Value::Bool(true),
                Value::text(""),
            ],
            vec![],
        ];
        for values in rows {
            let mut h = std::collections::hash_map::DefaultHasher::new();
            h.write(joined_rendering(&values).as_bytes());
            assert_eq!(rendering_hash(&values), h.finish(), "{values:?}");
        }
    }

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
