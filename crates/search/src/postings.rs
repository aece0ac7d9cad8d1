//! [`AttributePostings`]: which documents hold each brand, category, colour, capacity and
//! platform value, so a filtered query starts from the documents that can pass instead of
//! testing every product's strings (at 50 k products that scan was most of a lexical query's
//! time).
//!
//! Vocabulary:
//! - **posting list**: the sorted positions of the documents that hold one value of a field.
//! - **[`Allowed`]**: the documents that pass a request's filters, as a sorted list (to scan)
//!   and a mask by position (to test).

use std::collections::HashMap;

use crate::document::{LearnedAliases, ProductDocument};
use crate::query::Filters;

/// The fields a filter compares with a value (price and stock are ranges and flags, checked
/// on the documents the postings leave).
const FIELDS: [&str; 5] = ["brand", "category", "color", "capacity", "platform"];

/// Posting lists per field and lower-cased value.
#[derive(Debug, Default)]
pub struct AttributePostings {
    by_field: HashMap<&'static str, HashMap<String, Vec<u32>>>,
    documents: usize,
}

/// The documents that pass a request's filters.
#[derive(Debug)]
pub struct Allowed {
    pub positions: Vec<u32>,
    pub mask: Vec<bool>,
}

impl Allowed {
    pub fn is_empty(&self) -> bool {
        self.positions.is_empty()
    }

    pub fn contains(&self, position: usize) -> bool {
        self.mask.get(position).copied().unwrap_or(false)
    }
}

impl AttributePostings {
    pub fn new(docs: &[ProductDocument]) -> Self {
        let mut by_field: HashMap<&'static str, HashMap<String, Vec<u32>>> = HashMap::new();
        for (i, d) in docs.iter().enumerate() {
            let singles = [
                ("brand", &d.brand),
                ("category", &d.category),
                ("color", &d.color),
                ("capacity", &d.capacity),
            ];
            for (field, value) in singles {
                if let Some(v) = value {
                    let list = by_field.entry(field).or_default();
                    list.entry(v.to_lowercase()).or_default().push(i as u32);
                }
            }
            let platforms = by_field.entry("platform").or_default();
            for p in &d.platforms {
                let list = platforms.entry(p.to_lowercase()).or_default();
                // A product listed twice on one platform is one posting.
                if list.last() != Some(&(i as u32)) {
                    list.push(i as u32);
                }
            }
        }
        AttributePostings {
            by_field,
            documents: docs.len(),
        }
    }

    /// The documents that pass `filters`; `None` when nothing is filtered. The final check is
    /// [`Filters::passes`] itself on the documents the postings leave, so the two can never
    /// disagree.
    pub fn allowed(
        &self,
        filters: &Filters,
        docs: &[ProductDocument],
        aliases: &LearnedAliases,
    ) -> Option<Allowed> {
        if filters.is_empty() {
            return None;
        }
        let wanted = [
            &filters.brand,
            &filters.category,
            &filters.color,
            &filters.capacity,
            &filters.platform,
        ];
        let mut lists: Vec<Vec<u32>> = FIELDS
            .iter()
            .zip(wanted)
            .filter_map(|(field, want)| Some(self.holding(field, want.as_deref()?, aliases)))
            .collect();
        lists.sort_by_key(Vec::len);
        let start: Vec<u32> = match lists.first() {
            Some(smallest) => smallest.clone(),
            None => (0..self.documents as u32).collect(),
        };
        let positions: Vec<u32> = start
            .into_iter()
            .filter(|&i| {
                lists[1.min(lists.len())..]
                    .iter()
                    .all(|l| l.binary_search(&i).is_ok())
            })
            .filter(|&i| filters.passes(&docs[i as usize], aliases))
            .collect();
        let mut mask = vec![false; self.documents];
        for &i in &positions {
            mask[i as usize] = true;
        }
        Some(Allowed { positions, mask })
    }

    /// Positions of the documents whose `field` is `want` or has `want` among the spellings
    /// the resolve stage learned for it (capacity and platform compare exactly).
    fn holding(&self, field: &str, want: &str, aliases: &LearnedAliases) -> Vec<u32> {
        let Some(values) = self.by_field.get(field) else {
            return Vec::new();
        };
        let spelled = |value: &str| {
            value.eq_ignore_ascii_case(want)
                || (!matches!(field, "capacity" | "platform")
                    && aliases
                        .spellings(field, value)
                        .iter()
                        .any(|s| s.eq_ignore_ascii_case(want)))
        };
        let mut out: Vec<u32> = values
            .iter()
            .filter(|(value, _)| spelled(value))
            .flat_map(|(_, list)| list.iter().copied())
            .collect();
        out.sort_unstable();
        out.dedup();
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::document::{document, Fields, Offer};

    fn doc(id: &str, brand: &str, color: &str, platform: &str, price: f64) -> ProductDocument {
        document(
            id.to_string(),
            Fields {
                title: Some(format!("{brand} phone {color}")),
                brand: Some(brand.to_string()),
                color: Some(color.to_string()),
                ..Fields::default()
            },
            vec![Offer {
                platform: platform.to_string(),
                listing_id: format!("{platform}-{id}"),
                title: format!("{brand} phone {color}"),
                price_base: Some(price),
                stock: Some(1),
            }],
            &LearnedAliases::default(),
        )
    }

    #[test]
    fn postings_give_exactly_what_a_scan_of_every_document_gives() {
        let docs: Vec<ProductDocument> = (0..60)
            .map(|i| {
                doc(
                    &format!("G{i}"),
                    ["Apple", "Huawei", "Xiaomi"][i % 3],
                    ["black", "white", "purple", "blue"][i % 4],
                    ["taobao", "jd"][i % 2],
                    100.0 * i as f64,
                )
            })
            .collect();
        let postings = AttributePostings::new(&docs);
        let aliases = LearnedAliases::default();
        for expressions in [
            vec!["brand=huawei"],
            vec!["color=BLACK", "platform=jd"],
            vec!["brand=Apple", "price=..3000"],
            vec!["price>=2500"],
            vec!["brand=Nokia"],
            vec!["in_stock", "color=blue"],
        ] {
            let mut filters = Filters::default();
            for e in &expressions {
                filters.add(e).unwrap();
            }
            let scan: Vec<u32> = (0..docs.len() as u32)
                .filter(|&i| filters.passes(&docs[i as usize], &aliases))
                .collect();
            let got = postings.allowed(&filters, &docs, &aliases).unwrap();
            assert_eq!(got.positions, scan, "{expressions:?}");
            assert!(scan.iter().all(|&i| got.contains(i as usize)));
            assert_eq!(got.mask.iter().filter(|m| **m).count(), scan.len());
        }
        assert!(postings
            .allowed(&Filters::default(), &docs, &aliases)
            .is_none());
    }
}
