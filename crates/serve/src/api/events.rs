//! Events in: `POST /api/v1/events` (admin) writes a batch to the event log and answers
//! `202` once it is durable; `GET /api/v1/customers/{id}/interactions` shows the committed
//! interactions and the live events together.
//!
//! Each event is checked on its own: one with an unknown account or listing, an unknown
//! type, a bad or future time, or an id already logged is reported with its position and
//! reason, and the rest of the batch is still taken. A body that is not a batch at all
//! (malformed JSON, an unknown or missing field) is a `400` naming the field.

use std::collections::HashSet;

use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use serde::{Deserialize, Serialize};
use shopfuse_core::event_log::{is_platform_name, LoggedEvent};
use shopfuse_learn::recs::Action;
use utoipa::ToSchema;

use super::{audit, Caller};
use crate::error::ErrorBody;
use crate::index::{CommittedInteraction, ServeIndex};
use crate::live::LiveEvent;
use crate::{ApiError, AppState, Role};

/// The most events one batch may carry.
pub const MAX_BATCH: usize = 10_000;
/// How far in the future an event's time may be (clock skew between sender and server).
pub const MAX_CLOCK_SKEW_SECS: i64 = 300;

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EventBatch {
    /// 1–10,000 events.
    pub events: Vec<EventIn>,
}

/// One behaviour event as a platform or an app sends it.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EventIn {
    /// The sender's id for the event; sending it again is harmless (it is stored once).
    pub event_id: String,
    /// taobao, jd, amazon, own_shop …
    pub platform: String,
    /// The shopper's account id on that platform.
    pub account_id: String,
    /// The listing's id on that platform.
    pub listing_id: String,
    /// view, favorite, cart or purchase (浏览, 收藏, 加购, 购买 are read too).
    #[serde(rename = "type")]
    pub event_type: String,
    /// RFC 3339 with an offset, e.g. 2026-12-01T09:30:00+08:00.
    pub at: String,
    pub session_id: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct EventReceipt {
    /// Events written to the log by this request.
    pub accepted: usize,
    /// Events whose id the log already held (stored once, not again).
    pub duplicates: usize,
    pub rejected: Vec<RejectedEvent>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct RejectedEvent {
    /// Position in the batch, from 0.
    pub index: usize,
    pub event_id: String,
    /// unknown_platform, unknown_account, unknown_listing, bad_type, bad_time, future_time,
    /// bad_event_id.
    pub reason: &'static str,
    pub message: String,
}

/// A checked event, ready for the log.
struct Checked {
    platform: String,
    logged: LoggedEvent,
    action: Action,
    at: i64,
}

fn check(
    index: &ServeIndex,
    e: &EventIn,
    now_micros: i64,
) -> Result<Checked, (&'static str, String)> {
    if e.event_id.is_empty() || e.event_id.len() > 128 || e.event_id.chars().any(char::is_control) {
        return Err((
            "bad_event_id",
            "event_id must be 1–128 printable characters".into(),
        ));
    }
    if !is_platform_name(&e.platform) {
        return Err((
            "unknown_platform",
            format!("platform {:?} is not a platform name", e.platform),
        ));
    }
    if index
        .customer_of_account(&e.platform, &e.account_id)
        .is_none()
    {
        return Err((
            "unknown_account",
            format!(
                "no account {:?} on {}; the next `shopfuse run` after its customer export knows it",
                e.account_id, e.platform
            ),
        ));
    }
    if index
        .product_of_listing(&e.platform, &e.listing_id)
        .is_none()
    {
        return Err((
            "unknown_listing",
            format!("no listing {:?} on {}", e.listing_id, e.platform),
        ));
    }
    let action = Action::parse(&e.event_type).ok_or_else(|| {
        (
            "bad_type",
            format!(
                "type {:?} is not view, favorite, cart or purchase",
                e.event_type
            ),
        )
    })?;
    let at = chrono::DateTime::parse_from_rfc3339(&e.at)
        .map_err(|err| ("bad_time", format!("at {:?} is not RFC 3339 ({err})", e.at)))?
        .with_timezone(&chrono::Utc);
    if at.timestamp_micros() > now_micros + MAX_CLOCK_SKEW_SECS * 1_000_000 {
        return Err((
            "future_time",
            format!(
                "at {} is more than {MAX_CLOCK_SKEW_SECS} s ahead of the server's clock",
                e.at
            ),
        ));
    }
    Ok(Checked {
        platform: e.platform.clone(),
        action,
        at: at.timestamp_micros(),
        logged: LoggedEvent {
            event_id: e.event_id.clone(),
            account_id: e.account_id.clone(),
            listing_id: e.listing_id.clone(),
            event_type: canonical_type(action).into(),
            occurred_at: at.to_rfc3339_opts(chrono::SecondsFormat::Micros, true),
            session_id: e.session_id.clone(),
        },
    })
}

fn canonical_type(action: Action) -> &'static str {
    match action {
        Action::View => "view",
        Action::Favorite => "favorite",
        Action::Cart => "cart",
        Action::Purchase => "purchase",
    }
}

/// Writes a batch of behaviour events; `202` once they are durable.
#[utoipa::path(
    post, path = "/api/v1/events", request_body = EventBatch,
    responses((status = 202, body = EventReceipt), (status = 400, body = ErrorBody),
              (status = 403, body = ErrorBody), (status = 413, body = ErrorBody),
              (status = 503, body = ErrorBody)),
    security(("api_key" = []))
)]
pub(super) async fn post_events(
    State(state): State<AppState>,
    caller: Caller,
    body: Result<Json<EventBatch>, JsonRejection>,
) -> Result<(StatusCode, Json<EventReceipt>), ApiError> {
    caller.require(Role::Admin, "/api/v1/events")?;
    let Json(batch) = body.map_err(super::json_rejection)?;
    if batch.events.is_empty() || batch.events.len() > MAX_BATCH {
        return Err(ApiError::bad_request(format!(
            "events: a batch holds 1–{MAX_BATCH} events (this one {})",
            batch.events.len()
        )));
    }
    let index = state.index();
    let now = chrono::Utc::now().timestamp_micros();
    let mut rejected = Vec::new();
    let mut checked = Vec::with_capacity(batch.events.len());
    for (i, e) in batch.events.iter().enumerate() {
        match check(&index, e, now) {
            Ok(c) => checked.push(c),
            Err((reason, message)) => rejected.push(RejectedEvent {
                index: i,
                event_id: e.event_id.clone(),
                reason,
                message,
            }),
        }
    }
    // Claim the ids before writing, so two concurrent batches cannot both store one.
    let (fresh, duplicates) = {
        let mut live = state.live_mut();
        let (fresh, dup): (Vec<Checked>, Vec<Checked>) = checked
            .into_iter()
            .partition(|c| live.reserve(&c.platform, &c.logged.event_id));
        (fresh, dup.len())
    };
    let claimed: Vec<(String, String)> = fresh
        .iter()
        .map(|c| (c.platform.clone(), c.logged.event_id.clone()))
        .collect();
    let lines: Vec<(String, LoggedEvent)> = fresh
        .iter()
        .map(|c| (c.platform.clone(), c.logged.clone()))
        .collect();
    let placed = if lines.is_empty() {
        Default::default()
    } else {
        match state.event_log().append(&lines).await {
            Ok(placed) => placed,
            Err(e) => {
                state.live_mut().release(&claimed);
                return Err(ApiError::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "event_log_unavailable",
                    e,
                ));
            }
        }
    };
    let mut next_line: std::collections::BTreeMap<&str, u64> = std::collections::BTreeMap::new();
    let live_events: Vec<LiveEvent> = fresh
        .iter()
        .map(|c| {
            let place = &placed[&c.platform];
            let line = next_line
                .entry(c.platform.as_str())
                .or_insert(place.first_line);
            let event = LiveEvent {
                event_id: c.logged.event_id.clone(),
                platform: c.platform.clone(),
                account_id: c.logged.account_id.clone(),
                listing_id: c.logged.listing_id.clone(),
                action: c.action,
                at: c.at,
                segment: place.segment.clone(),
                line: *line,
                item: None,
            };
            *line += 1;
            event
        })
        .collect();
    let accepted = live_events.len();
    {
        // Items of the index served now: it cannot change while the overlay is locked.
        let mut live = state.live_mut();
        let served = state.index();
        let resolved = live_events.into_iter().map(|mut e| {
            e.item = served
                .product_of_listing(&e.platform, &e.listing_id)
                .and_then(|g| served.item_of(g));
            e
        });
        live.add(resolved.collect());
    }
    state.metrics().events_accepted(accepted as u64);
    Ok((
        StatusCode::ACCEPTED,
        Json(EventReceipt {
            accepted,
            duplicates,
            rejected,
        }),
    ))
}

/// An accepted event the committed tables do not hold yet.
#[derive(Debug, Serialize, ToSchema)]
pub struct LiveInteraction {
    pub event_id: String,
    pub platform: String,
    pub account_id: String,
    pub listing_id: String,
    pub golden_id: Option<String>,
    #[serde(rename = "type")]
    pub event_type: String,
    /// RFC 3339, UTC.
    pub at: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct CustomerInteractions {
    pub customer_id: String,
    /// From the committed tables: one row per golden product, all platforms together.
    pub committed: Vec<CommittedInteraction>,
    /// Accepted through `POST /api/v1/events` since; the next `shopfuse run` folds them in.
    pub live: Vec<LiveInteraction>,
}

/// A customer's interactions: the committed ones and the live events since.
#[utoipa::path(
    get, path = "/api/v1/customers/{customer_id}/interactions",
    params(("customer_id" = String, Path, description = "Unified customer id (CU…)")),
    responses((status = 200, body = CustomerInteractions), (status = 403, body = ErrorBody),
              (status = 404, body = ErrorBody)),
    security(("api_key" = []))
)]
pub(super) async fn interactions(
    State(state): State<AppState>,
    caller: Caller,
    Path(customer_id): Path<String>,
) -> Result<Json<CustomerInteractions>, ApiError> {
    const ROUTE: &str = "/api/v1/customers/{customer_id}/interactions";
    caller.require(Role::Analyst, ROUTE)?;
    let (index, _, events) = super::customer_with_live(&state, &customer_id)?;
    audit(&state, &caller, ROUTE, &customer_id)?;
    Ok(Json(CustomerInteractions {
        committed: index.interactions(&customer_id).to_vec(),
        live: events
            .into_iter()
            .map(|e| LiveInteraction {
                golden_id: index
                    .product_of_listing(&e.platform, &e.listing_id)
                    .map(str::to_string),
                event_type: canonical_type(e.action).into(),
                at: chrono::DateTime::from_timestamp_micros(e.at)
                    .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Micros, true))
                    .unwrap_or_default(),
                event_id: e.event_id,
                platform: e.platform,
                account_id: e.account_id,
                listing_id: e.listing_id,
            })
            .collect(),
        customer_id,
    }))
}

/// Ids in a comma-separated list.
pub(super) fn id_set(list: Option<&str>) -> HashSet<&str> {
    list.unwrap_or_default()
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .collect()
}
