//! The identity graph's tables: scored links, the account → customer map, the model.

use shopfuse_core::config::IdentityConfig;
use shopfuse_core::linkage::Clustering;
use std::sync::Arc;

use arrow::array::{
    ArrayRef, BooleanBuilder, Float64Array, Float64Builder, RecordBatch, StringBuilder,
};
use arrow::datatypes::SchemaRef;
use rayon::prelude::*;
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
    write_links(tx, accounts, links, customers, model, config)?;
    write_accounts(tx, accounts, customers)?;
    write_parameters(tx, model)
}

fn write_links(
    tx: &mut Transaction<'_>,
    accounts: &[Account],
    links: &[Link],
    customers: &Clustering,
    model: &FellegiSunter,
    config: &IdentityConfig,
) -> Result<(), IdentityError> {
    // Built straight into Arrow arrays, a slice per batch, several slices at once, and
    // streamed into one file: at 400 k accounts there are millions of links, and their rows
    // as values at once took gigabytes and most of the stage's time.
    let schema = identity_links::TABLE.schema();
    let writer = LinkBatches {
        schema: &schema,
        accounts,
        customers,
        model,
        threshold: config.threshold,
    };
    let batches = links
        .chunks(LINKS_PER_BATCH * BATCHES_AT_ONCE)
        .flat_map(|window| {
            window
                .par_chunks(LINKS_PER_BATCH)
                .map(|chunk| writer.batch(chunk))
                .collect::<Vec<_>>()
        });
    tx.replace_streamed(identity_links::NAME, &schema, batches)?;
    Ok(())
}

/// Links turned into one batch of `identity_links`.
const LINKS_PER_BATCH: usize = 65_536;
/// Batches built in parallel before they are written.
const BATCHES_AT_ONCE: usize = 4;

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

fn write_accounts(
    tx: &mut Transaction<'_>,
    accounts: &[Account],
    customers: &Clustering,
) -> Result<(), IdentityError> {
    let mut rows: Vec<Vec<Value>> = Vec::with_capacity(accounts.len());
    for (c, members) in customers.members.iter().enumerate() {
        let id = customer_id(accounts, members);
        for &i in members {
            let a = &accounts[i];
            rows.push(vec![
                Value::text(&id),
                Value::text(&a.platform),
                Value::text(&a.account_id),
                Value::Int(members.len() as i64),
                customers.cohesion[c].map_or(Value::Null, Value::Float),
                if customers.steps[c].is_empty() {
                    Value::Null
                } else {
                    Value::text(&customers.steps[c].join("; "))
                },
                Value::opt_text(&a.city),
                a.registered_at.map_or(Value::Null, Value::Timestamp),
                Value::text(&a.file),
                Value::Int(a.row),
            ]);
        }
    }
    let s = customer_accounts::TABLE.schema();
    tx.replace(customer_accounts::NAME, &s, &[rows_to_batch(&s, &rows)?])?;
    Ok(())
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
