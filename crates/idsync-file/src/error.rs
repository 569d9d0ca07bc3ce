//! Errors of the file sources, and their one classification into the core's.

use idsync_core::{Error, ErrorKind};

/// What went wrong reading a file. Every variant names where.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum FileError {
    /// The file cannot be opened or read.
    #[error("cannot read {path}: {source}")]
    Open {
        /// The file.
        path: String,
        /// Why.
        source: std::io::Error,
    },
    /// Reading failed part way.
    #[error("read error at line {line}: {source}")]
    Io {
        /// The line.
        line: usize,
        /// Why.
        source: std::io::Error,
    },
    /// A malformed LDIF record.
    #[error("LDIF line {line}{}{}: {message}", dn.as_ref().map(|d| format!(", entry {d}")).unwrap_or_default(), field.as_ref().map(|f| format!(", field {f}")).unwrap_or_default())]
    Ldif {
        /// The line.
        line: usize,
        /// The record's DN, when known.
        dn: Option<String>,
        /// The attribute, when known.
        field: Option<String>,
        /// What is wrong.
        message: String,
    },
    /// A malformed CSV row.
    #[error("CSV line {line}{}{}: {message}", id.as_ref().map(|i| format!(", id {i}")).unwrap_or_default(), column.as_ref().map(|c| format!(", column {c}")).unwrap_or_default())]
    Csv {
        /// The line.
        line: u64,
        /// The row's id, when it could be read.
        id: Option<String>,
        /// The column, when known.
        column: Option<String>,
        /// What is wrong.
        message: String,
    },
}

/// The kind and transience of a file error: an unreadable file is
/// unavailable (the run cannot read; nothing is deprovisioned), a missing
/// one is a configuration error, and a bad record is invalid data about
/// that record alone.
pub fn classify(error: &FileError) -> (ErrorKind, bool) {
    match error {
        FileError::Open { source, .. } if source.kind() == std::io::ErrorKind::NotFound => (ErrorKind::Config, false),
        FileError::Open { .. } | FileError::Io { .. } => (ErrorKind::Unavailable, true),
        FileError::Ldif { .. } | FileError::Csv { .. } => (ErrorKind::InvalidData, false),
    }
}

impl FileError {
    fn field(&self) -> Option<&str> {
        match self {
            FileError::Ldif { field, .. } => field.as_deref(),
            FileError::Csv { column, .. } => column.as_deref(),
            _ => None,
        }
    }

    fn object(&self) -> String {
        match self {
            FileError::Ldif { dn: Some(dn), .. } => dn.clone(),
            FileError::Ldif { line, .. } | FileError::Io { line, .. } => format!("line {line}"),
            FileError::Csv { id: Some(id), .. } => id.clone(),
            FileError::Csv { line, .. } => format!("line {line}"),
            FileError::Open { path, .. } => path.clone(),
        }
    }

    /// Into the core's error, naming the operation, with this error as the
    /// source.
    pub fn into_core(self, op: &'static str) -> Error {
        let (kind, transient) = classify(&self);
        let mut out = Error::new(kind, self.to_string())
            .with_backend(crate::NAME)
            .with_op(op)
            .with_object(self.object());
        if let Some(f) = self.field() {
            out = out.with_field(f);
        }
        out = if transient { out.transient() } else { out.permanent() };
        out.with_source(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn into_core_classifies_and_keeps_the_file_error_as_its_source() {
        let e = FileError::Csv {
            line: 3,
            id: Some("e1".into()),
            column: Some("mail".into()),
            message: "not valid UTF-8".into(),
        }
        .into_core("read");
        assert_eq!((e.kind(), e.is_transient()), (ErrorKind::InvalidData, false));
        assert_eq!((e.op(), e.field()), ("read", Some("mail")));
        let source = std::error::Error::source(&e).and_then(|s| s.downcast_ref::<FileError>());
        assert!(matches!(source, Some(FileError::Csv { line: 3, .. })), "{source:?}");
        let missing = FileError::Open {
            path: "users.csv".into(),
            source: std::io::ErrorKind::NotFound.into(),
        };
        assert_eq!(classify(&missing), (ErrorKind::Config, false));
        let io = FileError::Io {
            line: 9,
            source: std::io::ErrorKind::UnexpectedEof.into(),
        };
        assert!(io.into_core("read").is_transient());
    }
}
