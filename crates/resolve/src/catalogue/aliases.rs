//! Cross-language value aliases learned from listings that share a GTIN.

use std::collections::BTreeMap;

use shopfuse_core::Value;

use super::Listing;
use crate::features::has_cjk;

/// Union-find over small integer ids. Written here: twenty lines, not worth a dependency.
struct DisjointSets(Vec<usize>);

impl DisjointSets {
    fn new(n: usize) -> Self {
        DisjointSets((0..n).collect())
    }
    fn find(&mut self, x: usize) -> usize {
        let mut r = x;
        while self.0[r] != r {
            r = self.0[r];
        }
        let mut y = x;
        while self.0[y] != r {
            let next = self.0[y];
            self.0[y] = r;
            y = next;
        }
        r
    }
    fn union(&mut self, a: usize, b: usize) {
        let (ra, rb) = (self.find(a), self.find(b));
        if ra != rb {
            self.0[ra.max(rb)] = ra.min(rb);
        }
    }
}

/// Values of one field known to mean the same thing across languages, learned from
/// listings that share a GTIN: "蓝色" and "blue" co-occur on the same item again and again.
#[derive(Debug, Clone, Default)]
pub struct Aliases {
    /// Lower-cased value → its class's canonical value.
    canonical: BTreeMap<String, String>,
    /// Lower-cased value → number of GTIN links that support its class membership.
    support: BTreeMap<String, usize>,
}

impl Aliases {
    /// `links`: pairs of (lower-cased) values seen on two listings with one GTIN.
    /// `counts`: how often each value occurs overall (the most frequent value names a class,
    /// Latin script first so tables read the same in every language).
    pub fn learn(links: &[(String, String)], counts: &BTreeMap<String, usize>) -> Self {
        let mut together: BTreeMap<(&str, &str), usize> = BTreeMap::new();
        let mut linked: BTreeMap<&str, usize> = BTreeMap::new();
        for (a, b) in links {
            if a == b {
                continue;
            }
            let (x, y) = if a < b { (a, b) } else { (b, a) };
            *together.entry((x.as_str(), y.as_str())).or_default() += 1;
            *linked.entry(x.as_str()).or_default() += 1;
            *linked.entry(y.as_str()).or_default() += 1;
        }
        let values: Vec<&str> = counts.keys().map(String::as_str).collect();
        let id = |v: &str| values.binary_search(&v).ok();
        let mut sets = DisjointSets::new(values.len());
        let mut support: BTreeMap<String, usize> = BTreeMap::new();
        // A pair of values is an alias when it is seen at least twice and makes up at least
        // half of the cross-value links of one of the two (several Chinese names may map to
        // one English one: 灰色 and 深空灰 both to grey): a wrong GTIN or a mislabelled colour
        // now and then does not merge "blue" with "black", which are each other's minor links.
        for (&(x, y), &n) in &together {
            if n >= 2 && (2 * n >= linked[x] || 2 * n >= linked[y]) {
                if let (Some(i), Some(j)) = (id(x), id(y)) {
                    sets.union(i, j);
                    *support.entry(x.to_string()).or_default() += n;
                    *support.entry(y.to_string()).or_default() += n;
                }
            }
        }
        let mut classes: BTreeMap<usize, Vec<&str>> = BTreeMap::new();
        for (i, v) in values.iter().enumerate() {
            classes.entry(sets.find(i)).or_default().push(v);
        }
        let mut canonical = BTreeMap::new();
        for members in classes.values() {
            if members.len() < 2 {
                continue;
            }
            let name = members
                .iter()
                .max_by_key(|v| (!has_cjk(v), counts[**v], std::cmp::Reverse(**v)))
                .expect("non-empty class");
            for m in members {
                canonical.insert(m.to_string(), name.to_string());
            }
        }
        Aliases { canonical, support }
    }

    /// How many values have an alias.
    pub fn len(&self) -> usize {
        self.canonical.len()
    }

    pub fn is_empty(&self) -> bool {
        self.canonical.is_empty()
    }

    /// The canonical form of `value` (itself, lower-cased, when it has no alias).
    pub fn canonical(&self, value: &str) -> String {
        let v = value.trim().to_lowercase();
        self.canonical.get(&v).cloned().unwrap_or(v)
    }

    /// Whether two values of this field contradict each other. Values in different scripts
    /// that the aliases do not relate are *unknown*, not a conflict ("海军蓝" may be "navy").
    pub fn conflict(&self, a: &str, b: &str) -> bool {
        let (ca, cb) = (self.canonical(a), self.canonical(b));
        if ca == cb {
            return false;
        }
        let known = |v: &str| self.canonical.contains_key(&v.trim().to_lowercase());
        has_cjk(&ca) == has_cjk(&cb) || (known(a) && known(b))
    }

    pub(super) fn rows(&self, field: &str) -> Vec<Vec<Value>> {
        self.canonical
            .iter()
            .map(|(v, c)| {
                vec![
                    Value::Text(field.to_string()),
                    Value::Text(v.clone()),
                    Value::Text(c.clone()),
                    Value::Int(self.support.get(v).copied().unwrap_or(0) as i64),
                ]
            })
            .collect()
    }
}

/// Cross-language aliases of the fields compared across platforms.
#[derive(Debug, Clone, Default)]
pub struct FieldAliases {
    pub brand: Aliases,
    pub category: Aliases,
    pub color: Aliases,
}

impl FieldAliases {
    pub fn learn(listings: &[Listing]) -> Self {
        let mut by_gtin: BTreeMap<String, Vec<usize>> = BTreeMap::new();
        for (i, l) in listings.iter().enumerate() {
            if let Some(g) = l.gtin_key() {
                by_gtin.entry(g).or_default().push(i);
            }
        }
        let field = |get: &dyn Fn(&Listing) -> Option<&str>| {
            let mut counts: BTreeMap<String, usize> = BTreeMap::new();
            for l in listings {
                if let Some(v) = get(l) {
                    *counts.entry(v.trim().to_lowercase()).or_default() += 1;
                }
            }
            let mut links = Vec::new();
            for ids in by_gtin.values() {
                for (k, &a) in ids.iter().enumerate() {
                    for &b in &ids[k + 1..] {
                        if listings[a].platform == listings[b].platform {
                            continue;
                        }
                        if let (Some(x), Some(y)) = (get(&listings[a]), get(&listings[b])) {
                            links.push((x.trim().to_lowercase(), y.trim().to_lowercase()));
                        }
                    }
                }
            }
            Aliases::learn(&links, &counts)
        };
        FieldAliases {
            brand: field(&|l| l.brand.as_deref()),
            category: field(&|l| l.category.as_deref()),
            color: field(&|l| l.color.as_deref()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn counts(values: &[&str]) -> BTreeMap<String, usize> {
        let mut c = BTreeMap::new();
        for v in values {
            *c.entry(v.to_string()).or_default() += 1;
        }
        c
    }

    #[test]
    fn aliases_learn_repeated_cross_language_links_only() {
        let link = |a: &str, b: &str| (a.to_string(), b.to_string());
        let links = vec![
            link("蓝色", "blue"),
            link("蓝色", "blue"),
            link("blue", "蓝色"),
            link("黑色", "black"),
            link("黑色", "black"),
            // One stray link from a mislabelled listing.
            link("蓝色", "black"),
        ];
        let a = Aliases::learn(
            &links,
            &counts(&["蓝色", "blue", "blue", "黑色", "black", "white"]),
        );
        assert_eq!(a.canonical("蓝色"), "blue");
        assert_eq!(a.canonical("Black"), "black");
        assert_eq!(a.canonical("黑色"), "black");
        assert!(!a.conflict("蓝色", "Blue"));
        assert!(a.conflict("蓝色", "black"));
        assert!(a.conflict("blue", "white"));
        // Unknown across scripts: not a conflict.
        assert!(!a.conflict("海军蓝", "white"));
    }
}
