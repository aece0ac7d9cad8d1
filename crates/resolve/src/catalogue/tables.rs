//! The stage's tables: candidates, clusters, golden products, provenance, offers, aliases.

use std::collections::BTreeSet;

use arrow::datatypes::SchemaRef;
use shopfuse_core::value::rows_to_batch;
use shopfuse_core::{Transaction, Value};

use super::aliases::FieldAliases;
use super::golden::Golden;
use super::*;
use crate::blocking::{BY_EMBEDDING, BY_IDENTIFIER, BY_TOKEN};
use shopfuse_core::linkage::Clustering;

fn blockers(reasons: u8) -> String {
    let mut out = Vec::new();
    for (bit, name) in [
        (BY_IDENTIFIER, "identifier"),
        (BY_TOKEN, "token"),
        (BY_EMBEDDING, "embedding"),
    ] {
        if reasons & bit != 0 {
            out.push(name);
        }
    }
    if out.is_empty() {
        out.push("review");
    }
    out.join(",")
}

/// Rows per row group of the streamed tables.
const ROWS_PER_GROUP: usize = 131_072;

/// Makes the rows of `items` items (`rows_of(k, out)` pushes item k's rows, any number) the
/// whole content of `table`, one row group of about [`ROWS_PER_GROUP`] rows at a time: at a
/// million listings the candidate pairs alone are ~17 million rows, which as `Value`s plus
/// their Arrow copy were the resolve stage's peak memory.
fn replace_streamed(
    tx: &mut Transaction<'_>,
    table: &str,
    schema: &SchemaRef,
    items: usize,
    mut rows_of: impl FnMut(usize, &mut Vec<Vec<Value>>),
) -> Result<(), ResolveError> {
    let mut next = 0;
    let mut first = true;
    let batches = std::iter::from_fn(|| {
        // An empty table still gets one (empty) batch, so it exists with its schema.
        if next >= items && !first {
            return None;
        }
        first = false;
        let mut rows = Vec::new();
        while next < items && rows.len() < ROWS_PER_GROUP {
            rows_of(next, &mut rows);
            next += 1;
        }
        Some(rows_to_batch(schema, &rows))
    });
    tx.replace_streamed(table, schema, batches)?;
    Ok(())
}

shopfuse_core::table! {
    /// One row per candidate pair of listings on different platforms: its match probability,
    /// how it was proposed and what drove the decision.
    pub mod resolve_candidates("resolve_candidates") {
        /// Platform of the first listing.
        left_platform: Text;
        /// The first listing's id on its platform.
        left_listing_id: Text;
        /// Platform of the second listing.
        right_platform: Text;
        /// The second listing's id on its platform.
        right_listing_id: Text;
        /// The blockers that proposed the pair: identifier, token, embedding (or review).
        blockers: Text;
        /// The matcher's probability that both listings are one product.
        match_probability: Float;
        /// The run's match threshold (middle of the best-F1 plateau on held-out pairs).
        threshold: Float;
        /// Where the pair's label came from: gtin, review, or none (scored only).
        label_source: Text;
        /// Whether the clustering put both listings into one golden product.
        same_cluster: Bool;
        /// The three features that moved the probability most.
        drivers: Text null;
    }
}

shopfuse_core::table! {
    /// One row per listing: the golden product (cluster) it belongs to.
    pub mod product_clusters("product_clusters") {
        /// Golden product id (GP…).
        golden_id: Text;
        /// The listing's platform.
        platform: Text;
        /// The listing's id on its platform.
        listing_id: Text;
        /// Listings in the cluster.
        cluster_size: Int;
        /// Lowest match probability among the cluster's scored internal pairs.
        cohesion: Float null;
        /// The merges that built the cluster, in order.
        explanation: Text null;
    }
}

shopfuse_core::table! {
    /// One row per golden product: the fused record of one real product across platforms,
    /// each field chosen by its `[resolve.fields]` rule (see golden_provenance).
    pub mod golden_products("golden_products") {
        /// Golden product id (GP…).
        golden_id: Text;
        /// Title, from the most trusted source by default.
        title: Text null;
        /// Brand (majority by default).
        brand: Text null;
        /// Category.
        category: Text null;
        /// Manufacturer model code.
        model_code: Text null;
        /// GTIN / EAN / UPC.
        gtin: Text null;
        /// Colour, in canonical form.
        color: Text null;
        /// Capacity, in canonical form ("256GB").
        capacity: Text null;
        /// Price in the base currency (median of the offers by default).
        price_base: Float null;
        /// Listing date (most recent by default).
        listed_at: Timestamp null;
        /// Listings fused into the product.
        listings: Int;
        /// Platforms it is listed on, comma-separated.
        platforms: Text;
        /// Lowest offer price in the base currency.
        min_price_base: Float null;
        /// Highest offer price in the base currency.
        max_price_base: Float null;
    }
}

shopfuse_core::table! {
    /// One row per golden product field and listing that supplied its value.
    pub mod golden_provenance("golden_provenance") {
        /// Golden product id.
        golden_id: Text;
        /// The golden field (title, brand, …).
        field: Text;
        /// The chosen value, as text.
        value: Text null;
        /// The rule that chose it (source_priority, majority, median, …).
        rule: Text;
        /// Platform of the supplying listing.
        platform: Text;
        /// The supplying listing's id.
        listing_id: Text;
        /// Source file of the listing's row.
        _file: Text;
        /// Row of that file.
        _row: Int;
    }
}

shopfuse_core::table! {
    /// One row per listing: what each platform offers a golden product at.
    pub mod offers("offers") {
        /// Golden product id.
        golden_id: Text;
        /// The listing's platform.
        platform: Text;
        /// The listing's id on its platform.
        listing_id: Text;
        /// The listing's own title (Chinese or English).
        title: Text;
        /// Price in the listing's currency.
        price: Float null;
        /// The listing's currency.
        currency: Text null;
        /// Price in the base currency.
        price_base: Float null;
        /// The project's base currency.
        base_currency: Text;
        /// Units in stock.
        stock: Int null;
        /// The listing's page.
        url: Text null;
        /// When it was listed.
        listed_at: Timestamp null;
        /// Source file of the listing's row.
        _file: Text;
        /// Row of that file.
        _row: Int;
    }
}

shopfuse_core::table! {
    /// One row per learned value alias: a platform's spelling and the canonical value it
    /// means (蓝色 = blue), learned from listings linked by GTIN.
    pub mod resolve_aliases("resolve_aliases") {
        /// brand, category or color.
        field: Text;
        /// The spelling as listings write it.
        value: Text;
        /// The canonical value.
        canonical: Text;
        /// Linked listing pairs that support the alias.
        support: Int;
    }
}

shopfuse_core::table! {
    /// One row per reviewed candidate pair (`shopfuse review import`): a must-link or
    /// cannot-link and a training label on the next run.
    pub mod review_labels("review_labels") {
        /// Platform of the first listing.
        left_platform: Text;
        /// The first listing's id.
        left_listing_id: Text;
        /// Platform of the second listing.
        right_platform: Text;
        /// The second listing's id.
        right_listing_id: Text;
        /// The reviewer's decision.
        is_match: Bool;
        /// When it was imported.
        labelled_at: Text null;
        /// The file it was imported from.
        source_file: Text null;
    }
}

pub(super) fn write_tables(
    tx: &mut Transaction<'_>,
    listings: &[Listing],
    scored: &Scored,
    clustering: &Clustering,
    golden: &[Golden],
    aliases: &FieldAliases,
    base_currency: &str,
) -> Result<(), ResolveError> {
    write_candidates(tx, listings, scored, clustering)?;
    write_clusters(tx, listings, clustering, golden)?;
    write_golden(tx, listings, clustering, golden)?;
    write_provenance(tx, listings, golden)?;
    write_offers(tx, listings, clustering, golden, base_currency)?;
    write_aliases(tx, aliases)
}

fn write_candidates(
    tx: &mut Transaction<'_>,
    listings: &[Listing],
    scored: &Scored,
    clustering: &Clustering,
) -> Result<(), ResolveError> {
    let s = resolve_candidates::TABLE.schema();
    replace_streamed(
        tx,
        resolve_candidates::NAME,
        &s,
        scored.ids.len(),
        |k, out| {
            let (i, j) = scored.ids[k];
            let (a, b) = (&listings[i], &listings[j]);
            out.push(vec![
                Value::text(&a.platform),
                Value::text(&a.listing_id),
                Value::text(&b.platform),
                Value::text(&b.listing_id),
                Value::Text(blockers(scored.reasons[k])),
                Value::Float(scored.probability[k]),
                Value::Float(scored.threshold),
                Value::text(scored.label_source[k]),
                Value::Bool(clustering.cluster_of[i] == clustering.cluster_of[j]),
                if scored.drivers[k].is_empty() {
                    Value::Null
                } else {
                    Value::Text(scored.drivers[k].clone())
                },
            ]);
        },
    )?;
    Ok(())
}

fn write_clusters(
    tx: &mut Transaction<'_>,
    listings: &[Listing],
    clustering: &Clustering,
    golden: &[Golden],
) -> Result<(), ResolveError> {
    let s = product_clusters::TABLE.schema();
    replace_streamed(
        tx,
        product_clusters::NAME,
        &s,
        clustering.members.len(),
        |c, rows| {
            let m = &clustering.members[c];
            let explanation = clustering.steps[c].join(" | ");
            for &i in m {
                rows.push(vec![
                    Value::text(&golden[c].id),
                    Value::text(&listings[i].platform),
                    Value::text(&listings[i].listing_id),
                    Value::Int(m.len() as i64),
                    clustering.cohesion[c].map_or(Value::Null, Value::Float),
                    if explanation.is_empty() {
                        Value::Null
                    } else {
                        Value::Text(explanation.clone())
                    },
                ]);
            }
        },
    )?;
    Ok(())
}

fn write_golden(
    tx: &mut Transaction<'_>,
    listings: &[Listing],
    clustering: &Clustering,
    golden: &[Golden],
) -> Result<(), ResolveError> {
    let s = golden_products::TABLE.schema();
    replace_streamed(tx, golden_products::NAME, &s, golden.len(), |c, rows| {
        let (g, m) = (&golden[c], &clustering.members[c]);
        let mut row = vec![Value::text(&g.id)];
        // One column per golden field, as the schema lists them.
        row.extend(
            GOLDEN_FIELDS
                .iter()
                .zip(&g.fields)
                .map(|(_, (value, _, _))| value.clone()),
        );
        let platforms: BTreeSet<&str> = m.iter().map(|&i| listings[i].platform.as_str()).collect();
        let prices: Vec<f64> = m.iter().filter_map(|&i| listings[i].price_base).collect();
        row.extend([
            Value::Int(m.len() as i64),
            Value::Text(platforms.into_iter().collect::<Vec<_>>().join(",")),
            prices
                .iter()
                .copied()
                .reduce(f64::min)
                .map_or(Value::Null, Value::Float),
            prices
                .iter()
                .copied()
                .reduce(f64::max)
                .map_or(Value::Null, Value::Float),
        ]);
        rows.push(row);
    })?;
    Ok(())
}

fn write_provenance(
    tx: &mut Transaction<'_>,
    listings: &[Listing],
    golden: &[Golden],
) -> Result<(), ResolveError> {
    let s = golden_provenance::TABLE.schema();
    replace_streamed(tx, golden_provenance::NAME, &s, golden.len(), |c, prov| {
        let g = &golden[c];
        for (f, (value, rule, sources)) in GOLDEN_FIELDS.iter().zip(&g.fields) {
            let rule = serde_json::to_value(rule)
                .ok()
                .and_then(|v| v.as_str().map(String::from))
                .unwrap_or_default();
            for &i in sources {
                let l = &listings[i];
                prov.push(vec![
                    Value::text(&g.id),
                    Value::text(f),
                    Value::Text(value.render()),
                    Value::Text(rule.clone()),
                    Value::text(&l.platform),
                    Value::text(&l.listing_id),
                    Value::text(&l.file),
                    Value::Int(l.row),
                ]);
            }
        }
    })?;
    Ok(())
}

fn write_offers(
    tx: &mut Transaction<'_>,
    listings: &[Listing],
    clustering: &Clustering,
    golden: &[Golden],
    base_currency: &str,
) -> Result<(), ResolveError> {
    let s = offers::TABLE.schema();
    replace_streamed(tx, offers::NAME, &s, listings.len(), |i, rows| {
        let l = &listings[i];
        rows.push(vec![
            Value::text(&golden[clustering.cluster_of[i]].id),
            Value::text(&l.platform),
            Value::text(&l.listing_id),
            Value::text(&l.title),
            l.price.map_or(Value::Null, Value::Float),
            Value::opt_text(&l.currency),
            l.price_base.map_or(Value::Null, Value::Float),
            Value::text(base_currency),
            l.stock.map_or(Value::Null, Value::Int),
            Value::opt_text(&l.url),
            l.listed_at.map_or(Value::Null, Value::Timestamp),
            Value::text(&l.file),
            Value::Int(l.row),
        ]);
    })?;
    Ok(())
}

fn write_aliases(tx: &mut Transaction<'_>, aliases: &FieldAliases) -> Result<(), ResolveError> {
    let s = resolve_aliases::TABLE.schema();
    let mut rows = aliases.brand.rows("brand");
    rows.extend(aliases.category.rows("category"));
    rows.extend(aliases.color.rows("color"));
    tx.replace(resolve_aliases::NAME, &s, &[rows_to_batch(&s, &rows)?])?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn golden_fields_are_the_declared_columns_after_the_id() {
        let table = golden_products::TABLE;
        let columns: Vec<&str> = table.columns[1..=GOLDEN_FIELDS.len()]
            .iter()
            .map(|c| c.name.as_ref())
            .collect();
        assert_eq!(columns, GOLDEN_FIELDS);
    }
}
