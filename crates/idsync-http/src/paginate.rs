//! Pagination styles shared by the HTTP adapters: offset/limit (SCIM
//! `startIndex`/`count`, JumpCloud `skip`/`limit`), page number, cursor
//! token, and the RFC 8288 `Link: <…>; rel="next"` header.

use reqwest::header::{HeaderMap, LINK};
use serde::Deserialize;
use url::Url;

/// How an API pages its listings.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case", tag = "style", deny_unknown_fields)]
pub enum Pagination {
    /// Everything comes in one answer.
    None,
    /// `?offset=N&limit=M`: the next offset is `offset + items`. Ends on a
    /// short or empty page, or, when the API tells the total, when it is reached.
    OffsetLimit {
        /// The offset parameter (`startIndex` for SCIM, `skip` for JumpCloud).
        #[serde(default = "offset_param")]
        offset_param: String,
        /// The page size parameter (`count` for SCIM).
        #[serde(default = "limit_param")]
        limit_param: String,
        /// The page size asked for.
        #[serde(default = "page_size")]
        limit: u32,
        /// The first offset: 0, or 1 for SCIM's one-based `startIndex`.
        #[serde(default)]
        first: u64,
    },
    /// `?page=N&per_page=M`.
    PageNumber {
        /// The page parameter.
        #[serde(default = "page_param")]
        page_param: String,
        /// The page size parameter, when the API takes one.
        #[serde(default)]
        size_param: Option<String>,
        /// The page size asked for (and expected: a shorter page is the last).
        #[serde(default = "page_size")]
        size: u32,
        /// The first page number (default 1).
        #[serde(default = "one")]
        first: u64,
    },
    /// `?cursor=TOKEN`, the token taken from each answer by the adapter.
    Cursor {
        /// The cursor parameter.
        #[serde(default = "cursor_param")]
        cursor_param: String,
        /// The page size parameter, when the API takes one.
        #[serde(default)]
        size_param: Option<String>,
        /// The page size asked for.
        #[serde(default = "page_size")]
        size: u32,
    },
    /// Follows `Link: <url>; rel="next"` (RFC 8288) until there is none.
    LinkHeader {
        /// The page size parameter of the first request, when the API takes one.
        #[serde(default)]
        size_param: Option<String>,
        /// The page size asked for.
        #[serde(default = "page_size")]
        size: u32,
    },
}

fn offset_param() -> String {
    "offset".into()
}
fn limit_param() -> String {
    "limit".into()
}
fn page_param() -> String {
    "page".into()
}
fn cursor_param() -> String {
    "cursor".into()
}
fn page_size() -> u32 {
    100
}
fn one() -> u64 {
    1
}

impl Pagination {
    /// SCIM's `startIndex` (one-based) and `count`.
    pub fn scim(count: u32) -> Self {
        Pagination::OffsetLimit {
            offset_param: "startIndex".into(),
            limit_param: "count".into(),
            limit: count,
            first: 1,
        }
    }
}

/// What one page said, as far as paging is concerned.
#[derive(Clone, Copy, Debug)]
pub struct Page<'a> {
    /// How many items it held.
    pub items: usize,
    /// The total the API announced (SCIM `totalResults`), if any.
    pub total: Option<u64>,
    /// The next cursor token (cursor style), if any.
    pub next_cursor: Option<&'a str>,
    /// The response headers (Link style).
    pub headers: Option<&'a HeaderMap>,
}

impl<'a> Page<'a> {
    /// A page of `items` items and nothing else known.
    pub fn of(items: usize) -> Self {
        Page {
            items,
            total: None,
            next_cursor: None,
            headers: None,
        }
    }
}

/// Walks the pages of one listing: [`Pager::url`] is the page to fetch,
/// [`Pager::advance`] moves to the next one or says it was the last.
#[derive(Clone, Debug)]
pub struct Pager {
    pagination: Pagination,
    base: Url,
    current: Url,
    position: u64,
    pages: u64,
}

/// A hard stop against APIs that page forever.
const MAX_PAGES: u64 = 10_000_000;

impl Pager {
    /// Starts at the first page of `base` (which may carry its own query).
    pub fn new(pagination: Pagination, base: Url) -> Self {
        let position = match &pagination {
            Pagination::OffsetLimit { first, .. } | Pagination::PageNumber { first, .. } => *first,
            _ => 0,
        };
        let mut pager = Pager {
            pagination,
            current: base.clone(),
            base,
            position,
            pages: 0,
        };
        pager.current = pager.build(None);
        pager
    }

    /// The URL of the page to fetch now.
    pub fn url(&self) -> &Url {
        &self.current
    }

    fn build(&self, cursor: Option<&str>) -> Url {
        let mut u = self.base.clone();
        {
            let mut q = u.query_pairs_mut();
            match &self.pagination {
                Pagination::None => {}
                Pagination::OffsetLimit {
                    offset_param,
                    limit_param,
                    limit,
                    ..
                } => {
                    q.append_pair(offset_param, &self.position.to_string());
                    q.append_pair(limit_param, &limit.to_string());
                }
                Pagination::PageNumber {
                    page_param,
                    size_param,
                    size,
                    ..
                } => {
                    q.append_pair(page_param, &self.position.to_string());
                    if let Some(p) = size_param {
                        q.append_pair(p, &size.to_string());
                    }
                }
                Pagination::Cursor {
                    cursor_param,
                    size_param,
                    size,
                } => {
                    if let Some(c) = cursor {
                        q.append_pair(cursor_param, c);
                    }
                    if let Some(p) = size_param {
                        q.append_pair(p, &size.to_string());
                    }
                }
                Pagination::LinkHeader { size_param, size } => {
                    if let Some(p) = size_param {
                        q.append_pair(p, &size.to_string());
                    }
                }
            }
        }
        if u.query() == Some("") {
            u.set_query(None);
        }
        u
    }

    /// Moves past the page just read; false when it was the last.
    pub fn advance(&mut self, page: Page<'_>) -> bool {
        self.pages += 1;
        if self.pages >= MAX_PAGES {
            return false;
        }
        match &self.pagination {
            Pagination::None => false,
            Pagination::OffsetLimit { limit, first, .. } => {
                let (limit, first) = (u64::from(*limit), *first);
                if page.items == 0 {
                    return false;
                }
                self.position += page.items as u64;
                let more = match page.total {
                    Some(total) => self.position < first + total,
                    None => page.items as u64 >= limit,
                };
                if more {
                    self.current = self.build(None);
                }
                more
            }
            Pagination::PageNumber { size, .. } => {
                let more = page.items > 0
                    && match page.total {
                        Some(total) => (self.position + 1 - self.first_page()) * u64::from(*size) < total,
                        None => page.items as u64 >= u64::from(*size),
                    };
                if more {
                    self.position += 1;
                    self.current = self.build(None);
                }
                more
            }
            Pagination::Cursor { .. } => match page.next_cursor.filter(|c| !c.is_empty()) {
                Some(c) if page.items > 0 => {
                    let next = self.build(Some(c));
                    let changed = next != self.current;
                    self.current = next;
                    changed
                }
                _ => false,
            },
            Pagination::LinkHeader { .. } => match page.headers.and_then(|h| next_link(h, &self.current)) {
                Some(next) if next != self.current => {
                    self.current = next;
                    true
                }
                _ => false,
            },
        }
    }

    fn first_page(&self) -> u64 {
        match &self.pagination {
            Pagination::PageNumber { first, .. } => *first,
            _ => 0,
        }
    }
}

/// The `rel="next"` target of the `Link` headers (RFC 8288), resolved
/// against `base` when relative.
pub fn next_link(headers: &HeaderMap, base: &Url) -> Option<Url> {
    for value in headers.get_all(LINK) {
        let Ok(text) = value.to_str() else { continue };
        for link in split_links(text) {
            let link = link.trim();
            let Some(rest) = link.strip_prefix('<') else { continue };
            let Some((target, params)) = rest.split_once('>') else {
                continue;
            };
            let is_next = params.split(';').any(|p| {
                let Some((k, v)) = p.trim().split_once('=') else {
                    return false;
                };
                k.trim().eq_ignore_ascii_case("rel")
                    && v.trim()
                        .trim_matches('"')
                        .split_ascii_whitespace()
                        .any(|r| r.eq_ignore_ascii_case("next"))
            });
            if is_next {
                return base.join(target.trim()).ok();
            }
        }
    }
    None
}

/// Splits a Link header on the commas between links (not those inside `<…>` or quotes).
fn split_links(text: &str) -> Vec<&str> {
    let (mut out, mut start, mut in_angle, mut in_quote) = (Vec::new(), 0, false, false);
    for (i, c) in text.char_indices() {
        match c {
            '<' if !in_quote => in_angle = true,
            '>' if !in_quote => in_angle = false,
            '"' if !in_angle => in_quote = !in_quote,
            ',' if !in_angle && !in_quote => {
                out.push(&text[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    out.push(&text[start..]);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::header::HeaderValue;

    fn u(s: &str) -> Url {
        Url::parse(s).unwrap()
    }

    #[test]
    fn scim_offset_paging_follows_total_results() {
        let mut p = Pager::new(Pagination::scim(2), u("http://127.0.0.1/v2/Users?sortBy=id"));
        assert_eq!(
            p.url().as_str(),
            "http://127.0.0.1/v2/Users?sortBy=id&startIndex=1&count=2"
        );
        assert!(p.advance(Page {
            total: Some(5),
            ..Page::of(2)
        }));
        assert_eq!(
            p.url().as_str(),
            "http://127.0.0.1/v2/Users?sortBy=id&startIndex=3&count=2"
        );
        // a server that caps the page below `count` still gets asked for the rest
        assert!(p.advance(Page {
            total: Some(5),
            ..Page::of(1)
        }));
        assert_eq!(
            p.url().as_str(),
            "http://127.0.0.1/v2/Users?sortBy=id&startIndex=4&count=2"
        );
        assert!(!p.advance(Page {
            total: Some(5),
            ..Page::of(2)
        }));
    }

    #[test]
    fn skip_limit_ends_on_a_short_page() {
        let pagination = Pagination::OffsetLimit {
            offset_param: "skip".into(),
            limit_param: "limit".into(),
            limit: 3,
            first: 0,
        };
        let mut p = Pager::new(pagination, u("http://127.0.0.1/api/systemusers"));
        assert_eq!(p.url().query(), Some("skip=0&limit=3"));
        assert!(p.advance(Page::of(3)));
        assert_eq!(p.url().query(), Some("skip=3&limit=3"));
        assert!(!p.advance(Page::of(2)));
        let mut p = Pager::new(Pagination::None, u("http://127.0.0.1/x"));
        assert_eq!(p.url().as_str(), "http://127.0.0.1/x");
        assert!(!p.advance(Page::of(10)));
    }

    #[test]
    fn page_numbers_and_cursors() {
        let pagination = Pagination::PageNumber {
            page_param: "page".into(),
            size_param: Some("per_page".into()),
            size: 2,
            first: 1,
        };
        let mut p = Pager::new(pagination, u("http://127.0.0.1/x"));
        assert_eq!(p.url().query(), Some("page=1&per_page=2"));
        assert!(p.advance(Page::of(2)));
        assert_eq!(p.url().query(), Some("page=2&per_page=2"));
        assert!(!p.advance(Page::of(1)));

        let pagination = Pagination::Cursor {
            cursor_param: "after".into(),
            size_param: None,
            size: 2,
        };
        let mut p = Pager::new(pagination, u("http://127.0.0.1/x"));
        assert_eq!(p.url().query(), None);
        assert!(p.advance(Page {
            next_cursor: Some("abc=="),
            ..Page::of(2)
        }));
        assert_eq!(p.url().query(), Some("after=abc%3D%3D"));
        assert!(!p.advance(Page {
            next_cursor: Some("abc=="),
            ..Page::of(2)
        }));
        assert!(!p.advance(Page::of(2)));
    }

    #[test]
    fn link_header_next() {
        let mut h = HeaderMap::new();
        h.append(
            LINK,
            HeaderValue::from_static(r#"<https://127.0.0.1/x?page=1>; rel="prev", </x?page=3&a=1,2>; rel="next last""#),
        );
        let base = u("https://127.0.0.1/x?page=2");
        assert_eq!(
            next_link(&h, &base).unwrap().as_str(),
            "https://127.0.0.1/x?page=3&a=1,2"
        );
        let mut p = Pager::new(
            Pagination::LinkHeader {
                size_param: Some("per_page".into()),
                size: 50,
            },
            u("https://127.0.0.1/x"),
        );
        assert_eq!(p.url().query(), Some("per_page=50"));
        assert!(p.advance(Page {
            headers: Some(&h),
            ..Page::of(50)
        }));
        assert_eq!(p.url().as_str(), "https://127.0.0.1/x?page=3&a=1,2");
        assert!(!p.advance(Page {
            headers: Some(&HeaderMap::new()),
            ..Page::of(50)
        }));
    }
}
