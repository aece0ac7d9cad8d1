//! Key management for admins over HTTP — `GET /api/v1/keys`, `POST /api/v1/keys`, `DELETE
//! /api/v1/keys/{name}` — the same key file `shopfuse keys` edits; the server picks a change
//! up at once.

use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::{json_rejection, Caller};
use crate::error::ErrorBody;
use crate::{ApiError, AppState, KeyStore, Role, ServeError};

/// Key writes are load–change–save of one file; one at a time.
static KEY_WRITES: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// A key as listed: never the key itself.
#[derive(Debug, Serialize, ToSchema)]
pub struct KeyInfo {
    pub name: String,
    /// viewer, analyst or admin.
    pub role: String,
    pub created_at: String,
    pub revoked_at: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct KeyList {
    pub keys: Vec<KeyInfo>,
}

/// Every key, revoked ones included.
#[utoipa::path(
    get, path = "/api/v1/keys",
    responses((status = 200, body = KeyList), (status = 403, body = ErrorBody)),
    security(("api_key" = []))
)]
pub(super) async fn list(
    State(state): State<AppState>,
    caller: Caller,
) -> Result<Json<KeyList>, ApiError> {
    caller.require(Role::Admin, "/api/v1/keys")?;
    let keys = state.keys();
    Ok(Json(KeyList {
        keys: keys
            .keys
            .iter()
            .map(|k| KeyInfo {
                name: k.name.clone(),
                role: k.role.to_string(),
                created_at: k.created_at.clone(),
                revoked_at: k.revoked_at.clone(),
            })
            .collect(),
    }))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewKey {
    /// viewer, analyst or admin.
    pub role: String,
    /// 1–64 letters, digits, `-`, `_` or `.`; default `ROLE-N`.
    pub name: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct CreatedKey {
    pub name: String,
    pub role: String,
    /// Shown this once; only its SHA-256 is kept.
    pub key: String,
}

/// Creates a key and returns it — the only time it is shown.
#[utoipa::path(
    post, path = "/api/v1/keys", request_body = NewKey,
    responses((status = 201, body = CreatedKey), (status = 400, body = ErrorBody),
              (status = 403, body = ErrorBody), (status = 409, body = ErrorBody)),
    security(("api_key" = []))
)]
pub(super) async fn create(
    State(state): State<AppState>,
    caller: Caller,
    body: Result<Json<NewKey>, JsonRejection>,
) -> Result<(StatusCode, Json<CreatedKey>), ApiError> {
    caller.require(Role::Admin, "/api/v1/keys")?;
    let Json(new) = body.map_err(json_rejection)?;
    let role = Role::parse(&new.role).ok_or_else(|| {
        ApiError::bad_request(format!(
            "role must be viewer, analyst or admin (is {:?})",
            new.role
        ))
    })?;
    if let Some(name) = new.name.as_deref().filter(|n| !valid_name(n)) {
        return Err(ApiError::bad_request(format!(
            "name {name:?}: 1–64 letters, digits, '-', '_' or '.'"
        )));
    }
    let path = KeyStore::path(state.project());
    let _one_at_a_time = KEY_WRITES.lock().unwrap_or_else(|e| e.into_inner());
    let name = match new.name {
        Some(name) => name,
        None => state.keys().next_name(role),
    };
    let key = KeyStore::create(&path, &name, role, &now()).map_err(key_error)?;
    let _ = state.reload_keys_if_changed();
    Ok((
        StatusCode::CREATED,
        Json(CreatedKey {
            name,
            role: role.to_string(),
            key,
        }),
    ))
}

/// Revokes a key; requests with it are refused from now on.
#[utoipa::path(
    delete, path = "/api/v1/keys/{name}",
    params(("name" = String, Path, description = "The key's name")),
    responses((status = 200, body = KeyInfo), (status = 403, body = ErrorBody),
              (status = 404, body = ErrorBody)),
    security(("api_key" = []))
)]
pub(super) async fn revoke(
    State(state): State<AppState>,
    caller: Caller,
    Path(name): Path<String>,
) -> Result<Json<KeyInfo>, ApiError> {
    caller.require(Role::Admin, "/api/v1/keys/{name}")?;
    let path = KeyStore::path(state.project());
    let _one_at_a_time = KEY_WRITES.lock().unwrap_or_else(|e| e.into_inner());
    KeyStore::revoke(&path, &name, &now()).map_err(key_error)?;
    let _ = state.reload_keys_if_changed();
    let keys = state.keys();
    let k = keys
        .keys
        .iter()
        .find(|k| k.name == name)
        .ok_or_else(|| ApiError::not_found(format!("no key named {name:?}")))?;
    Ok(Json(KeyInfo {
        name: k.name.clone(),
        role: k.role.to_string(),
        created_at: k.created_at.clone(),
        revoked_at: k.revoked_at.clone(),
    }))
}

fn valid_name(name: &str) -> bool {
    (1..=64).contains(&name.len())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
}

fn now() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

fn key_error(e: ServeError) -> ApiError {
    match e {
        ServeError::NoSuchKey(_) => ApiError::not_found(e.to_string()),
        ServeError::DuplicateKey(_) => {
            ApiError::new(StatusCode::CONFLICT, "conflict", e.to_string())
        }
        other => ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "key_file",
            other.to_string(),
        ),
    }
}
