//! One error type for the whole core, mapped to the Python hierarchy in one place
//! (`src/python/errors.rs`): `StatemeterError` ← `ValidationError` (also a `ValueError`),
//! `RulesetError`, `ContractError`, `LedgerError`, `IntegrityError`.

use std::fmt;
use std::path::Path;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Error {
    /// Bad input: `field` names what was wrong (e.g. `input_tokens`, `attrs.x`, `request`).
    Validation { field: String, message: String },
    /// A ruleset file that cannot be used (parse error, unknown key, bad value).
    Ruleset(String),
    /// A contract or price table that cannot be used.
    Contract(String),
    /// Storage failed (cannot open, write, read; not a ledger).
    Ledger(String),
    /// The ledger's content contradicts its hash chain or an earlier record.
    Integrity(String),
    /// `error`, caused by `cause` (Python raises `error` from `cause`): e.g. a contract whose
    /// interpretation names a ruleset file that does not compile is a `Contract` error naming
    /// the line, caused by the `Ruleset` error.
    Caused {
        error: Box<Error>,
        cause: Box<Error>,
    },
}

pub type Result<T> = std::result::Result<T, Error>;

impl Error {
    /// `error` caused by `cause`.
    pub fn caused(error: Error, cause: Error) -> Self {
        Error::Caused {
            error: Box::new(error),
            cause: Box::new(cause),
        }
    }

    /// The error itself, without its cause (what `match`es on the kind should look at).
    pub fn outer(&self) -> &Error {
        match self {
            Error::Caused { error, .. } => error.outer(),
            e => e,
        }
    }

    /// The same error with its message rewritten by `f`, the kind and the cause kept.
    pub fn map_message(self, f: impl FnOnce(&str) -> String) -> Error {
        match self {
            Error::Validation { field, message } => Error::Validation {
                message: f(&message),
                field,
            },
            Error::Ruleset(m) => Error::Ruleset(f(&m)),
            Error::Contract(m) => Error::Contract(f(&m)),
            Error::Ledger(m) => Error::Ledger(f(&m)),
            Error::Integrity(m) => Error::Integrity(f(&m)),
            Error::Caused { error, cause } => Error::Caused {
                error: Box::new(error.map_message(f)),
                cause,
            },
        }
    }

    pub fn validation(field: impl Into<String>, message: impl Into<String>) -> Self {
        Error::Validation {
            field: field.into(),
            message: message.into(),
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Validation { field, message } => write!(f, "{field}: {message}"),
            Error::Ruleset(m) | Error::Contract(m) | Error::Ledger(m) | Error::Integrity(m) => {
                f.write_str(m)
            }
            Error::Caused { error, cause } => write!(f, "{error} (caused by: {cause})"),
        }
    }
}

impl std::error::Error for Error {}

/// Reads a UTF-8 text file (a ruleset, a contract, a price table): an IO error becomes the
/// error `kind` (e.g. `Error::Ruleset`) saying `cannot read <path>: <reason>`.
pub fn read_text(path: &Path, kind: fn(String) -> Error) -> Result<String> {
    std::fs::read_to_string(path).map_err(|e| kind(format!("cannot read {}: {e}", path.display())))
}

impl From<rusqlite::Error> for Error {
    /// Storage errors are `Ledger`, except a corrupt file (SQLite found a malformed page while
    /// reading or writing): its content is broken, which is `Integrity`.
    fn from(e: rusqlite::Error) -> Self {
        match e.sqlite_error_code() {
            Some(rusqlite::ErrorCode::DatabaseCorrupt) => Error::Integrity(format!(
                "the ledger file is damaged (sqlite: {e}); restore it from a copy"
            )),
            _ => Error::Ledger(format!("sqlite: {e}")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn read_text_names_the_path_in_the_given_kind() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("missing.toml");
        match read_text(&missing, Error::Ruleset) {
            Err(Error::Ruleset(m)) => {
                assert!(
                    m.starts_with(&format!("cannot read {}: ", missing.display())),
                    "{m}"
                )
            }
            other => panic!("expected a ruleset error, got {other:?}"),
        }
        let bad = dir.path().join("latin1.toml");
        std::fs::write(&bad, b"id = \"caf\xe9\"").unwrap();
        assert!(matches!(
            read_text(&bad, Error::Contract),
            Err(Error::Contract(_))
        ));
        let chained = Error::caused(
            Error::Contract("c (line 3)".into()),
            Error::Ruleset("r".into()),
        );
        assert_eq!(chained.to_string(), "c (line 3) (caused by: r)");
        assert_eq!(chained.outer(), &Error::Contract("c (line 3)".into()));
        match chained.map_message(|m| format!("f.toml: {m}")) {
            Error::Caused { error, cause } => {
                assert_eq!(*error, Error::Contract("f.toml: c (line 3)".into()));
                assert_eq!(*cause, Error::Ruleset("r".into()));
            }
            other => panic!("{other:?}"),
        }
        let good = dir.path().join("ok.toml");
        std::fs::write(&good, "id = 1\n").unwrap();
        assert_eq!(read_text(&good, Error::Contract).unwrap(), "id = 1\n");
    }
}
