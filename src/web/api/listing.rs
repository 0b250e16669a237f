//! Lists in the API, one way for every list endpoint: `page` and `per_page` from the
//! query string, the rest of it handed to the list's own filters (in the services),
//! and the answer: the same JSON array as ever, with `X-Total-Count` and an RFC 8288
//! `Link` header (`first`, `prev`, `next`, `last`) whose URLs keep the filters.

use actix_web::{HttpRequest, HttpResponse};
use serde::Serialize;

use crate::services::listing::{Params, Problems};
use crate::services::{ServiceError, Window};
use crate::web::error::ApiError;

/// Rows a page has when `per_page` is not given, and the most it may ask for.
pub const DEFAULT_PER_PAGE: u32 = 100;
pub const MAX_PER_PAGE: u32 = 500;

/// Which page of a list the query string asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PageParams {
    /// The page, from 1. Default 1; a page past the end is empty (the total still
    /// tells how many rows there are).
    #[param(required = false, minimum = 1, maximum = 1000000)]
    pub page: u32,
    /// Rows per page, 1 to 500. Default 100.
    #[param(required = false, minimum = 1, maximum = 500)]
    pub per_page: u32,
}

/// The most pages a list may be asked for (a bound that keeps offsets sane).
const MAX_PAGE: u32 = 1_000_000;

impl PageParams {
    /// The rows of this page.
    pub fn window(&self) -> Window {
        Window {
            offset: i64::from(self.page - 1) * i64::from(self.per_page),
            limit: i64::from(self.per_page),
        }
    }
}

/// A list request: its page, and where it was asked (for the links).
#[derive(Debug, Clone)]
pub struct ListRequest {
    pub page: PageParams,
    path: String,
    /// The filters as the client sent them, for the links to other pages.
    kept: Vec<(String, String)>,
}

/// A whole number in `1..=max`, or the problem with it.
fn count(text: Option<String>, default: u32, max: u32) -> Result<u32, String> {
    match text {
        None => Ok(default),
        Some(text) => text
            .parse::<u32>()
            .ok()
            .filter(|n| (1..=max).contains(n))
            .ok_or_else(|| format!("must be a whole number from 1 to {max}")),
    }
}

impl ListRequest {
    /// Reads `page` and `per_page` from the request; the rest of the query string is
    /// returned for the list's filters. Bad values answer 422 naming the field.
    pub fn of(req: &HttpRequest) -> Result<(ListRequest, Params), ApiError> {
        let pairs: Vec<(String, String)> = form_urlencoded::parse(req.query_string().as_bytes())
            .into_owned()
            .collect();
        let mut params = Params::new(pairs.clone());
        let page = params.one("page");
        let per_page = params.one("per_page");
        let page = count(page, 1, MAX_PAGE)
            .map_err(|m| ApiError::from(ServiceError::invalid("page", m)))?;
        let per_page = count(per_page, DEFAULT_PER_PAGE, MAX_PER_PAGE)
            .map_err(|m| ApiError::from(ServiceError::invalid("per_page", m)))?;
        let rest = params.clone();
        if let Err(problems) = params.finish(()) {
            // Only `page` or `per_page` given twice can be a problem here.
            if let Some(p) = problems
                .0
                .into_iter()
                .find(|p| p.field == "page" || p.field == "per_page")
            {
                return Err(ServiceError::invalid(p.field, p.message).into());
            }
        }
        let kept = pairs
            .into_iter()
            .filter(|(k, _)| k != "page" && k != "per_page")
            .collect();
        Ok((
            ListRequest {
                page: PageParams { page, per_page },
                path: req.path().to_owned(),
                kept,
            },
            rest,
        ))
    }

    /// The rows this request asks for.
    pub fn window(&self) -> Window {
        self.page.window()
    }

    /// The relative URL of page `n` of the same list, with the same filters.
    fn link(&self, n: u32) -> String {
        let mut query = form_urlencoded::Serializer::new(String::new());
        for (k, v) in &self.kept {
            query.append_pair(k, v);
        }
        query.append_pair("page", &n.to_string());
        query.append_pair("per_page", &self.page.per_page.to_string());
        format!("{}?{}", self.path, query.finish())
    }

    /// The answer: `body` (the JSON array of the page's rows), the total and the links.
    pub fn answer<T: Serialize + ?Sized>(&self, body: &T, total: i64) -> HttpResponse {
        let per_page = i64::from(self.page.per_page);
        let last = u32::try_from(((total + per_page - 1) / per_page).max(1)).unwrap_or(u32::MAX);
        let here = self.page.page;
        let mut links = vec![(1, "first")];
        if here > 1 {
            links.push(((here - 1).min(last), "prev"));
        }
        if here < last {
            links.push((here + 1, "next"));
        }
        links.push((last, "last"));
        let link = links
            .into_iter()
            .map(|(n, rel)| format!("<{}>; rel=\"{rel}\"", self.link(n)))
            .collect::<Vec<_>>()
            .join(", ");
        HttpResponse::Ok()
            .insert_header(("X-Total-Count", total.to_string()))
            .insert_header(("Link", link))
            .json(body)
    }
}

/// A list's filters read by the list's own reader, or 422 naming the first problem.
pub fn filters<Q, F>(
    params: Params,
    read: impl FnOnce(Params) -> (Q, Result<F, Problems>),
) -> Result<F, ApiError> {
    read(params).1.map_err(|p| ServiceError::from(p).into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_are_whole_numbers_in_range() {
        assert_eq!(count(None, 100, 500), Ok(100));
        assert_eq!(count(Some("500".into()), 100, 500), Ok(500));
        for bad in ["0", "501", "-1", "1.5", "10000", "ten", "99999999999"] {
            assert!(count(Some(bad.into()), 100, 500).is_err(), "{bad}");
        }
    }

    #[test]
    fn links_keep_the_filters_and_name_every_page() {
        let req = actix_web::test::TestRequest::get()
            .uri("/api/v1/guarantees?state=issued&state=accepted&page=2&per_page=10&sort=-amount")
            .to_http_request();
        let (list, rest) = ListRequest::of(&req).expect("valid");
        assert_eq!(
            list.window(),
            Window {
                offset: 10,
                limit: 10
            }
        );
        let mut rest = rest;
        assert_eq!(rest.many("state"), ["issued", "accepted"]);
        let answer = list.answer(&Vec::<u8>::new(), 25);
        let link = answer
            .headers()
            .get("Link")
            .and_then(|v| v.to_str().ok())
            .expect("a Link header");
        let page = |n: u32| {
            format!("</api/v1/guarantees?state=issued&state=accepted&sort=-amount&page={n}&per_page=10>")
        };
        assert_eq!(
            link,
            format!(
                "{}; rel=\"first\", {}; rel=\"prev\", {}; rel=\"next\", {}; rel=\"last\"",
                page(1),
                page(1),
                page(3),
                page(3)
            )
        );
        assert_eq!(
            answer
                .headers()
                .get("X-Total-Count")
                .and_then(|v| v.to_str().ok()),
            Some("25")
        );
        for bad in [
            "page=0",
            "per_page=0",
            "per_page=10000",
            "page=-1",
            "page=1&page=2",
        ] {
            let req = actix_web::test::TestRequest::get()
                .uri(&format!("/api/v1/guarantees?{bad}"))
                .to_http_request();
            assert!(ListRequest::of(&req).is_err(), "{bad}");
        }
    }
}
