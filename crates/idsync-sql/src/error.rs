//! SQL errors and their one classification into the core's.

use idsync_core::{Error, ErrorKind};

/// What went wrong with the database or the configuration.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SqlError {
    /// The configuration cannot work; `field` names the setting
    /// (e.g. `users.columns.email`).
    #[error("configuration field {field}: {message}")]
    Config {
        /// The setting at fault.
        field: String,
        /// What is wrong with it.
        message: String,
    },
    /// The account does not exist.
    #[error("no such {kind} {id}")]
    NotFound {
        /// `user` or `group`.
        kind: &'static str,
        /// The target id.
        id: String,
    },
    /// Something stored in the database cannot be read back.
    #[error("stored {what} is not valid: {message}")]
    InvalidData {
        /// What was read.
        what: &'static str,
        /// Why it is not valid.
        message: String,
    },
    /// The operation needs something the configuration leaves out.
    #[error("{0} is not supported by this configuration")]
    Unsupported(&'static str),
    /// A write for the holder of a lease refused because the lease row no
    /// longer names that holder: another worker took the profile over (or
    /// the lease was never taken). Refused by the database, in the write's
    /// own transaction.
    #[error(
        "profile {profile}: {what} refused: this run's lease (worker {worker}, generation {generation}) \
         is no longer held; {}",
        holder_now(.now)
    )]
    LeaseLost {
        /// The profile.
        profile: String,
        /// What was not written (`the state`, `the run report`).
        what: &'static str,
        /// The worker named in the stale lease.
        worker: String,
        /// The stale lease's generation (fencing number).
        generation: i64,
        /// The lease row now: its worker and generation, if there is one.
        now: Option<(String, i64)>,
    },
    /// The database (or the connection to it) failed.
    #[error(transparent)]
    Database(#[from] sqlx::Error),
    /// The database refused a value of one account (a NOT NULL or CHECK
    /// constraint, a value too long for its column).
    #[error("column {column}: {source}")]
    Refused {
        /// The target field.
        field: String,
        /// Its column.
        column: String,
        /// The database's error.
        source: sqlx::Error,
    },
    /// A bug in idsync-sql.
    #[error("internal error: {0}")]
    Internal(&'static str),
}

fn holder_now(now: &Option<(String, i64)>) -> String {
    match now {
        Some((worker, generation)) => format!("worker {worker} holds generation {generation}"),
        None => "the profile has no lease".into(),
    }
}

impl SqlError {
    /// A configuration error naming `field`.
    pub fn config(field: impl Into<String>, message: impl Into<String>) -> Self {
        SqlError::Config {
            field: field.into(),
            message: message.into(),
        }
    }

    /// Into the core's error, naming the operation.
    pub fn into_core(self, op: &'static str) -> Error {
        let (kind, transient, object, field) = match &self {
            SqlError::Config { field, .. } => (ErrorKind::Config, false, None, Some(field.clone())),
            SqlError::NotFound { id, .. } => (ErrorKind::NotFound, false, Some(id.clone()), None),
            SqlError::InvalidData { .. } => (ErrorKind::InvalidData, false, None, None),
            SqlError::Unsupported(_) => (ErrorKind::Unsupported, false, None, None),
            SqlError::LeaseLost { profile, .. } => (ErrorKind::Conflict, false, Some(profile.clone()), None),
            SqlError::Database(e) => {
                let (k, t) = classify(e);
                (k, t, None, None)
            }
            SqlError::Refused { field, source, .. } => {
                let (k, t) = classify(source);
                (k, t, None, Some(field.clone()))
            }
            SqlError::Internal(_) => (ErrorKind::Internal, false, None, None),
        };
        let mut e = Error::new(kind, self.to_string()).with_backend(crate::NAME).with_op(op);
        if let Some(o) = object {
            e = e.with_object(o);
        }
        if let Some(f) = field {
            e = e.with_field(f);
        }
        e = if transient { e.transient() } else { e.permanent() };
        e.with_source(self)
    }
}

/// The kind and transience of a database error. PostgreSQL is classified
/// by SQLSTATE, SQLite by its (extended) result code.
pub fn classify(e: &sqlx::Error) -> (ErrorKind, bool) {
    use ErrorKind::*;
    match e {
        sqlx::Error::Database(db) => {
            let code = db.code().map(|c| c.into_owned()).unwrap_or_default();
            classify_code(&code, db.message())
        }
        sqlx::Error::Io(_)
        | sqlx::Error::Tls(_)
        | sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::WorkerCrashed => (Unavailable, true),
        sqlx::Error::Configuration(_) => (Config, false),
        sqlx::Error::RowNotFound => (NotFound, false),
        sqlx::Error::ColumnNotFound(_)
        | sqlx::Error::ColumnIndexOutOfBounds { .. }
        | sqlx::Error::ColumnDecode { .. }
        | sqlx::Error::Decode(_)
        | sqlx::Error::TypeNotFound { .. } => (InvalidData, false),
        _ => (Protocol, false),
    }
}

/// [`classify`] for a database's error code (SQLSTATE or SQLite code).
pub fn classify_code(code: &str, message: &str) -> (ErrorKind, bool) {
    use ErrorKind::*;
    match code {
        // PostgreSQL
        "23505" => (AlreadyExists, false),
        "40001" | "40P01" | "55P03" | "57014" | "57P01" | "57P02" | "57P03" | "53300" => (Unavailable, true),
        c if c.starts_with("08") => (Unavailable, true),
        c if c.starts_with("28") => (Auth, false),
        "42501" => (PermissionDenied, false),
        c if c.starts_with("42") || c.starts_with("3D") || c.starts_with("3F") => (Config, false),
        c if c.starts_with("22") || c.starts_with("23") => (InvalidData, false),
        // SQLite: BUSY, LOCKED and their extended codes
        "5" | "6" | "261" | "262" | "517" | "773" => (Unavailable, true),
        "2067" | "1555" => (AlreadyExists, false),
        "19" | "275" | "787" | "1299" | "1811" | "2323" => (InvalidData, false),
        "8" | "1032" => (PermissionDenied, false),
        _ if message.starts_with("no such table") || message.starts_with("no such column") => (Config, false),
        _ => (Protocol, false),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_map_to_kinds() {
        assert_eq!(classify_code("23505", ""), (ErrorKind::AlreadyExists, false));
        assert_eq!(classify_code("40P01", ""), (ErrorKind::Unavailable, true));
        assert_eq!(
            classify_code("42703", "column x does not exist"),
            (ErrorKind::Config, false)
        );
        assert_eq!(classify_code("5", "database is locked"), (ErrorKind::Unavailable, true));
        assert_eq!(classify_code("1", "no such column: x"), (ErrorKind::Config, false));
        assert_eq!(classify(&sqlx::Error::PoolTimedOut), (ErrorKind::Unavailable, true));
        let e = SqlError::config("users.table", "not an identifier").into_core("connect");
        assert!(e.stops_run());
        assert_eq!(e.field(), Some("users.table"));
    }
}
