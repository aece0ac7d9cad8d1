//! The crate's errors: [`ServeError`] for starting and reloading the server (and the key
//! commands), [`ApiError`] for what one request gets back.

use std::net::SocketAddr;
use std::path::PathBuf;

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use shopfuse_core::CoreError;
use utoipa::ToSchema;

/// What can stop the server from starting or from loading a new version.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    /// Reading the tables or the manifest failed; the source names the file.
    #[error(transparent)]
    Core(#[from] CoreError),
    /// The project has no committed version of a table the API needs.
    #[error("no {table} table yet: run `shopfuse run` on the project first")]
    MissingTable { table: &'static str },
    #[error("cannot listen on {addr}: {source} (is another server running there? pick another with --addr)")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
    /// The key file or the audit log cannot be read or written.
    #[error("{path}: {source}")]
    File {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: not a valid key file ({source}); restore it from backup or delete it to start over")]
    KeyFile {
        path: PathBuf,
        source: serde_json::Error,
    },
    /// A key command named a key that does not exist.
    #[error("no key named {0:?} (see `shopfuse keys list`)")]
    NoSuchKey(String),
    #[error("a key named {0:?} exists; choose another --name")]
    DuplicateKey(String),
    /// An erasure failed; nothing was committed (the tombstones may already be written,
    /// which only keeps the accounts out of later ingests).
    #[error("erasure failed")]
    Erase(#[from] shopfuse_pipeline::PipelineError),
    /// A server holds the project's event log; erasing offline would race its writer.
    #[error("a server (pid {pid}) is running on this project; erase through it: DELETE /api/v1/customers/{{id}} with an admin key")]
    ServerRunning { pid: u32 },
    /// The event log cannot be read, repaired or written.
    #[error("event log {path}: {source}")]
    EventLog {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// An error answer: its status and a JSON body `{"error": {"code", "message"}}`.
#[derive(Debug, Clone)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
    /// Seconds, sent as `Retry-After` (with `429`).
    pub retry_after: Option<u64>,
}

/// The body of every error answer.
#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorDetail {
    /// Stable, machine-readable: `unauthorized`, `forbidden`, `not_found`, `bad_request`, …
    pub code: String,
    /// What was wrong and how to fix it.
    pub message: String,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
            retry_after: None,
        }
    }

    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "bad_request", message)
    }

    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, "not_found", message)
    }

    /// The server cannot answer now (a table it reads failed): `503`, never a `500`.
    pub fn unavailable(message: impl Into<String>) -> Self {
        Self::new(StatusCode::SERVICE_UNAVAILABLE, "unavailable", message)
    }

    pub fn unauthorized() -> Self {
        Self::new(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "a valid API key is required: send it as `Authorization: Bearer KEY` (create one with `shopfuse keys create --role viewer`)",
        )
    }

    pub fn forbidden(route: &str, needed: crate::Role, held: crate::Role) -> Self {
        Self::new(
            StatusCode::FORBIDDEN,
            "forbidden",
            format!("{route} needs the {needed} role; this key is {held}"),
        )
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = ErrorBody {
            error: ErrorDetail {
                code: self.code.to_string(),
                message: self.message,
            },
        };
        let mut response = (self.status, axum::Json(body)).into_response();
        if let Some(seconds) = self.retry_after {
            response
                .headers_mut()
                .insert(axum::http::header::RETRY_AFTER, seconds.into());
        }
        response
    }
}
