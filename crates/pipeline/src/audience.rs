//! Audiences for activation: the customers a condition over their propensity and profile
//! selects ("p_buy_30d > 0.6 and segment = 'at risk'"), as the account ids of one platform (or
//! of every platform) a marketing tool can upload.
//!
//! The condition is SQL over one row per customer: every column of `propensity`, the profile
//! columns of `customers` (segment, orders, monetary_base, recency_days, r/f/m scores, city,
//! top_categories, platforms, accounts), and with a platform `p_buy_30d_platform` and
//! `p_buy_30d_platform_alone` from `propensity_platforms`. It is checked to be one expression
//! before it is placed in the query, and the query runs read-only.
//!
//! Ids: by default each account appears as a pseudonym — a keyed hash of (platform, account
//! id) with the project's secret, stable across runs, meaningless outside the project — and
//! the platform's own account id only when asked for (an admin activating on that platform).
//! A viewer gets a differentially private count instead of members.

use hmac::{Hmac, Mac};
use serde::Serialize;
use sha2::Sha256;
use shopfuse_core::value::NamedRows;
use shopfuse_query::QueryEngine;

use crate::PipelineError;

/// The most accounts one audience reads (a LIMIT DataFusion takes as a signed 64-bit count).
const MAX_ACCOUNTS: usize = 1 << 40;

/// Which ids an audience carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum AudienceIds {
    /// The keyed-hash pseudonym of each account only.
    Pseudonymous,
    /// The pseudonym and the platform's own account id.
    Platform,
}

/// What to select.
#[derive(Debug, Clone)]
pub struct AudienceRequest {
    /// SQL condition over the per-customer row.
    pub condition: String,
    /// Only accounts on this platform (and the platform's own probabilities in the row).
    pub platform: Option<String>,
    pub ids: AudienceIds,
}

/// One account of a selected customer.
#[derive(Debug, Clone, Serialize)]
pub struct AudienceMember {
    pub customer_id: String,
    pub platform: String,
    /// `aud:` + 32 hex digits.
    pub pseudonymous_id: String,
    /// The platform's own account id, with [`AudienceIds::Platform`] only.
    pub account_id: Option<String>,
    pub p_buy_30d: Option<f64>,
    pub segment: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Audience {
    pub condition: String,
    pub platform: Option<String>,
    pub ids: AudienceIds,
    /// Customers the condition selects (before the platform's accounts are taken).
    pub customers: usize,
    pub members: Vec<AudienceMember>,
}

/// The audience of `request`; an error names what is missing or wrong in the condition.
pub fn audience(
    engine: &QueryEngine,
    secret: &[u8],
    request: &AudienceRequest,
) -> Result<Audience, PipelineError> {
    let rows = selected_accounts(engine, request)?;
    let mac = Hmac::<Sha256>::new_from_slice(secret).expect("HMAC takes any key length");
    let mut customers = std::collections::BTreeSet::new();
    let members = rows
        .rows
        .iter()
        .filter_map(|r| {
            let customer_id = rows.text(r, "customer_id")?;
            customers.insert(customer_id.clone());
            let platform = rows.text(r, "platform")?;
            let account_id = rows.text(r, "account_id")?;
            Some(AudienceMember {
                pseudonymous_id: pseudonym(&mac, &platform, &account_id),
                account_id: (request.ids == AudienceIds::Platform).then_some(account_id),
                customer_id,
                platform,
                p_buy_30d: rows.f64(r, "p_buy_30d"),
                segment: rows.text(r, "segment"),
            })
        })
        .collect();
    Ok(Audience {
        condition: request.condition.clone(),
        platform: request.platform.clone(),
        ids: request.ids,
        customers: customers.len(),
        members,
    })
}

/// How many customers the condition selects, and nothing else (the count a viewer gets
/// noised).
pub fn audience_size(
    engine: &QueryEngine,
    request: &AudienceRequest,
) -> Result<usize, PipelineError> {
    let rows = selected_accounts(engine, request)?;
    let customers: std::collections::BTreeSet<String> = rows
        .rows
        .iter()
        .filter_map(|r| rows.text(r, "customer_id"))
        .collect();
    Ok(customers.len())
}

fn selected_accounts(
    engine: &QueryEngine,
    request: &AudienceRequest,
) -> Result<NamedRows, PipelineError> {
    shopfuse_query::check_condition(&request.condition)?;
    for table in ["propensity", "customers", "customer_accounts"] {
        if !engine.tables().iter().any(|t| t == table) {
            return Err(PipelineError::Audience(format!(
                "the project has no {table} table yet: run `shopfuse run` first"
            )));
        }
    }
    let quoted = shopfuse_query::sql_literal;
    let (platform_columns, platform_join, platform_filter) = match &request.platform {
        Some(p) => (
            "pp.p_buy_30d as p_buy_30d_platform, pp.p_buy_30d_alone as p_buy_30d_platform_alone,",
            format!(
                "left join propensity_platforms pp on pp.customer_id = p.customer_id and pp.platform = {}",
                quoted(p)
            ),
            format!("where a.platform = {}", quoted(p)),
        ),
        None => ("", String::new(), String::new()),
    };
    let query = format!(
        "with audience_row as (\
           select p.*, {platform_columns} c.segment, c.orders, c.monetary_base, c.recency_days, \
             c.r_score, c.f_score, c.m_score, c.city, c.top_categories, c.platforms, c.accounts, \
             c.events \
           from propensity p join customers c on c.customer_id = p.customer_id {platform_join}), \
         selected as (select customer_id, p_buy_30d, segment from audience_row where ({condition})) \
         select s.customer_id, a.platform, a.account_id, s.p_buy_30d, s.segment \
         from selected s join customer_accounts a on a.customer_id = s.customer_id {platform_filter} \
         order by s.p_buy_30d desc nulls last, s.customer_id, a.platform, a.account_id",
        condition = request.condition,
    );
    let result = engine
        .read_only(&query, MAX_ACCOUNTS, std::time::Duration::from_secs(300))?
        .result;
    Ok(NamedRows::from_batches(&result.schema, &result.batches)?)
}

/// The account's pseudonym: a keyed hash with a tag of its own, so it matches no other
/// pseudonym of the project.
fn pseudonym(mac: &Hmac<Sha256>, platform: &str, account_id: &str) -> String {
    let mut mac = mac.clone();
    mac.update(b"audience\x1f");
    mac.update(platform.as_bytes());
    mac.update(b"\x1f");
    mac.update(account_id.as_bytes());
    let digest = mac.finalize().into_bytes();
    format!("aud:{}", hex::encode(&digest[..16]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pseudonyms_are_keyed_and_per_platform() {
        let mac = |k: &[u8]| Hmac::<Sha256>::new_from_slice(k).unwrap();
        let a = pseudonym(&mac(b"one"), "jd", "u1");
        assert_eq!(a, pseudonym(&mac(b"one"), "jd", "u1"));
        assert_ne!(a, pseudonym(&mac(b"two"), "jd", "u1"));
        assert_ne!(a, pseudonym(&mac(b"one"), "taobao", "u1"));
        assert!(a.starts_with("aud:") && a.len() == 36 && !a.contains("u1"));
    }
}
