//! Static files, embedded in the binary and served under a name that carries a hash of
//! their content, so a browser may keep them for a year and still never uses a stale one.

use std::sync::LazyLock;

use actix_web::http::header;
use actix_web::{web, HttpResponse};
use sha2::{Digest, Sha256};

/// One embedded file.
pub struct Asset {
    /// The path it is served at, with the content hash (`/static/app.1a2b3c4d.css`).
    pub path: String,
    pub content_type: &'static str,
    pub body: &'static [u8],
}

impl Asset {
    fn new(stem: &str, extension: &str, content_type: &'static str, body: &'static [u8]) -> Asset {
        let hash = hex::encode(&Sha256::digest(body)[..6]);
        Asset {
            path: format!("/static/{stem}.{hash}.{extension}"),
            content_type,
            body,
        }
    }
}

/// The stylesheet every page links.
pub static STYLESHEET: LazyLock<Asset> = LazyLock::new(|| {
    Asset::new(
        "app",
        "css",
        "text/css; charset=utf-8",
        include_bytes!("../../../static/app.css"),
    )
});

/// The icon browsers show in the tab.
pub static ICON: LazyLock<Asset> = LazyLock::new(|| {
    Asset::new(
        "icon",
        "svg",
        "image/svg+xml",
        include_bytes!("../../../static/icon.svg"),
    )
});

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/static/{name}", web::get().to(serve));
}

async fn serve(name: web::Path<String>) -> HttpResponse {
    let asset = [&*STYLESHEET, &*ICON]
        .into_iter()
        .find(|a| a.path.strip_prefix("/static/") == Some(name.as_str()));
    match asset {
        Some(asset) => HttpResponse::Ok()
            .insert_header((header::CONTENT_TYPE, asset.content_type))
            .insert_header((header::CACHE_CONTROL, "public, max-age=31536000, immutable"))
            .body(asset.body),
        None => HttpResponse::NotFound().finish(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_stylesheet_is_named_after_its_content() {
        let path = &STYLESHEET.path;
        assert!(
            path.starts_with("/static/app.") && path.ends_with(".css"),
            "{path}"
        );
        let hash = path
            .trim_start_matches("/static/app.")
            .trim_end_matches(".css");
        assert_eq!(hash, hex::encode(&Sha256::digest(STYLESHEET.body)[..6]));
    }
}
