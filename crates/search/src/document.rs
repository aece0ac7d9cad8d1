//! [`ProductDocument`]: what the index knows of one golden product, and the `search_documents`
//! table that holds them between the `search` stage and every reader.
//!
//! The table is the source of truth; the tantivy index and the vector index under
//! `.shopfuse/search/` are derived from it and re-synced whenever they disagree with it, so a
//! crash between the two can never leave a search answering from a catalogue that is not the
//! committed one.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;

use arrow::array::{
    Array, ArrayRef, FixedSizeListArray, Float32Array, Float64Array, Int64Array, RecordBatch,
    StringArray,
};
use arrow::datatypes::{DataType, Field};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use shopfuse_core::encoder::Embeddings;
use shopfuse_core::value::NamedRows;
use shopfuse_core::Transaction;
use shopfuse_resolve::catalogue::{golden_products, offers, resolve_aliases};

use crate::attributes::colour_words;
use crate::SearchError;

shopfuse_core::table! {
    /// One row per golden product as the search index sees it: every offer's title, the
    /// attributes filters use, the best offer per platform and the product's vector.
    pub mod search_documents("search_documents") {
        /// Golden product id (GP…).
        golden_id: Text;
        /// The golden title.
        title: Text null;
        /// Brand.
        brand: Text null;
        /// Category.
        category: Text null;
        /// Manufacturer model code.
        model_code: Text null;
        /// Colour, canonical (black, blue …).
        color: Text null;
        /// Capacity, canonical (256GB …).
        capacity: Text null;
        /// Platforms it is offered on, comma-separated.
        platforms: Text;
        /// Lowest offer price in the base currency.
        min_price_base: Float null;
        /// Units in stock over every platform; null when no offer reports stock.
        stock: Int null;
        /// The text the lexical index reads: every offer title, brand, category, model code
        /// and the attribute words in both languages, one per line.
        text: Text;
        /// Every offer as JSON: platform, listing_id, title, price_base, stock.
        offers: Text;
        /// SHA-256 of everything above: what the incremental index update compares.
        content_hash: Text;
        /// The product's unit vector: the mean of its titles' encoder vectors, renormalised.
        vector: Vector;
    }
}

/// One platform's listing of a product, as the search shows it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Offer {
    pub platform: String,
    pub listing_id: String,
    pub title: String,
    pub price_base: Option<f64>,
    pub stock: Option<i64>,
}

/// One golden product in the index.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProductDocument {
    pub golden_id: String,
    pub title: Option<String>,
    pub brand: Option<String>,
    pub category: Option<String>,
    pub model_code: Option<String>,
    pub color: Option<String>,
    pub capacity: Option<String>,
    pub platforms: Vec<String>,
    pub min_price_base: Option<f64>,
    pub stock: Option<i64>,
    pub text: String,
    pub offers: Vec<Offer>,
    pub content_hash: String,
    #[serde(skip)]
    pub vector: Vec<f32>,
}

impl ProductDocument {
    /// The texts whose vectors make the product's vector: its distinct titles.
    pub fn embedding_texts(&self) -> Vec<&str> {
        let mut seen = BTreeSet::new();
        self.title
            .iter()
            .map(String::as_str)
            .chain(self.offers.iter().map(|o| o.title.as_str()))
            .filter(|t| !t.trim().is_empty() && seen.insert(*t))
            .collect()
    }

    /// The cheapest offer of each platform.
    pub fn best_offers(&self) -> Vec<&Offer> {
        let mut best: BTreeMap<&str, &Offer> = BTreeMap::new();
        for o in &self.offers {
            let cheaper = |b: &&Offer| {
                o.price_base.unwrap_or(f64::INFINITY) < b.price_base.unwrap_or(f64::INFINITY)
            };
            match best.get(o.platform.as_str()) {
                Some(b) if !cheaper(b) => {}
                _ => {
                    best.insert(&o.platform, o);
                }
            }
        }
        best.into_values().collect()
    }

    pub fn in_stock(&self) -> bool {
        self.stock.is_some_and(|s| s > 0)
    }

    fn hash(&self) -> String {
        let mut h = Sha256::new();
        let fields = serde_json::to_string(&(
            &self.golden_id,
            &self.title,
            &self.brand,
            &self.category,
            &self.model_code,
            &self.color,
            &self.capacity,
            &self.platforms,
            self.min_price_base,
            self.stock,
            &self.text,
            &self.offers,
        ))
        .expect("a document serialises");
        h.update(fields.as_bytes());
        hex::encode(&h.finalize()[..16])
    }
}

/// Spellings of one canonical value the resolve stage learned (蓝色 = blue), per field.
#[derive(Debug, Clone, Default)]
pub struct LearnedAliases {
    by_field: HashMap<String, HashMap<String, BTreeSet<String>>>,
}

impl LearnedAliases {
    pub fn from_rows(rows: Option<&NamedRows>) -> Self {
        let mut out = LearnedAliases::default();
        for row in rows.map(|r| r.rows.as_slice()).unwrap_or_default() {
            let rows = rows.expect("rows exist when iterated");
            let (Some(field), Some(value), Some(canonical)) = (
                rows.str(row, resolve_aliases::field),
                rows.str(row, resolve_aliases::value),
                rows.str(row, resolve_aliases::canonical),
            ) else {
                continue;
            };
            out.add(field, canonical, value);
        }
        out
    }

    pub fn add(&mut self, field: &str, canonical: &str, spelling: &str) {
        self.by_field
            .entry(field.to_string())
            .or_default()
            .entry(canonical.to_lowercase())
            .or_default()
            .insert(spelling.to_string());
    }

    /// Every spelling of `canonical` in `field` the project has seen.
    pub fn spellings(&self, field: &str, canonical: &str) -> Vec<&str> {
        self.by_field
            .get(field)
            .and_then(|m| m.get(&canonical.to_lowercase()))
            .map(|s| s.iter().map(String::as_str).collect())
            .unwrap_or_default()
    }

    /// (spelling, canonical) of every alias of `field`.
    pub fn pairs(&self, field: &str) -> Vec<(String, String)> {
        self.by_field
            .get(field)
            .map(|m| {
                m.iter()
                    .flat_map(|(c, s)| s.iter().map(move |s| (s.clone(), c.clone())))
                    .collect()
            })
            .unwrap_or_default()
    }
}

/// Reads a table's columns (a transaction's or the committed store's).
pub type ReadTable<'a> = &'a dyn Fn(&str, &[&str]) -> shopfuse_core::Result<Option<NamedRows>>;

/// The aliases the resolve stage learned (none when it has not run).
pub fn read_aliases(read: ReadTable<'_>) -> Result<LearnedAliases, SearchError> {
    let rows = read(
        resolve_aliases::NAME,
        &[
            resolve_aliases::field,
            resolve_aliases::value,
            resolve_aliases::canonical,
        ],
    )?;
    Ok(LearnedAliases::from_rows(rows.as_ref()))
}

/// The documents of every golden product, without vectors.
pub fn build_documents(read: ReadTable<'_>) -> Result<Vec<ProductDocument>, SearchError> {
    let golden = read(
        golden_products::NAME,
        &[
            golden_products::golden_id,
            golden_products::title,
            golden_products::brand,
            golden_products::category,
            golden_products::model_code,
            golden_products::color,
            golden_products::capacity,
            golden_products::min_price_base,
        ],
    )?
    .ok_or(SearchError::NoCatalogue)?;
    let offer_rows = read(
        offers::NAME,
        &[
            offers::golden_id,
            offers::platform,
            offers::listing_id,
            offers::title,
            offers::price_base,
            offers::stock,
        ],
    )?
    .unwrap_or_default();
    let aliases = read_aliases(read)?;
    let mut offers_of: HashMap<String, Vec<Offer>> = HashMap::new();
    for row in &offer_rows.rows {
        let r = &offer_rows;
        let Some(golden_id) = r.text(row, offers::golden_id) else {
            continue;
        };
        offers_of.entry(golden_id).or_default().push(Offer {
            platform: r.text(row, offers::platform).unwrap_or_default(),
            listing_id: r.text(row, offers::listing_id).unwrap_or_default(),
            title: r.text(row, offers::title).unwrap_or_default(),
            price_base: r.f64(row, offers::price_base),
            stock: r.i64(row, offers::stock),
        });
    }
    let mut docs: Vec<ProductDocument> = golden
        .rows
        .iter()
        .filter_map(|row| {
            let g = &golden;
            let golden_id = g.text(row, golden_products::golden_id)?;
            let mut offers = offers_of.remove(&golden_id).unwrap_or_default();
            offers.sort_by(|a, b| (&a.platform, &a.listing_id).cmp(&(&b.platform, &b.listing_id)));
            Some(document(
                golden_id,
                Fields {
                    title: g.text(row, golden_products::title),
                    brand: g.text(row, golden_products::brand),
                    category: g.text(row, golden_products::category),
                    model_code: g.text(row, golden_products::model_code),
                    color: g
                        .text(row, golden_products::color)
                        .map(|c| c.to_lowercase()),
                    capacity: g.text(row, golden_products::capacity),
                    min_price_base: g.f64(row, golden_products::min_price_base),
                },
                offers,
                &aliases,
            ))
        })
        .collect();
    docs.sort_by(|a, b| a.golden_id.cmp(&b.golden_id));
    Ok(docs)
}

/// A golden record's own fields.
#[derive(Debug, Clone, Default)]
pub struct Fields {
    pub title: Option<String>,
    pub brand: Option<String>,
    pub category: Option<String>,
    pub model_code: Option<String>,
    pub color: Option<String>,
    pub capacity: Option<String>,
    pub min_price_base: Option<f64>,
}

/// A document from a golden record and its offers; the lexical text gets every learned and
/// built-in spelling of its brand, category and colour, so "purple" finds a product only
/// ever listed as "紫色".
pub fn document(
    golden_id: String,
    fields: Fields,
    offers: Vec<Offer>,
    aliases: &LearnedAliases,
) -> ProductDocument {
    let mut lines: Vec<String> = Vec::new();
    let mut push = |s: &str| {
        if !s.trim().is_empty() && !lines.iter().any(|l| l == s) {
            lines.push(s.to_string());
        }
    };
    for t in fields
        .title
        .iter()
        .map(String::as_str)
        .chain(offers.iter().map(|o| o.title.as_str()))
    {
        push(t);
    }
    for (field, value) in [
        ("brand", &fields.brand),
        ("category", &fields.category),
        ("color", &fields.color),
    ] {
        let Some(value) = value else { continue };
        push(value);
        for s in aliases.spellings(field, value) {
            push(s);
        }
        if field == "color" {
            for w in colour_words(value) {
                push(w);
            }
        }
    }
    for v in [&fields.model_code, &fields.capacity].into_iter().flatten() {
        push(v);
    }
    let mut platforms: Vec<String> = offers.iter().map(|o| o.platform.clone()).collect();
    platforms.sort();
    platforms.dedup();
    let stocks: Vec<i64> = offers.iter().filter_map(|o| o.stock).collect();
    let min_offer = offers
        .iter()
        .filter_map(|o| o.price_base)
        .fold(None, |m: Option<f64>, p| Some(m.map_or(p, |m| m.min(p))));
    let mut doc = ProductDocument {
        golden_id,
        title: fields.title,
        brand: fields.brand,
        category: fields.category,
        model_code: fields.model_code,
        color: fields.color,
        capacity: fields.capacity,
        platforms,
        min_price_base: fields.min_price_base.or(min_offer),
        stock: (!stocks.is_empty()).then(|| stocks.iter().sum()),
        text: lines.join("\n"),
        offers,
        content_hash: String::new(),
        vector: Vec::new(),
    };
    doc.content_hash = doc.hash();
    doc
}

/// Gives each document its vector: the mean of its titles' vectors, renormalised.
/// `embed` returns one unit vector per text (the pipeline passes its embedding cache).
pub fn attach_vectors(
    docs: &mut [ProductDocument],
    embed: &mut dyn FnMut(&[&str]) -> Result<Embeddings, SearchError>,
) -> Result<(), SearchError> {
    let mut texts: Vec<&str> = Vec::new();
    let mut spans = Vec::with_capacity(docs.len());
    for d in docs.iter() {
        let t = d.embedding_texts();
        spans.push((texts.len(), t.len()));
        texts.extend(t);
    }
    let texts: Vec<String> = texts.into_iter().map(str::to_string).collect();
    let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
    let vectors = embed(&refs)?;
    for (d, (start, n)) in docs.iter_mut().zip(spans) {
        let mut v = vec![0f32; vectors.dim()];
        for i in start..start + n {
            for (a, b) in v.iter_mut().zip(vectors.row(i)) {
                *a += b;
            }
        }
        normalise(&mut v);
        d.vector = v;
    }
    Ok(())
}

pub(crate) fn normalise(v: &mut [f32]) {
    let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt();
    if norm > 0.0 {
        v.iter_mut().for_each(|x| *x /= norm);
    }
}

/// Makes `docs` the whole content of `search_documents`.
pub fn write_documents(
    tx: &mut Transaction<'_>,
    docs: &[ProductDocument],
) -> Result<(), SearchError> {
    let dim = docs.first().map_or(1, |d| d.vector.len().max(1));
    let schema = search_documents::TABLE.schema_with_vectors(dim as i32);
    let text = |f: &dyn Fn(&ProductDocument) -> Option<String>| -> ArrayRef {
        Arc::new(StringArray::from(docs.iter().map(f).collect::<Vec<_>>()))
    };
    let mut flat = Vec::with_capacity(docs.len() * dim);
    for d in docs {
        if d.vector.len() != dim {
            return Err(SearchError::Vectors(format!(
                "{} has a vector of {} floats, the others {dim}",
                d.golden_id,
                d.vector.len()
            )));
        }
        flat.extend_from_slice(&d.vector);
    }
    let vectors = FixedSizeListArray::try_new(
        Arc::new(Field::new("item", DataType::Float32, false)),
        dim as i32,
        Arc::new(Float32Array::from(flat)),
        None,
    )?;
    let columns: Vec<ArrayRef> = vec![
        text(&|d| Some(d.golden_id.clone())),
        text(&|d| d.title.clone()),
        text(&|d| d.brand.clone()),
        text(&|d| d.category.clone()),
        text(&|d| d.model_code.clone()),
        text(&|d| d.color.clone()),
        text(&|d| d.capacity.clone()),
        text(&|d| Some(d.platforms.join(","))),
        Arc::new(Float64Array::from(
            docs.iter().map(|d| d.min_price_base).collect::<Vec<_>>(),
        )),
        Arc::new(Int64Array::from(
            docs.iter().map(|d| d.stock).collect::<Vec<_>>(),
        )),
        text(&|d| Some(d.text.clone())),
        text(&|d| Some(serde_json::to_string(&d.offers).expect("offers serialise"))),
        text(&|d| Some(d.content_hash.clone())),
        Arc::new(vectors),
    ];
    let batch = RecordBatch::try_new(schema.clone(), columns)?;
    tx.replace(search_documents::NAME, &schema, &[batch])?;
    Ok(())
}

/// The documents of `search_documents`, with their vectors, from its record batches.
pub fn read_documents(batches: &[RecordBatch]) -> Result<Vec<ProductDocument>, SearchError> {
    let mut out = Vec::new();
    for b in batches {
        out.extend(documents_of_batch(b)?);
    }
    Ok(out)
}

fn documents_of_batch(b: &RecordBatch) -> Result<Vec<ProductDocument>, SearchError> {
    let layout = |c: &str| SearchError::Layout(format!("column {c} is missing or mistyped"));
    let text = |c: &'static str| -> Result<&StringArray, SearchError> {
        b.column_by_name(c)
            .and_then(|a| a.as_any().downcast_ref::<StringArray>())
            .ok_or_else(|| layout(c))
    };
    let opt = |a: &StringArray, i: usize| a.is_valid(i).then(|| a.value(i).to_string());
    let price = b
        .column_by_name(search_documents::min_price_base)
        .and_then(|a| a.as_any().downcast_ref::<Float64Array>())
        .ok_or_else(|| layout(search_documents::min_price_base))?;
    let stock = b
        .column_by_name(search_documents::stock)
        .and_then(|a| a.as_any().downcast_ref::<Int64Array>())
        .ok_or_else(|| layout(search_documents::stock))?;
    let vectors = b
        .column_by_name(search_documents::vector)
        .and_then(|a| a.as_any().downcast_ref::<FixedSizeListArray>())
        .ok_or_else(|| layout(search_documents::vector))?;
    let dim = vectors.value_length() as usize;
    let floats = vectors
        .values()
        .as_any()
        .downcast_ref::<Float32Array>()
        .ok_or_else(|| layout(search_documents::vector))?;
    let (ids, titles, brands, cats, codes, colors, caps, platforms, texts, offers, hashes) = (
        text(search_documents::golden_id)?,
        text(search_documents::title)?,
        text(search_documents::brand)?,
        text(search_documents::category)?,
        text(search_documents::model_code)?,
        text(search_documents::color)?,
        text(search_documents::capacity)?,
        text(search_documents::platforms)?,
        text(search_documents::text)?,
        text(search_documents::offers)?,
        text(search_documents::content_hash)?,
    );
    (0..b.num_rows())
        .map(|i| {
            let offers: Vec<Offer> = serde_json::from_str(offers.value(i)).map_err(|e| {
                SearchError::Layout(format!(
                    "row {i}: offers is not the JSON this version writes: {e}"
                ))
            })?;
            let start = vectors.value_offset(i) as usize;
            Ok(ProductDocument {
                golden_id: ids.value(i).to_string(),
                title: opt(titles, i),
                brand: opt(brands, i),
                category: opt(cats, i),
                model_code: opt(codes, i),
                color: opt(colors, i),
                capacity: opt(caps, i),
                platforms: platforms
                    .value(i)
                    .split(',')
                    .filter(|p| !p.is_empty())
                    .map(str::to_string)
                    .collect(),
                min_price_base: price.is_valid(i).then(|| price.value(i)),
                stock: stock.is_valid(i).then(|| stock.value(i)),
                text: texts.value(i).to_string(),
                offers,
                content_hash: hashes.value(i).to_string(),
                vector: floats.values()[start..start + dim].to_vec(),
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn offer(platform: &str, title: &str, price: f64, stock: i64) -> Offer {
        Offer {
            platform: platform.into(),
            listing_id: format!("{platform}-1"),
            title: title.into(),
            price_base: Some(price),
            stock: Some(stock),
        }
    }

    #[test]
    fn the_text_carries_both_languages_of_the_colour_and_the_learned_aliases() {
        let mut aliases = LearnedAliases::default();
        aliases.add("brand", "Huawei", "华为");
        let doc = document(
            "GP1".into(),
            Fields {
                title: Some("Huawei Mate 50 256GB Purple".into()),
                brand: Some("Huawei".into()),
                category: None,
                model_code: None,
                color: Some("purple".into()),
                capacity: Some("256GB".into()),
                min_price_base: None,
            },
            vec![
                offer("taobao", "华为 Mate 50 256G 紫色", 5000.0, 3),
                offer("jd", "华为 Mate 50 256G 紫色 手机", 4900.0, 0),
            ],
            &aliases,
        );
        assert!(
            doc.text.contains("华为") && doc.text.contains("紫色"),
            "{}",
            doc.text
        );
        assert_eq!(doc.stock, Some(3));
        assert_eq!(doc.min_price_base, Some(4900.0));
        assert_eq!(doc.best_offers().len(), 2);
        assert_eq!(doc.embedding_texts().len(), 3);
        let mut other = doc.clone();
        other.stock = Some(4);
        assert_ne!(other.hash(), doc.hash());
    }
}
