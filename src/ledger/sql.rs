//! Read-only SQL over a ledger, through the ledger's own connection ([`query`]).
//!
//! Reading a ledger file with another SQLite library in the same process (Python's `sqlite3`
//! module links its own) is unsafe while statemeter has the file open: POSIX advisory locks
//! belong to the process, so when either library closes its file descriptor the kernel drops
//! the locks the other library holds (SQLite's documented hazard of two copies of SQLite in
//! one process). Queries run here use the connection statemeter already has.
//!
//! Only reading is authorised: `SELECT` (with `WITH`, functions, `json_extract`, ...) and a
//! few schema-reading pragmas. Writes, transactions, `ATTACH`, schema changes and other
//! pragmas are refused before anything runs (an SQLite authorizer checks the compiled
//! statement), so a query cannot change the ledger or leave the connection in a transaction.

use rusqlite::hooks::{AuthAction, AuthContext, Authorization};
use rusqlite::types::{ToSqlOutput, Value, ValueRef};
use rusqlite::Connection;

use super::Store;
use crate::error::{Error, Result};

/// Pragmas whose argument names what to read (`PRAGMA table_info(events)`).
const ARG_PRAGMAS: &[&str] = &[
    "table_info",
    "table_xinfo",
    "table_list",
    "index_list",
    "index_info",
    "index_xinfo",
    "foreign_key_list",
    "integrity_check",
    "quick_check",
];

/// Pragmas a query may read without an argument (given a value, they would set it).
const READ_PRAGMAS: &[&str] = &[
    "page_count",
    "page_size",
    "freelist_count",
    "user_version",
    "schema_version",
    "application_id",
    "encoding",
    "journal_mode",
    "database_list",
    "compile_options",
];

/// One SQL value.
#[derive(Clone, Debug, PartialEq)]
pub enum SqlValue {
    Null,
    Integer(i64),
    Real(f64),
    Text(String),
    Blob(Vec<u8>),
}

/// The parameters of a query: positional (`?`, `?1`) or named (`:name`, `@name`, `$name`).
#[derive(Clone, Debug, Default)]
pub enum SqlParams {
    #[default]
    None,
    Positional(Vec<SqlValue>),
    Named(Vec<(String, SqlValue)>),
}

/// A query's result: column names and rows.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct SqlRows {
    pub columns: Vec<String>,
    pub rows: Vec<Vec<SqlValue>>,
}

impl rusqlite::ToSql for SqlValue {
    fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
        Ok(match self {
            SqlValue::Null => ToSqlOutput::Owned(Value::Null),
            SqlValue::Integer(i) => ToSqlOutput::Owned(Value::Integer(*i)),
            SqlValue::Real(f) => ToSqlOutput::Owned(Value::Real(*f)),
            SqlValue::Text(s) => ToSqlOutput::Borrowed(ValueRef::Text(s.as_bytes())),
            SqlValue::Blob(b) => ToSqlOutput::Borrowed(ValueRef::Blob(b)),
        })
    }
}

fn authorize(ctx: AuthContext<'_>) -> Authorization {
    match ctx.action {
        AuthAction::Select | AuthAction::Read { .. } | AuthAction::Recursive => {
            Authorization::Allow
        }
        AuthAction::Function { .. } => Authorization::Allow,
        AuthAction::Pragma {
            pragma_name,
            pragma_value,
        } => {
            let name = pragma_name.to_ascii_lowercase();
            if ARG_PRAGMAS.contains(&name.as_str())
                || (pragma_value.is_none() && READ_PRAGMAS.contains(&name.as_str()))
            {
                Authorization::Allow
            } else {
                Authorization::Deny
            }
        }
        _ => Authorization::Deny,
    }
}

/// Runs one read-only SQL statement with `params` on the store's connection.
///
/// Fails with `Error::Validation` (field `query`) for a statement that would write, change
/// the schema or connection, for several statements, and for SQL SQLite rejects.
pub fn query(store: &Store, sql: &str, params: &SqlParams) -> Result<SqlRows> {
    let conn = store.connection();
    conn.authorizer(Some(authorize));
    let result = run(conn, sql, params);
    conn.authorizer(None::<fn(AuthContext<'_>) -> Authorization>);
    result
}

fn run(conn: &Connection, sql: &str, params: &SqlParams) -> Result<SqlRows> {
    let bad = |m: String| Error::validation("query", m);
    let mut stmt = conn.prepare(sql).map_err(|e| match e {
        rusqlite::Error::SqliteFailure(f, _)
            if f.code == rusqlite::ErrorCode::AuthorizationForStatementDenied =>
        {
            bad(
                "only reading is allowed: SELECT (WITH, functions) and schema-reading pragmas; \
             writes, transactions, ATTACH, schema changes and other pragmas are refused"
                    .into(),
            )
        }
        rusqlite::Error::MultipleStatement => bad("must be one SQL statement".into()),
        other => bad(format!("{other}")),
    })?;
    if !stmt.readonly() {
        return Err(bad("only reading is allowed".into()));
    }
    let columns: Vec<String> = stmt.column_names().iter().map(|c| c.to_string()).collect();
    let n = columns.len();
    let mut rows = match params {
        SqlParams::None => stmt.query([]),
        SqlParams::Positional(v) => stmt.query(rusqlite::params_from_iter(v.iter())),
        SqlParams::Named(v) => {
            let named: Vec<(&str, &dyn rusqlite::ToSql)> = v
                .iter()
                .map(|(k, v)| (k.as_str(), v as &dyn rusqlite::ToSql))
                .collect();
            stmt.query(named.as_slice())
        }
    }
    .map_err(|e| bad(format!("{e}")))?;
    let mut out = Vec::new();
    while let Some(row) = rows.next().map_err(|e| bad(format!("{e}")))? {
        let mut values = Vec::with_capacity(n);
        for j in 0..n {
            values.push(match row.get_ref(j)? {
                ValueRef::Null => SqlValue::Null,
                ValueRef::Integer(i) => SqlValue::Integer(i),
                ValueRef::Real(f) => SqlValue::Real(f),
                ValueRef::Text(t) => SqlValue::Text(String::from_utf8_lossy(t).into_owned()),
                ValueRef::Blob(b) => SqlValue::Blob(b.to_vec()),
            });
        }
        out.push(values);
    }
    Ok(SqlRows { columns, rows: out })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ledger::{Durability, Pending};

    fn store() -> Store {
        let mut s = Store::open(None, Durability::Sync).unwrap();
        let p = |id: &str, ts: i64| Pending {
            id: id.into(),
            event_json: format!(r#"{{"attrs":{{}},"id":"{id}","kind":"tool_call","ts":{ts}}}"#),
            classification_json: r#"{"tag":"stateless"}"#.into(),
            ts_explicit: true,
        };
        s.append(&[p("a", 5), p("b", 7)]).unwrap();
        s
    }

    #[test]
    fn reads_with_params_and_types() {
        let s = store();
        let r = query(
            &s,
            "SELECT seq, json_extract(record, '$.e.id') AS id, hash, 1.5 AS x, NULL AS n \
             FROM events WHERE seq >= ?1 ORDER BY seq",
            &SqlParams::Positional(vec![SqlValue::Integer(1)]),
        )
        .unwrap();
        assert_eq!(r.columns, ["seq", "id", "hash", "x", "n"]);
        assert_eq!(r.rows.len(), 2);
        assert_eq!(r.rows[1][0], SqlValue::Integer(2));
        assert_eq!(r.rows[1][1], SqlValue::Text("b".into()));
        // Version 3: the last row keeps the whole chain hash, the others its first 4 bytes.
        assert!(matches!(&r.rows[0][2], SqlValue::Blob(b) if b.len() == 4));
        assert!(matches!(&r.rows[1][2], SqlValue::Blob(b) if b.len() == 32));
        assert_eq!(r.rows[0][3], SqlValue::Real(1.5));
        let named = query(
            &s,
            "SELECT count(*) FROM events WHERE json_extract(record, '$.e.id') = :id",
            &SqlParams::Named(vec![(":id".into(), SqlValue::Text("a".into()))]),
        )
        .unwrap();
        assert_eq!(named.rows, vec![vec![SqlValue::Integer(1)]]);
        let info = query(&s, "PRAGMA table_info(events)", &SqlParams::None).unwrap();
        assert_eq!(info.rows.len(), 3);
    }

    #[test]
    fn anything_but_reading_is_refused_and_nothing_changes() {
        let mut s = store();
        for sql in [
            "DELETE FROM events",
            "UPDATE events SET record = ''",
            "INSERT INTO meta VALUES ('x', 'y')",
            "DROP TABLE events",
            "CREATE TABLE t (x)",
            "CREATE TEMP TRIGGER t AFTER INSERT ON events BEGIN SELECT 1; END",
            "BEGIN",
            "ATTACH ':memory:' AS other",
            "PRAGMA query_only = 0",
            "PRAGMA writable_schema = 1",
            "PRAGMA wal_checkpoint",
            "SELECT 1; DELETE FROM events",
            "WITH x AS (SELECT 1) DELETE FROM events",
        ] {
            match query(&s, sql, &SqlParams::None) {
                Err(Error::Validation { field, .. }) => assert_eq!(field, "query", "{sql}"),
                other => panic!("{sql}: {other:?}"),
            }
        }
        assert_eq!(s.len().unwrap(), 2);
        assert!(s.connection().is_autocommit());
        // The authorizer is gone afterwards: the writer works as before.
        s.append(&[Pending {
            id: "c".into(),
            event_json: r#"{"attrs":{},"id":"c","kind":"tool_call","ts":9}"#.into(),
            classification_json: r#"{"tag":"stateless"}"#.into(),
            ts_explicit: true,
        }])
        .unwrap();
        assert_eq!(s.len().unwrap(), 3);
    }
}
