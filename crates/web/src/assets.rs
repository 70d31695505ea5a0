//! The UI's static files, embedded in the binary and served under a name carrying their
//! content's hash (`/ui/static/<hash>/<name>`), so a browser may keep them forever and a new
//! build's files are new URLs. Debug builds read `static/` from disk on each request (edit,
//! reload), under the same URLs.

use std::sync::OnceLock;

use axum::extract::Path;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use sha2::{Digest, Sha256};

/// One embedded file.
pub struct Asset {
    /// Its path under `static/`.
    pub path: &'static str,
    pub content_type: &'static str,
    bytes: &'static [u8],
}

/// An embedded file of `static/`.
macro_rules! asset {
    ($path:literal, $type:expr) => {
        Asset {
            path: $path,
            content_type: $type,
            bytes: include_bytes!(concat!("../static/", $path)),
        }
    };
}

const JS: &str = "text/javascript; charset=utf-8";
const CSS: &str = "text/css; charset=utf-8";

/// Every file the pages load.
pub const ASSETS: [Asset; 9] = [
    asset!("css/app.css", CSS),
    asset!("js/keys.mjs", JS),
    asset!("vendor/htmx-2.0.11.min.js", JS),
    asset!("js/chart.mjs", JS),
    asset!("vendor/uPlot-1.6.32.iife.min.js", JS),
    asset!("vendor/uPlot-1.6.32.min.css", CSS),
    asset!("js/live.mjs", JS),
    asset!("js/timeline.mjs", JS),
    asset!("js/countdown.mjs", JS),
];

impl Asset {
    /// The file's bytes: embedded, or in a debug build read from the source tree when it is
    /// there.
    pub fn bytes(&self) -> std::borrow::Cow<'static, [u8]> {
        if cfg!(debug_assertions) {
            let disk = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("static")
                .join(self.path);
            if let Ok(b) = std::fs::read(disk) {
                return b.into();
            }
        }
        self.bytes.into()
    }

    /// The URL the pages use: the hash of the embedded content, then the file's name.
    pub fn url(&self) -> String {
        let name = self.path.rsplit('/').next().unwrap_or(self.path);
        format!("/ui/static/{}/{name}", hash(self.bytes))
    }
}

fn hash(b: &[u8]) -> String {
    Sha256::digest(b)
        .iter()
        .take(6)
        .map(|x| format!("{x:02x}"))
        .collect()
}

/// The asset URLs templates link to.
#[derive(Debug, Clone)]
pub struct Urls {
    pub css: String,
    pub keys: String,
    pub htmx: String,
    pub chart: String,
    pub uplot: String,
    pub uplot_css: String,
    pub live: String,
    pub timeline: String,
    pub countdown: String,
}

pub fn urls() -> &'static Urls {
    static URLS: OnceLock<Urls> = OnceLock::new();
    URLS.get_or_init(|| Urls {
        css: ASSETS[0].url(),
        keys: ASSETS[1].url(),
        htmx: ASSETS[2].url(),
        chart: ASSETS[3].url(),
        uplot: ASSETS[4].url(),
        uplot_css: ASSETS[5].url(),
        live: ASSETS[6].url(),
        timeline: ASSETS[7].url(),
        countdown: ASSETS[8].url(),
    })
}

/// `GET /ui/static/{hash}/{name}`. A stale hash (a page from an older build) still gets
/// today's file, but not for keeps.
pub async fn serve(Path((h, name)): Path<(String, String)>) -> Response {
    let Some(a) = ASSETS
        .iter()
        .find(|a| a.path.rsplit('/').next() == Some(name.as_str()))
    else {
        return (StatusCode::NOT_FOUND, "no such file").into_response();
    };
    let current = h == hash(a.bytes) && !cfg!(debug_assertions);
    let cache = if current {
        "public, max-age=31536000, immutable"
    } else {
        "no-cache"
    };
    (
        [
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static(a.content_type),
            ),
            (header::CACHE_CONTROL, HeaderValue::from_static(cache)),
        ],
        a.bytes().into_owned(),
    )
        .into_response()
}
