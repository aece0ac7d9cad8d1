//! Golden products: per-field rules over a cluster's listings, with the sources of each value.

use std::collections::BTreeMap;

use sha2::{Digest, Sha256};
use shopfuse_core::config::{FieldRule, ResolveConfig};
use shopfuse_core::Value;

use super::aliases::FieldAliases;
use super::{Listing, GOLDEN_FIELDS};
use shopfuse_core::linkage::Clustering;

/// A golden product's fields and where each came from.
pub struct Golden {
    pub id: String,
    /// Per field of [`GOLDEN_FIELDS`]: the value and the listings that supplied it.
    pub fields: Vec<(Value, FieldRule, Vec<usize>)>,
}

fn golden_id(first: &Listing) -> String {
    let digest = Sha256::digest(first.key().as_bytes());
    format!("GP{}", &hex::encode(digest)[..12])
}

pub(super) fn golden_products(
    listings: &[Listing],
    clustering: &Clustering,
    aliases: &FieldAliases,
    config: &ResolveConfig,
) -> Vec<Golden> {
    let rank = |l: &Listing| {
        config
            .source_priority
            .iter()
            .position(|p| *p == l.platform)
            .unwrap_or(usize::MAX)
    };
    let defaults = shopfuse_core::config::default_field_rules();
    clustering
        .members
        .iter()
        .map(|m| {
            let fields = GOLDEN_FIELDS
                .iter()
                .map(|&field| {
                    let rule = config
                        .fields
                        .get(field)
                        .or_else(|| defaults.get(field))
                        .copied()
                        .unwrap_or(FieldRule::Majority);
                    // (display value, comparison key, listing) of the listings that have one.
                    let values: Vec<(Value, String, usize)> = m
                        .iter()
                        .filter_map(|&i| {
                            let l = &listings[i];
                            let text = |v: Option<String>| {
                                v.map(|s| (Value::Text(s.clone()), s.to_lowercase()))
                            };
                            let v = match field {
                                "title" => text(Some(l.title.clone())),
                                "brand" => {
                                    text(l.brand.as_deref().map(|b| aliases.brand.canonical(b)))
                                }
                                "category" => text(
                                    l.category.as_deref().map(|c| aliases.category.canonical(c)),
                                ),
                                "model_code" => l
                                    .model_code
                                    .clone()
                                    .zip(l.model_key())
                                    .map(|(v, k)| (Value::Text(v), k)),
                                "gtin" => l
                                    .gtin
                                    .clone()
                                    .zip(l.gtin_key())
                                    .map(|(v, k)| (Value::Text(v), k)),
                                "color" => {
                                    text(l.color.as_deref().map(|c| aliases.color.canonical(c)))
                                }
                                "capacity" => text(l.capacity.clone()),
                                "price_base" => {
                                    l.price_base.map(|p| (Value::Float(p), format!("{p}")))
                                }
                                "listed_at" => {
                                    l.listed_at.map(|t| (Value::Timestamp(t), t.to_string()))
                                }
                                _ => None,
                            };
                            v.map(|(value, key)| (value, key, i))
                        })
                        .collect();
                    let (value, sources) = apply_rule(rule, &values, listings, &rank);
                    (value, rule, sources)
                })
                .collect();
            Golden {
                id: golden_id(&listings[m[0]]),
                fields,
            }
        })
        .collect()
}

/// The golden value of one field under `rule`, and the listings that supplied it.
fn apply_rule(
    rule: FieldRule,
    values: &[(Value, String, usize)],
    listings: &[Listing],
    rank: &dyn Fn(&Listing) -> usize,
) -> (Value, Vec<usize>) {
    if values.is_empty() {
        return (Value::Null, Vec::new());
    }
    // Ties always go to the more trusted platform, then the smaller listing id.
    let order =
        |x: &(Value, String, usize)| (rank(&listings[x.2]), listings[x.2].listing_id.clone());
    let pick = |best: &(Value, String, usize)| (best.0.clone(), vec![best.2]);
    match rule {
        FieldRule::SourcePriority => {
            pick(values.iter().min_by_key(|x| order(x)).expect("non-empty"))
        }
        FieldRule::MostRecent => pick(
            values
                .iter()
                .min_by_key(|x| (std::cmp::Reverse(listings[x.2].listed_at), order(x)))
                .expect("non-empty"),
        ),
        FieldRule::MostComplete => pick(
            values
                .iter()
                .min_by_key(|x| (std::cmp::Reverse(x.0.render().chars().count()), order(x)))
                .expect("non-empty"),
        ),
        FieldRule::Majority => {
            let mut votes: BTreeMap<&str, Vec<&(Value, String, usize)>> = BTreeMap::new();
            for v in values {
                votes.entry(v.1.as_str()).or_default().push(v);
            }
            let winners = votes
                .values()
                .min_by_key(|vs| {
                    (
                        std::cmp::Reverse(vs.len()),
                        vs.iter().map(|x| order(x)).min(),
                    )
                })
                .expect("non-empty");
            let best = winners.iter().min_by_key(|x| order(x)).expect("non-empty");
            (best.0.clone(), winners.iter().map(|x| x.2).collect())
        }
        FieldRule::Median => {
            let mut nums: Vec<(f64, usize)> = values
                .iter()
                .filter_map(|x| x.0.as_f64().map(|v| (v, x.2)))
                .collect();
            if nums.is_empty() {
                return (Value::Null, Vec::new());
            }
            nums.sort_by(|a, b| a.0.total_cmp(&b.0));
            let mid = nums.len() / 2;
            let median = if nums.len() % 2 == 1 {
                nums[mid].0
            } else {
                (nums[mid - 1].0 + nums[mid].0) / 2.0
            };
            (Value::Float(median), nums.iter().map(|x| x.1).collect())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn majority_and_median_rules_keep_their_sources() {
        let l = |p: &str, id: &str| Listing {
            platform: p.into(),
            listing_id: id.into(),
            title: String::new(),
            brand: None,
            category: None,
            model_code: None,
            gtin: None,
            color: None,
            capacity: None,
            price: None,
            currency: None,
            price_base: None,
            stock: None,
            url: None,
            listed_at: None,
            file: "f".into(),
            row: 1,
        };
        let listings = vec![l("amazon", "a"), l("jd", "b"), l("taobao", "c")];
        let order = ["amazon", "jd", "taobao"];
        let rank = |x: &Listing| order.iter().position(|p| *p == x.platform).unwrap();
        let v = |s: &str, i: usize| (Value::Text(s.into()), s.to_lowercase(), i);
        let (value, src) = apply_rule(
            FieldRule::Majority,
            &[v("blue", 0), v("Black", 1), v("black", 2)],
            &listings,
            &rank,
        );
        assert_eq!((value, src), (Value::Text("Black".into()), vec![1, 2]));
        let (value, src) = apply_rule(
            FieldRule::SourcePriority,
            &[v("x", 2), v("y", 1)],
            &listings,
            &rank,
        );
        assert_eq!((value, src), (Value::Text("y".into()), vec![1]));
        let f = |x: f64, i: usize| (Value::Float(x), format!("{x}"), i);
        let (value, src) = apply_rule(
            FieldRule::Median,
            &[f(3.0, 0), f(1.0, 1), f(10.0, 2)],
            &listings,
            &rank,
        );
        assert_eq!((value, src.len()), (Value::Float(3.0), 3));
    }
}
