//! The shape of the API served: collections, paging, authentication.

/// One collection of objects.
#[derive(Clone, Debug)]
pub struct Collection {
    /// The path, e.g. `/Users` or `/api/v1/contacts`.
    pub path: String,
    /// The id field (default `id`).
    pub id_field: String,
    /// Ids are JSON numbers 1, 2, … (default); otherwise strings `c1`, `c2`, ….
    pub numeric_ids: bool,
    /// Fields whose values must be unique (409 otherwise).
    pub unique: Vec<String>,
    /// Query parameters that filter a listing by field equality.
    pub filters: Vec<String>,
    /// The member-list field of group-like objects, served as a sub-path.
    pub members: Option<String>,
}

impl Collection {
    /// A collection at `path` with numeric `id`s.
    pub fn new(path: &str) -> Self {
        Collection {
            path: path.trim_end_matches('/').to_owned(),
            id_field: "id".into(),
            numeric_ids: true,
            unique: Vec::new(),
            filters: Vec::new(),
            members: None,
        }
    }

    /// Builder: the id field.
    pub fn id_field(mut self, field: &str) -> Self {
        self.id_field = field.to_owned();
        self
    }

    /// Builder: string ids.
    pub fn string_ids(mut self) -> Self {
        self.numeric_ids = false;
        self
    }

    /// Builder: unique fields.
    pub fn unique(mut self, fields: &[&str]) -> Self {
        self.unique = fields.iter().map(|s| (*s).to_owned()).collect();
        self
    }

    /// Builder: filter parameters.
    pub fn filters(mut self, fields: &[&str]) -> Self {
        self.filters = fields.iter().map(|s| (*s).to_owned()).collect();
        self
    }

    /// Builder: a member list field.
    pub fn members(mut self, field: &str) -> Self {
        self.members = Some(field.to_owned());
        self
    }
}

/// How listings are paged.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum Paging {
    /// Everything in one answer.
    #[default]
    None,
    /// `?offset=N&limit=M`.
    OffsetLimit {
        /// The offset parameter.
        offset_param: String,
        /// The limit parameter.
        limit_param: String,
    },
    /// `?page=N&page_size=M`, pages counted from 1.
    PageNumber {
        /// The page parameter.
        page_param: String,
        /// The page size parameter.
        size_param: String,
    },
    /// `?cursor=TOKEN&limit=M`; the next token (or `null` on the last page)
    /// is put into the envelope at `next_field`.
    Cursor {
        /// The cursor parameter.
        cursor_param: String,
        /// The page size parameter.
        size_param: String,
        /// The envelope field of the next cursor.
        next_field: String,
    },
    /// `?page=N&per_page=M` with `Link: <…>; rel="next"` (RFC 8288).
    LinkHeader {
        /// The page parameter.
        page_param: String,
        /// The page size parameter.
        size_param: String,
    },
}

/// How requests authenticate.
#[derive(Clone, Debug, Default)]
pub enum ServerAuth {
    /// Anyone.
    #[default]
    None,
    /// `Authorization: Bearer <token>`.
    Bearer(String),
    /// HTTP Basic.
    Basic {
        /// The user name.
        username: String,
        /// The password.
        password: String,
    },
    /// An API key in a header.
    ApiKeyHeader {
        /// The header name.
        header: String,
        /// The key.
        key: String,
    },
    /// An API key in a query parameter.
    ApiKeyQuery {
        /// The parameter.
        param: String,
        /// The key.
        key: String,
    },
    /// OAuth2 client credentials at `POST /oauth/token`, then bearer tokens.
    OAuth2 {
        /// The client id.
        client_id: String,
        /// The client secret.
        client_secret: String,
    },
}

/// The shape of the API served.
#[derive(Clone, Debug)]
pub struct RestShape {
    /// The collections.
    pub collections: Vec<Collection>,
    /// The paging style.
    pub paging: Paging,
    /// The page size when the request names none (default 10).
    pub default_page_size: usize,
    /// `Some(field)`: listings answer `{field: [items], …}`; `None`: a bare array.
    pub envelope: Option<String>,
    /// The envelope field holding the total count, if any.
    pub total_field: Option<String>,
    /// Authentication.
    pub auth: ServerAuth,
}

impl RestShape {
    /// HaloPSA's API as `examples/rest/halopsa.toml` describes it: `/Users`
    /// (unique `emailaddress`) and `/Tickets` (filtered by `user_id`),
    /// page-number paging (`page_no`, `page_size`), listings in a `users`
    /// envelope with a `record_count`.
    pub fn halopsa(auth: ServerAuth) -> RestShape {
        RestShape {
            collections: vec![
                Collection::new("/Users").unique(&["emailaddress"]),
                Collection::new("/Tickets").filters(&["user_id"]),
            ],
            paging: Paging::PageNumber {
                page_param: "page_no".into(),
                size_param: "page_size".into(),
            },
            envelope: Some("users".into()),
            total_field: Some("record_count".into()),
            auth,
            ..RestShape::default()
        }
    }

    /// JobTraQ's contacts as `examples/rest/jobtraq.toml` describes them:
    /// `/contacts` with string ids in `contact_id` (unique `email`),
    /// listings in a `data` envelope with a `total`.
    pub fn jobtraq(paging: Paging, auth: ServerAuth) -> RestShape {
        RestShape {
            collections: vec![
                Collection::new("/contacts")
                    .id_field("contact_id")
                    .string_ids()
                    .unique(&["email"]),
            ],
            paging,
            envelope: Some("data".into()),
            total_field: Some("total".into()),
            auth,
            ..RestShape::default()
        }
    }
}

impl Default for RestShape {
    fn default() -> Self {
        RestShape {
            collections: Vec::new(),
            paging: Paging::None,
            default_page_size: 10,
            envelope: None,
            total_field: None,
            auth: ServerAuth::None,
        }
    }
}
