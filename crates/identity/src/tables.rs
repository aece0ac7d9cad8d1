//! The identity graph's tables: scored links, the account → customer map, the model.

use shopfuse_core::config::IdentityConfig;
use shopfuse_core::linkage::Clustering;
use std::sync::Arc;

use arrow::array::{
    ArrayRef, BooleanBuilder, Float64Array, Float64Builder, Int64Builder, RecordBatch,
    StringBuilder, TimestampMicrosecondBuilder,
};
use arrow::datatypes::SchemaRef;
use rayon::prelude::*;
use shopfuse_core::schema::timestamp_type;
use shopfuse_core::value::rows_to_batch;
use shopfuse_core::{CoreError, Transaction, Value};

use super::*;

shopfuse_core::table! {
    /// One row per scored pair of platform accounts (deterministic links included), with the
    /// evidence that decided it.
    pub mod identity_links("identity_links") {
        /// Platform of the first account.
        left_platform: Text;
        /// The first account's id on its platform.
        left_account_id: Text;
        /// Platform of the second account.
        right_platform: Text;
        /// The second account's id on its platform.
        right_account_id: Text;
        /// `deterministic` (a personal phone or e-mail in common) or `probabilistic`.
        link_type: Text;
        /// Fellegi–Sunter log2 weight: the sum of the comparisons' weights.
        match_weight: Float;
        /// Probability that both accounts are one person.
        match_probability: Float;
        /// `[identity] threshold` of the run.
        threshold: Float;
        /// The comparisons that moved the weight most ("same name +9.1, same house +12.2").
        reason: Text;
        /// Whether the clustering put both accounts into one customer.
        same_customer: Bool;
    }
}

shopfuse_core::table! {
    /// One row per platform account: the unified customer it belongs to.
    pub mod customer_accounts("customer_accounts") {
        /// Unified customer id (CU…), stable while the customer's first account stays.
        customer_id: Text;
        /// The account's platform.
        platform: Text;
        /// The account's id on its platform.
        account_id: Text;
        /// Accounts of this customer.
        accounts: Int;
        /// Lowest match probability among the customer's scored internal pairs.
        cohesion: Float null;
        /// The merges that built the customer, in order.
        explanation: Text null;
        /// The account's city.
        city: Text null;
        /// When the account was registered.
        registered_at: Timestamp null;
        /// Source file of the account's row.
        _file: Text;
        /// Row of that file (the line number an editor shows).
        _row: Int;
    }
}

shopfuse_core::table! {
    /// One row per comparison and agreement level of the Fellegi–Sunter model the run
    /// estimated.
    pub mod identity_parameters("identity_parameters") {
        /// name, address, city, device, phone, e-mail.
        comparison: Text;
        /// Agreement level (exact, frequent exact, fuzzy, disagree, missing …).
        level: Text;
        /// P(level | same person).
        m_probability: Float;
        /// Where m came from: the deterministically linked seed pairs, or EM.
        m_source: Text;
        /// P(level | different people), from random account pairs.
        u_probability: Float;
        /// log2(m / u): the weight this level adds.
        match_weight: Float;
        /// Prior that two random accounts of different platforms are one person.
        prior: Float;
    }
}

pub(super) fn write_tables(
    tx: &mut Transaction<'_>,
    accounts: &[Account],
    links: &[Link],
    customers: &Clustering,
    model: &FellegiSunter,
    config: &IdentityConfig,
) -> Result<(), IdentityError> {
    // The links and the account map are written at once (both only add files).
    let shared: &Transaction<'_> = tx;
    let (link_files, account_file) = rayon::join(
        || link_files(shared, accounts, links, customers, model, config),
        || account_file(shared, accounts, customers),
    );
    tx.replace_with_files(identity_links::NAME, link_files?);
    tx.replace_with_files(customer_accounts::NAME, vec![account_file?]);
    write_parameters(tx, model)
}

/// Writes `identity_links` as files; returns their paths.
fn link_files(
    tx: &Transaction<'_>,
    accounts: &[Account],
    links: &[Link],
    customers: &Clustering,
    model: &FellegiSunter,
    config: &IdentityConfig,
) -> Result<Vec<String>, CoreError> {
    // Built straight into Arrow arrays a batch at a time and written as several files at
    // once, each streamed batch by batch: at 400 k accounts there are millions of links, and
    // their rows as values at once took gigabytes, and one writer most of the stage's time.
    let schema = identity_links::TABLE.schema();
    let writer = LinkBatches {
        schema: &schema,
        accounts,
        customers,
        model,
        threshold: config.threshold,
    };
    links
        .par_chunks(LINKS_PER_FILE)
        .enumerate()
        .map(|(k, part)| {
            let batches = part
                .chunks(LINKS_PER_BATCH)
                .map(|chunk| writer.batch(chunk));
            tx.write_file_streamed(
                identity_links::NAME,
                &format!("part-{k:04}"),
                &schema,
                batches,
                true,
            )
        })
        .collect()
}

/// Links turned into one batch (and row group) of `identity_links`.
const LINKS_PER_BATCH: usize = 65_536;
/// Links per file: fixed, not per thread, so that the files and the table's fingerprint are
/// the same on every machine.
const LINKS_PER_FILE: usize = 4 * LINKS_PER_BATCH;

/// What a batch of `identity_links` rows is made from.
struct LinkBatches<'a> {
    schema: &'a SchemaRef,
    accounts: &'a [Account],
    customers: &'a Clustering,
    model: &'a FellegiSunter,
    threshold: f64,
}

impl LinkBatches<'_> {
    /// The rows of `links`, in the declared column order.
    fn batch(&self, links: &[Link]) -> Result<RecordBatch, CoreError> {
        let n = links.len();
        let text = || StringBuilder::with_capacity(n, n * 16);
        let (mut left_platform, mut left_id, mut right_platform, mut right_id) =
            (text(), text(), text(), text());
        let (mut link_type, mut reason) = (text(), StringBuilder::with_capacity(n, n * 64));
        let mut weight = Float64Builder::with_capacity(n);
        let mut probability = Float64Builder::with_capacity(n);
        let mut same_customer = BooleanBuilder::with_capacity(n);
        let (mut parts, mut why) = (Vec::new(), String::new());
        for l in links {
            let (a, b) = (&self.accounts[l.left], &self.accounts[l.right]);
            left_platform.append_value(&a.platform);
            left_id.append_value(&a.account_id);
            right_platform.append_value(&b.platform);
            right_id.append_value(&b.account_id);
            link_type.append_value(if l.deterministic.is_some() {
                "deterministic"
            } else {
                "probabilistic"
            });
            weight.append_value(l.match_weight);
            probability.append_value(l.match_probability);
            l.write_reason(self.model, &mut parts, &mut why);
            reason.append_value(&why);
            let cluster_of = &self.customers.cluster_of;
            same_customer.append_value(cluster_of[l.left] == cluster_of[l.right]);
        }
        let columns: Vec<ArrayRef> = vec![
            Arc::new(left_platform.finish()),
            Arc::new(left_id.finish()),
            Arc::new(right_platform.finish()),
            Arc::new(right_id.finish()),
            Arc::new(link_type.finish()),
            Arc::new(weight.finish()),
            Arc::new(probability.finish()),
            Arc::new(Float64Array::from(vec![self.threshold; n])),
            Arc::new(reason.finish()),
            Arc::new(same_customer.finish()),
        ];
        Ok(RecordBatch::try_new(self.schema.clone(), columns)?)
    }
}

/// Writes `customer_accounts` as a file; returns its path.
fn account_file(
    tx: &Transaction<'_>,
    accounts: &[Account],
    customers: &Clustering,
) -> Result<String, CoreError> {
    // Arrow builders straight away, as for the links: one row per account, and the rows as
    // values cost more than writing them.
    let n = accounts.len();
    let text = |bytes: usize| StringBuilder::with_capacity(n, n * bytes);
    let (mut customer, mut platform, mut account_id) = (text(16), text(8), text(16));
    let (mut explanation, mut city, mut file) = (text(8), text(10), text(40));
    let (mut size, mut row) = (
        Int64Builder::with_capacity(n),
        Int64Builder::with_capacity(n),
    );
    let mut cohesion = Float64Builder::with_capacity(n);
    let mut registered_at = TimestampMicrosecondBuilder::with_capacity(n);
    for (c, members) in customers.members.iter().enumerate() {
        let id = customer_id(accounts, members);
        let steps = (!customers.steps[c].is_empty()).then(|| customers.steps[c].join("; "));
        for &i in members {
            let a = &accounts[i];
            customer.append_value(&id);
            platform.append_value(&a.platform);
            account_id.append_value(&a.account_id);
            size.append_value(members.len() as i64);
            cohesion.append_option(customers.cohesion[c]);
            explanation.append_option(steps.as_deref());
            city.append_option(a.city.as_deref());
            registered_at.append_option(a.registered_at);
            file.append_value(&a.file);
            row.append_value(a.row);
        }
    }
    let s = customer_accounts::TABLE.schema();
    let columns: Vec<ArrayRef> = vec![
        Arc::new(customer.finish()),
        Arc::new(platform.finish()),
        Arc::new(account_id.finish()),
        Arc::new(size.finish()),
        Arc::new(cohesion.finish()),
        Arc::new(explanation.finish()),
        Arc::new(city.finish()),
        Arc::new(registered_at.finish().with_data_type(timestamp_type())),
        Arc::new(file.finish()),
        Arc::new(row.finish()),
    ];
    let batch = RecordBatch::try_new(s.clone(), columns)?;
    tx.write_file(customer_accounts::NAME, "part", &s, &[batch])
}

fn write_parameters(tx: &mut Transaction<'_>, model: &FellegiSunter) -> Result<(), IdentityError> {
    let mut rows: Vec<Vec<Value>> = Vec::new();
    for (c, comparison) in COMPARISONS.iter().enumerate() {
        for (l, level) in comparison.levels().iter().enumerate() {
            let (m, u) = (model.m[c][l], model.u[c][l]);
            rows.push(vec![
                Value::text(comparison.as_str()),
                Value::text(level),
                Value::Float(m),
                Value::text(if model.m_from_seeds[c] {
                    "seed pairs (shared personal phone/e-mail)"
                } else {
                    "EM"
                }),
                Value::Float(u),
                Value::Float((m / u).log2()),
                Value::Float(model.prior),
            ]);
        }
    }
    let s = identity_parameters::TABLE.schema();
    tx.replace(identity_parameters::NAME, &s, &[rows_to_batch(&s, &rows)?])?;
    Ok(())
}
