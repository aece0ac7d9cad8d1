//! The web dashboard at `/`: static files compiled into the binary, so `shopfuse serve` is the
//! whole product — no web server beside it, nothing fetched at run time, works offline.
//!
//! The pages (`web/app.js`) are a small single-page application on the JSON API: every figure
//! on screen comes from a `/api/v1` route with the signed-in key, so the dashboard can show
//! nothing the key's role could not read itself, and every per-customer page is audited by the
//! API. Charts are Apache ECharts (fetched from npm by `scripts/fetch-web-assets.sh`, checked
//! by checksum, see `build.rs`).
//!
//! Why no front-end framework or bundler: the pages are plain DOM built from API answers,
//! and a framework would bring Node.js into every build of the binary. The UI code is ours;
//! the charting, which no one should write by hand, is ECharts.

use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use sha2::{Digest, Sha256};
use std::sync::LazyLock;

use crate::AppState;

/// One embedded file: its bytes, type and how long a browser may keep it.
struct Asset {
    body: &'static [u8],
    content_type: &'static str,
    /// `true` for files whose URL names their version: cached for a year.
    immutable: bool,
    etag: LazyLock<String>,
}

macro_rules! asset {
    ($path:literal, $type:literal, $immutable:expr) => {{
        const BODY: &[u8] = include_bytes!(concat!(env!("CARGO_MANIFEST_DIR"), "/web/", $path));
        Asset {
            body: BODY,
            content_type: $type,
            immutable: $immutable,
            etag: LazyLock::new(|| format!("\"{}\"", &hex::encode(Sha256::digest(BODY))[..16])),
        }
    }};
}

static INDEX: Asset = asset!("index.html", "text/html; charset=utf-8", false);
static APP_JS: Asset = asset!("app.js", "text/javascript; charset=utf-8", false);
static I18N_JS: Asset = asset!("i18n.js", "text/javascript; charset=utf-8", false);
static APP_CSS: Asset = asset!("app.css", "text/css; charset=utf-8", false);
static ICON: Asset = asset!("icon.svg", "image/svg+xml", false);
static ECHARTS: Asset = asset!(
    "vendor/echarts.min.js",
    "text/javascript; charset=utf-8",
    true
);
static ECHARTS_LICENSE: Asset = asset!("vendor/LICENSE-echarts", "text/plain; charset=utf-8", true);

/// The dashboard's routes: the page, its scripts and styles. None needs a key (they hold no
/// data); the data comes from the API, which does.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/", get(|h: HeaderMap| async move { serve(&INDEX, &h) }))
        .route(
            "/assets/app.js",
            get(|h: HeaderMap| async move { serve(&APP_JS, &h) }),
        )
        .route(
            "/assets/i18n.js",
            get(|h: HeaderMap| async move { serve(&I18N_JS, &h) }),
        )
        .route(
            "/assets/app.css",
            get(|h: HeaderMap| async move { serve(&APP_CSS, &h) }),
        )
        .route(
            "/assets/icon.svg",
            get(|h: HeaderMap| async move { serve(&ICON, &h) }),
        )
        .route(
            "/favicon.ico",
            get(|h: HeaderMap| async move { serve(&ICON, &h) }),
        )
        .route(
            "/assets/echarts-6.1.0.min.js",
            get(|h: HeaderMap| async move { serve(&ECHARTS, &h) }),
        )
        .route(
            "/assets/LICENSE-echarts.txt",
            get(|h: HeaderMap| async move { serve(&ECHARTS_LICENSE, &h) }),
        )
}

/// The file, or `304` when the browser's copy is current.
fn serve(asset: &Asset, request: &HeaderMap) -> Response {
    let etag = asset.etag.as_str();
    let cache = if asset.immutable {
        "public, max-age=31536000, immutable"
    } else {
        // Revalidated on every load (a 304 costs nothing), so a new binary's pages show at once.
        "no-cache"
    };
    let fresh = request
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|t| t.trim() == etag));
    let headers = [
        (header::CACHE_CONTROL, HeaderValue::from_static(cache)),
        (
            header::ETAG,
            HeaderValue::from_str(etag).unwrap_or(HeaderValue::from_static("\"\"")),
        ),
        (
            header::CONTENT_TYPE,
            HeaderValue::from_static(asset.content_type),
        ),
        (
            header::HeaderName::from_static("x-content-type-options"),
            HeaderValue::from_static("nosniff"),
        ),
    ];
    if fresh {
        return (StatusCode::NOT_MODIFIED, headers).into_response();
    }
    (StatusCode::OK, headers, asset.body).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_page_loads_only_embedded_assets() {
        let page = std::str::from_utf8(INDEX.body).unwrap();
        for src in [
            "/assets/app.js",
            "/assets/i18n.js",
            "/assets/app.css",
            "/assets/echarts-6.1.0.min.js",
        ] {
            assert!(page.contains(src), "index.html does not load {src}");
        }
        assert!(
            !page.contains("http://") && !page.contains("https://"),
            "index.html loads something from outside"
        );
        assert!(
            ECHARTS.body.len() > 500_000,
            "echarts.min.js looks truncated"
        );
    }

    #[test]
    fn a_current_copy_gets_304() {
        let mut h = HeaderMap::new();
        h.insert(header::IF_NONE_MATCH, APP_JS.etag.parse().unwrap());
        assert_eq!(serve(&APP_JS, &h).status(), StatusCode::NOT_MODIFIED);
        assert_eq!(serve(&APP_JS, &HeaderMap::new()).status(), StatusCode::OK);
    }
}
