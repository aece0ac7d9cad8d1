//! [`ServeIndex`]: the API's answers, built in memory from one committed version.
//!
//! Built once per version (at start, then after each commit), in a few seconds for a
//! project of 400 k accounts, so that every request is a map lookup. Everything in it comes
//! from the one manifest it was built from.

use std::collections::HashMap;
use std::sync::Arc;

use arrow::array::{Array, BooleanArray};
use serde::Serialize;
use shopfuse_core::config::RecsConfig;
use shopfuse_core::value::{NamedRows, TextColumn};
use shopfuse_core::{Manifest, TableStore, Value};
use shopfuse_identity::{customer_accounts, customers, identity_links};
use shopfuse_learn::recs::serve::{interactions, recommendations};
use shopfuse_resolve::catalogue::{golden_products, golden_provenance, offers, product_clusters};
use utoipa::ToSchema;

use crate::live::FoldIn;
use crate::ServeError;

/// A golden product as lists show it.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ProductSummary {
    pub golden_id: String,
    pub title: Option<String>,
    pub brand: Option<String>,
    pub category: Option<String>,
    /// Median offer price in the base currency.
    pub price_base: Option<f64>,
    pub min_price_base: Option<f64>,
    pub max_price_base: Option<f64>,
    pub platforms: Vec<String>,
    pub listings: i64,
}

/// One golden product with everything that built it.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ProductDetail {
    #[serde(flatten)]
    pub summary: ProductSummary,
    pub model_code: Option<String>,
    pub gtin: Option<String>,
    pub color: Option<String>,
    pub capacity: Option<String>,
    /// RFC 3339.
    pub listed_at: Option<String>,
    /// What each platform offers it at.
    pub offers: Vec<Offer>,
    /// Which listing supplied each golden field, by which rule.
    pub provenance: Vec<FieldSource>,
    /// The merges that built the product, in order (the matcher's explanations).
    pub merges: Option<String>,
    /// Lowest match probability among its scored internal pairs.
    pub cohesion: Option<f64>,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Offer {
    pub platform: String,
    pub listing_id: String,
    pub title: String,
    pub price: Option<f64>,
    pub currency: Option<String>,
    pub price_base: Option<f64>,
    pub stock: Option<i64>,
    pub url: Option<String>,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct FieldSource {
    pub field: String,
    pub value: Option<String>,
    pub rule: String,
    pub platform: String,
    pub listing_id: String,
}

/// One unified customer: the accounts it fused, its profile, and the evidence.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Customer {
    pub customer_id: String,
    pub accounts: Vec<CustomerAccount>,
    pub platforms: Vec<String>,
    pub city: Option<String>,
    pub first_seen: Option<String>,
    pub last_seen: Option<String>,
    /// Orders across platforms, refunds and cancellations left out.
    pub orders: i64,
    pub monetary_base: f64,
    pub recency_days: Option<f64>,
    pub r_score: Option<i64>,
    pub f_score: Option<i64>,
    pub m_score: Option<i64>,
    pub segment: String,
    pub events: i64,
    /// Up to three golden categories with their share of the interest.
    pub top_categories: Option<String>,
    /// The merges that built the customer, in order.
    pub merges: Option<String>,
    pub cohesion: Option<f64>,
    /// The identity links inside the customer, with the evidence that decided each.
    pub links: Vec<IdentityLink>,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct CustomerAccount {
    pub platform: String,
    pub account_id: String,
    pub city: Option<String>,
    pub registered_at: Option<String>,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct IdentityLink {
    /// `platform:account_id`.
    pub left: String,
    pub right: String,
    /// `deterministic` or `probabilistic`.
    pub link_type: String,
    pub match_probability: f64,
    /// "same phone", or the comparisons that moved the weight most.
    pub reason: String,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Recommendation {
    pub rank: i64,
    pub golden_id: String,
    pub title: String,
    pub score: f64,
    /// The history item that supports it most, or why a popular item.
    pub reason: String,
    /// hybrid, or popularity for customers without history.
    pub model: String,
}

/// A customer's committed interactions with one golden product, all platforms together.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct CommittedInteraction {
    pub golden_id: String,
    pub title: Option<String>,
    pub views: i64,
    pub favorites: i64,
    pub carts: i64,
    pub purchases: i64,
    pub platforms: Vec<String>,
    pub first_at: Option<String>,
    pub last_at: Option<String>,
}

/// (platform, account id) → customer id.
type AccountMap = HashMap<(String, String), String>;

/// Everything the API answers from, as of one committed version.
#[derive(Debug, Default)]
pub struct ServeIndex {
    pub version: u64,
    pub committed_at: Option<String>,
    /// Golden products in id order.
    pub products: Vec<Arc<ProductDetail>>,
    product_at: HashMap<String, usize>,
    /// (platform, listing id) → golden id.
    listing: HashMap<(String, String), String>,
    customers: HashMap<String, Arc<Customer>>,
    /// (platform, account id) → customer id.
    account: AccountMap,
    recommendations: HashMap<String, Vec<Recommendation>>,
    interactions: HashMap<String, Vec<CommittedInteraction>>,
    /// Item-kNN over the committed interactions (items are positions in `products`); `None`
    /// when the version has no interactions.
    pub fold_in: Option<FoldIn>,
}

impl ServeIndex {
    /// Builds the index from the version `manifest` describes; `recs` weighs events for the
    /// fold-in model as training did.
    pub fn build(
        store: &TableStore,
        manifest: &Manifest,
        recs: &RecsConfig,
    ) -> Result<Self, ServeError> {
        let read = |table: &'static str| -> Result<NamedRows, ServeError> {
            let (schema, batches) = store
                .read_at(manifest, table)?
                .ok_or(ServeError::MissingTable { table })?;
            Ok(NamedRows::from_batches(&schema, &batches)?)
        };
        let mut index = ServeIndex {
            version: manifest.version,
            committed_at: manifest.committed_at.clone(),
            ..Default::default()
        };
        index.add_products(
            &read(golden_products::NAME)?,
            &read(offers::NAME)?,
            &read(golden_provenance::NAME)?,
            &read(product_clusters::NAME)?,
        );
        index.add_customers(
            &read(customers::NAME)?,
            &read(customer_accounts::NAME)?,
            |account| same_customer_links(store, manifest, account),
        )?;
        index.add_recommendations(&read(recommendations::NAME)?);
        index.add_interactions(&read(interactions::NAME)?, recs);
        Ok(index)
    }

    pub fn product(&self, golden_id: &str) -> Option<&Arc<ProductDetail>> {
        self.product_at.get(golden_id).map(|&i| &self.products[i])
    }

    /// The golden product a platform listing belongs to.
    pub fn product_of_listing(&self, platform: &str, listing_id: &str) -> Option<&str> {
        self.listing
            .get(&(platform.to_string(), listing_id.to_string()))
            .map(String::as_str)
    }

    pub fn customer(&self, customer_id: &str) -> Option<&Arc<Customer>> {
        self.customers.get(customer_id)
    }

    /// The unified customer a platform account belongs to.
    pub fn customer_of_account(&self, platform: &str, account_id: &str) -> Option<&str> {
        self.account
            .get(&(platform.to_string(), account_id.to_string()))
            .map(String::as_str)
    }

    pub fn recommendations(&self, customer_id: &str) -> &[Recommendation] {
        self.recommendations
            .get(customer_id)
            .map_or(&[], Vec::as_slice)
    }

    /// A golden product's position in [`Self::products`]: its item number for fold-in.
    pub fn item_of(&self, golden_id: &str) -> Option<u32> {
        self.product_at.get(golden_id).map(|&i| i as u32)
    }

    pub fn interactions(&self, customer_id: &str) -> &[CommittedInteraction] {
        self.interactions
            .get(customer_id)
            .map_or(&[], Vec::as_slice)
    }

    /// Every customer, in no particular order.
    pub fn customers(&self) -> impl Iterator<Item = &Arc<Customer>> {
        self.customers.values()
    }

    pub fn customer_count(&self) -> usize {
        self.customers.len()
    }

    fn add_products(
        &mut self,
        golden: &NamedRows,
        offer_rows: &NamedRows,
        provenance_rows: &NamedRows,
        clusters: &NamedRows,
    ) {
        let mut offers_of: HashMap<String, Vec<Offer>> = HashMap::new();
        for r in &offer_rows.rows {
            let golden_id = offer_rows.text(r, offers::golden_id).unwrap_or_default();
            let offer = Offer {
                platform: offer_rows.text(r, offers::platform).unwrap_or_default(),
                listing_id: offer_rows.text(r, offers::listing_id).unwrap_or_default(),
                title: offer_rows.text(r, offers::title).unwrap_or_default(),
                price: offer_rows.f64(r, offers::price),
                currency: offer_rows.text(r, offers::currency),
                price_base: offer_rows.f64(r, offers::price_base),
                stock: offer_rows.i64(r, offers::stock),
                url: offer_rows.text(r, offers::url),
            };
            self.listing.insert(
                (offer.platform.clone(), offer.listing_id.clone()),
                golden_id.clone(),
            );
            offers_of.entry(golden_id).or_default().push(offer);
        }
        let mut provenance_of: HashMap<String, Vec<FieldSource>> = HashMap::new();
        for r in &provenance_rows.rows {
            let p = provenance_rows;
            provenance_of
                .entry(p.text(r, golden_provenance::golden_id).unwrap_or_default())
                .or_default()
                .push(FieldSource {
                    field: p.text(r, golden_provenance::field).unwrap_or_default(),
                    value: p.text(r, golden_provenance::value),
                    rule: p.text(r, golden_provenance::rule).unwrap_or_default(),
                    platform: p.text(r, golden_provenance::platform).unwrap_or_default(),
                    listing_id: p.text(r, golden_provenance::listing_id).unwrap_or_default(),
                });
        }
        let mut merges_of: HashMap<String, (Option<String>, Option<f64>)> = HashMap::new();
        for r in &clusters.rows {
            let id = clusters
                .text(r, product_clusters::golden_id)
                .unwrap_or_default();
            merges_of.entry(id).or_insert_with(|| {
                (
                    clusters.text(r, product_clusters::explanation),
                    clusters.f64(r, product_clusters::cohesion),
                )
            });
        }
        let mut products: Vec<ProductDetail> = golden
            .rows
            .iter()
            .map(|r| {
                let id = golden
                    .text(r, golden_products::golden_id)
                    .unwrap_or_default();
                let (merges, cohesion) = merges_of.remove(&id).unwrap_or_default();
                product_detail(
                    golden,
                    r,
                    &id,
                    &mut offers_of,
                    &mut provenance_of,
                    merges,
                    cohesion,
                )
            })
            .collect();
        products.sort_by(|a, b| a.summary.golden_id.cmp(&b.summary.golden_id));
        self.product_at = products
            .iter()
            .enumerate()
            .map(|(i, p)| (p.summary.golden_id.clone(), i))
            .collect();
        self.products = products.into_iter().map(Arc::new).collect();
    }

    /// `links_of` gets the (platform, account id) → customer map once it is built.
    fn add_customers(
        &mut self,
        profile_rows: &NamedRows,
        account_rows: &NamedRows,
        links_of: impl FnOnce(&AccountMap) -> Result<HashMap<String, Vec<IdentityLink>>, ServeError>,
    ) -> Result<(), ServeError> {
        let mut accounts_of: HashMap<String, Vec<CustomerAccount>> = HashMap::new();
        let mut merges_of: HashMap<String, (Option<String>, Option<f64>)> = HashMap::new();
        for r in &account_rows.rows {
            let a = account_rows;
            let customer_id = a
                .text(r, customer_accounts::customer_id)
                .unwrap_or_default();
            let account = CustomerAccount {
                platform: a.text(r, customer_accounts::platform).unwrap_or_default(),
                account_id: a.text(r, customer_accounts::account_id).unwrap_or_default(),
                city: a.text(r, customer_accounts::city),
                registered_at: timestamp(a.value(r, customer_accounts::registered_at)),
            };
            self.account.insert(
                (account.platform.clone(), account.account_id.clone()),
                customer_id.clone(),
            );
            merges_of.entry(customer_id.clone()).or_insert_with(|| {
                (
                    a.text(r, customer_accounts::explanation),
                    a.f64(r, customer_accounts::cohesion),
                )
            });
            accounts_of.entry(customer_id).or_default().push(account);
        }
        let mut links = links_of(&self.account)?;
        for r in &profile_rows.rows {
            let p = profile_rows;
            let id = p.text(r, customers::customer_id).unwrap_or_default();
            let (merges, cohesion) = merges_of.remove(&id).unwrap_or_default();
            let customer = Customer {
                accounts: accounts_of.remove(&id).unwrap_or_default(),
                platforms: split_list(p.text(r, customers::platforms)),
                city: p.text(r, customers::city),
                first_seen: timestamp(p.value(r, customers::first_seen)),
                last_seen: timestamp(p.value(r, customers::last_seen)),
                orders: p.i64(r, customers::orders).unwrap_or(0),
                monetary_base: p.f64(r, customers::monetary_base).unwrap_or(0.0),
                recency_days: p.f64(r, customers::recency_days),
                r_score: p.i64(r, customers::r_score),
                f_score: p.i64(r, customers::f_score),
                m_score: p.i64(r, customers::m_score),
                segment: p.text(r, customers::segment).unwrap_or_default(),
                events: p.i64(r, customers::events).unwrap_or(0),
                top_categories: p.text(r, customers::top_categories),
                merges,
                cohesion,
                links: links.remove(&id).unwrap_or_default(),
                customer_id: id.clone(),
            };
            self.customers.insert(id, Arc::new(customer));
        }
        Ok(())
    }

    fn add_recommendations(&mut self, rows: &NamedRows) {
        for r in &rows.rows {
            let id = rows
                .text(r, recommendations::customer_id)
                .unwrap_or_default();
            self.recommendations
                .entry(id)
                .or_default()
                .push(Recommendation {
                    rank: rows.i64(r, recommendations::rank).unwrap_or(0),
                    golden_id: rows.text(r, recommendations::golden_id).unwrap_or_default(),
                    title: rows.text(r, recommendations::title).unwrap_or_default(),
                    score: rows.f64(r, recommendations::score).unwrap_or(0.0),
                    reason: rows.text(r, recommendations::reason).unwrap_or_default(),
                    model: rows.text(r, recommendations::model).unwrap_or_default(),
                });
        }
        for list in self.recommendations.values_mut() {
            list.sort_by_key(|r| r.rank);
        }
    }
}

impl ServeIndex {
    /// Keeps each customer's interaction rows and fits the fold-in model on them, with the
    /// event weights training used (without its time decay: the rows are totals).
    fn add_interactions(&mut self, rows: &NamedRows, recs: &RecsConfig) {
        let mut customer_number: HashMap<String, u32> = HashMap::new();
        let mut cells: Vec<(u32, u32, f64)> = Vec::with_capacity(rows.rows.len());
        for r in &rows.rows {
            let count = |c| rows.i64(r, c).unwrap_or(0);
            let golden_id = rows.text(r, interactions::golden_id).unwrap_or_default();
            let customer_id = rows.text(r, interactions::customer_id).unwrap_or_default();
            let row = CommittedInteraction {
                title: self
                    .product(&golden_id)
                    .and_then(|p| p.summary.title.clone()),
                views: count(interactions::views),
                favorites: count(interactions::favorites),
                carts: count(interactions::carts),
                purchases: count(interactions::purchases),
                platforms: split_list(rows.text(r, interactions::platforms)),
                first_at: timestamp(rows.value(r, interactions::first_at)),
                last_at: timestamp(rows.value(r, interactions::last_at)),
                golden_id,
            };
            if let Some(item) = self.item_of(&row.golden_id) {
                let next = customer_number.len() as u32;
                let user = *customer_number.entry(customer_id.clone()).or_insert(next);
                cells.push((user, item, committed_weight(&row, recs)));
            }
            self.interactions.entry(customer_id).or_default().push(row);
        }
        if !cells.is_empty() {
            self.fold_in = Some(FoldIn::fit(
                customer_number.len(),
                self.products.len(),
                &mut cells,
                recs,
            ));
        }
    }
}

/// The summed event weights of one interaction row.
pub fn committed_weight(row: &CommittedInteraction, recs: &RecsConfig) -> f64 {
    row.views as f64 * recs.view_weight
        + row.favorites as f64 * recs.favorite_weight
        + row.carts as f64 * recs.cart_weight
        + row.purchases as f64 * recs.purchase_weight
}

fn product_detail(
    golden: &NamedRows,
    r: &[Value],
    id: &str,
    offers_of: &mut HashMap<String, Vec<Offer>>,
    provenance_of: &mut HashMap<String, Vec<FieldSource>>,
    merges: Option<String>,
    cohesion: Option<f64>,
) -> ProductDetail {
    let g = golden;
    ProductDetail {
        summary: ProductSummary {
            golden_id: id.to_string(),
            title: g.text(r, golden_products::title),
            brand: g.text(r, golden_products::brand),
            category: g.text(r, golden_products::category),
            price_base: g.f64(r, golden_products::price_base),
            min_price_base: g.f64(r, golden_products::min_price_base),
            max_price_base: g.f64(r, golden_products::max_price_base),
            platforms: split_list(g.text(r, golden_products::platforms)),
            listings: g.i64(r, golden_products::listings).unwrap_or(0),
        },
        model_code: g.text(r, golden_products::model_code),
        gtin: g.text(r, golden_products::gtin),
        color: g.text(r, golden_products::color),
        capacity: g.text(r, golden_products::capacity),
        listed_at: timestamp(g.value(r, golden_products::listed_at)),
        offers: offers_of.remove(id).unwrap_or_default(),
        provenance: provenance_of.remove(id).unwrap_or_default(),
        merges,
        cohesion,
    }
}

/// The links that ended inside one customer, by customer id. Read column by column and
/// filtered first: the table holds every scored candidate pair (millions at 400 k accounts)
/// and only the few inside customers are served.
fn same_customer_links(
    store: &TableStore,
    manifest: &Manifest,
    customer_of: &AccountMap,
) -> Result<HashMap<String, Vec<IdentityLink>>, ServeError> {
    let (_, batches) =
        store
            .read_at(manifest, identity_links::NAME)?
            .ok_or(ServeError::MissingTable {
                table: identity_links::NAME,
            })?;
    let mut links: HashMap<String, Vec<IdentityLink>> = HashMap::new();
    for batch in &batches {
        let Some(same) = batch
            .column_by_name(identity_links::same_customer)
            .and_then(|c| c.as_any().downcast_ref::<BooleanArray>())
        else {
            continue;
        };
        let col = |name| TextColumn::of(batch, name);
        let (left_platform, left_account, right_platform, right_account) = (
            col(identity_links::left_platform),
            col(identity_links::left_account_id),
            col(identity_links::right_platform),
            col(identity_links::right_account_id),
        );
        let (link_type, reason) = (col(identity_links::link_type), col(identity_links::reason));
        let probability = batch
            .column_by_name(identity_links::match_probability)
            .and_then(|c| c.as_any().downcast_ref::<arrow::array::Float64Array>());
        for row in (0..batch.num_rows()).filter(|&row| same.is_valid(row) && same.value(row)) {
            let account = |p: &TextColumn<'_>, a: &TextColumn<'_>| {
                let (p, a) = (
                    p.get(row).unwrap_or_default(),
                    a.get(row).unwrap_or_default(),
                );
                (p.to_string(), a.to_string())
            };
            let left = account(&left_platform, &left_account);
            let Some(customer) = customer_of.get(&left) else {
                continue;
            };
            let left = format!("{}:{}", left.0, left.1);
            let right = account(&right_platform, &right_account);
            let right = format!("{}:{}", right.0, right.1);
            links
                .entry(customer.clone())
                .or_default()
                .push(IdentityLink {
                    right,
                    left,
                    link_type: link_type.get(row).unwrap_or_default().into(),
                    match_probability: probability.map_or(0.0, |p| p.value(row)),
                    reason: reason.get(row).unwrap_or_default().into(),
                });
        }
    }
    Ok(links)
}

fn split_list(text: Option<String>) -> Vec<String> {
    text.map(|t| {
        t.split(',')
            .map(|s| s.trim().to_string())
            .filter(|s| !s.is_empty())
            .collect()
    })
    .unwrap_or_default()
}

/// A timestamp value as RFC 3339 (UTC).
fn timestamp(value: Option<&Value>) -> Option<String> {
    match value {
        Some(Value::Timestamp(micros)) => chrono::DateTime::from_timestamp_micros(*micros)
            .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)),
        _ => None,
    }
}
