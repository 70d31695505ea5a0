//! Errors of the store, naming the database and the operation that failed.

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("cannot create the data directory {path}: {source}")]
    DataDir {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot open the store {path}: {source}")]
    Open {
        path: String,
        #[source]
        source: sqlx::Error,
    },
    #[error("cannot migrate the store {path} to the current schema: {source}")]
    Migrate {
        path: String,
        #[source]
        source: sqlx::migrate::MigrateError,
    },
    #[error("store query failed ({what}): {source}")]
    Query {
        what: &'static str,
        #[source]
        source: sqlx::Error,
    },
    #[error("not a store URL: {url}: {detail}")]
    Url { url: String, detail: String },
    #[error("{what}: {detail}")]
    Refused { what: &'static str, detail: String },
    #[error("another writer kept changing the same {what}; try again")]
    Conflict { what: &'static str },
    #[error("the store holds a row it cannot read ({what}): {detail}")]
    Corrupt { what: &'static str, detail: String },
}

pub(crate) trait Ctx<T> {
    fn ctx(self, what: &'static str) -> Result<T, StoreError>;
}

impl<T> Ctx<T> for Result<T, sqlx::Error> {
    fn ctx(self, what: &'static str) -> Result<T, StoreError> {
        self.map_err(|source| StoreError::Query { what, source })
    }
}
