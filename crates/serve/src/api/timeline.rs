//! `GET /api/v1/customers/{customer_id}/timeline` (analyst, audited): one unified customer's
//! orders and events on every platform in one list, newest first, paged on the server, each
//! with the golden product its listing belongs to — what the dashboard's customer page shows
//! as the journey across Taobao, JD, Amazon and the own shop.

use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::Json;
use serde::{Deserialize, Serialize};
use shopfuse_query::sql_literal;
use utoipa::{IntoParams, ToSchema};

use super::reports::blocking;
use super::{audit, query, Caller};
use crate::error::ErrorBody;
use crate::{ApiError, AppState, Role};

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct TimelineQuery {
    /// 1–500 (default 50).
    pub limit: Option<usize>,
    pub offset: Option<usize>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Timeline {
    pub customer_id: String,
    /// Orders and events of all the customer's accounts.
    pub total: i64,
    pub offset: usize,
    pub limit: usize,
    /// Each: `kind` (order, or the event type), `platform`, `account_id`, `at` (RFC 3339),
    /// `listing_id`, `golden_id`, `title`, and for orders `quantity`, `amount_base`, `status`.
    pub items: Vec<serde_json::Map<String, serde_json::Value>>,
}

/// A customer's orders and events across platforms, newest first.
#[utoipa::path(
    get, path = "/api/v1/customers/{customer_id}/timeline",
    params(("customer_id" = String, Path, description = "Unified customer id (CU…)"),
           TimelineQuery),
    responses((status = 200, body = Timeline), (status = 400, body = ErrorBody),
              (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)),
    security(("api_key" = []))
)]
pub(super) async fn timeline(
    State(state): State<AppState>,
    caller: Caller,
    Path(customer_id): Path<String>,
    parsed: Result<Query<TimelineQuery>, QueryRejection>,
) -> Result<Json<Timeline>, ApiError> {
    const ROUTE: &str = "/api/v1/customers/{customer_id}/timeline";
    caller.require(Role::Analyst, ROUTE)?;
    let q = query(parsed)?;
    let limit = super::page_limit(q.limit)?;
    let offset = q.offset.unwrap_or(0);
    let customer = state
        .index()
        .customer(&customer_id)
        .cloned()
        .ok_or_else(|| ApiError::not_found(format!("no customer {customer_id:?}")))?;
    audit(&state, &caller, ROUTE, &customer_id)?;
    let accounts: Vec<(String, String)> = customer
        .accounts
        .iter()
        .map(|a| (a.platform.clone(), a.account_id.clone()))
        .collect();
    let (total, items) = blocking(move || {
        let engine = state.sql_engine().map_err(|e| e.to_string())?;
        let sql = timeline_sql(engine.tables(), &accounts);
        let Some((count, page)) = sql else {
            return Ok((0, Vec::new()));
        };
        let run = |sql: &str| {
            engine
                .sql(sql)
                .and_then(|r| r.to_json_rows())
                .map_err(|e| e.to_string())
        };
        let total = run(&count)?
            .first()
            .and_then(|r| r.get("n").and_then(|v| v.as_i64()))
            .unwrap_or(0);
        let items = run(&format!("{page} limit {limit} offset {offset}"))?;
        Ok((total, items))
    })
    .await?;
    Ok(Json(Timeline {
        customer_id,
        total,
        offset,
        limit,
        items,
    }))
}

/// The count and the page query over the orders and events of `accounts`; `None` when the
/// project has neither table (or the customer no account).
fn timeline_sql(tables: &[String], accounts: &[(String, String)]) -> Option<(String, String)> {
    let has = |t: &str| tables.iter().any(|x| x == t);
    if accounts.is_empty() {
        return None;
    }
    let owned = accounts
        .iter()
        .map(|(p, a)| {
            format!(
                "(_platform = {} and account_id = {})",
                sql_literal(p),
                sql_literal(a)
            )
        })
        .collect::<Vec<_>>()
        .join(" or ");
    let mut parts = Vec::new();
    if has("clean_orders") {
        parts.push(format!(
            "select 'order' as kind, _platform as platform, account_id, ordered_at as at, listing_id, \
             quantity, amount_base, status from clean_orders where {owned}"
        ));
    }
    if has("clean_events") {
        parts.push(format!(
            "select event_type as kind, _platform as platform, account_id, occurred_at as at, listing_id, \
             cast(null as bigint) as quantity, cast(null as double) as amount_base, cast(null as varchar) as status \
             from clean_events where {owned}"
        ));
    }
    if parts.is_empty() {
        return None;
    }
    let union = parts.join(" union all ");
    let count = format!("select count(*) as n from ({union}) t");
    let (columns, joins) = if has("product_clusters") && has("golden_products") {
        (
            "c.golden_id, g.title",
            "left join product_clusters c on c.platform = t.platform and c.listing_id = t.listing_id \
             left join golden_products g on g.golden_id = c.golden_id",
        )
    } else {
        (
            "cast(null as varchar) as golden_id, cast(null as varchar) as title",
            "",
        )
    };
    let page = format!(
        "select t.kind, t.platform, t.account_id, t.at, t.listing_id, {columns}, t.quantity, \
         t.amount_base, t.status from ({union}) t {joins} order by t.at desc, t.platform, t.kind"
    );
    Some((count, page))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn account_ids_are_literals_and_missing_tables_are_left_out() {
        let tables = vec!["clean_orders".to_string()];
        let accounts = vec![("jd".to_string(), "x' or '1'='1".to_string())];
        let (count, page) = timeline_sql(&tables, &accounts).unwrap();
        assert!(page.contains("account_id = 'x'' or ''1''=''1'"), "{page}");
        assert!(!page.contains("clean_events"), "{page}");
        assert!(!page.contains("product_clusters"), "{page}");
        assert!(count.starts_with("select count(*)"));
        assert!(timeline_sql(&tables, &[]).is_none());
        assert!(timeline_sql(&[], &accounts).is_none());
    }
}
