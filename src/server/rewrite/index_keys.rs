//! Set-returning functions over a key's columns, which DataFusion has only as `unnest`.
//!
//! SQLAlchemy's primary key, unique constraint and index reflection numbers the columns it
//! unnests:
//!
//! ```sql
//! SELECT ..., unnest(pg_catalog.pg_constraint.conkey) AS attnum,
//!        generate_subscripts(pg_catalog.pg_constraint.conkey, 1) AS ord FROM pg_catalog.pg_constraint
//! ```
//!
//! and pgjdbc's `getPrimaryKeys`/`getIndexInfo` expand `pg_index.indkey`:
//!
//! ```sql
//! SELECT ..., (information_schema._pg_expandarray(i.indkey)).n AS KEY_SEQ,
//!        information_schema._pg_expandarray(i.indkey) AS KEYS ...
//! ```
//!
//! `generate_subscripts(a, 1)` becomes `unnest(range(1, array_length(a, 1) + 1))` (as int4) and
//! `_pg_expandarray(a)` becomes `unnest(_pg_expandarray(a))` (see `server::pg_arrays`): one
//! row per element, zipped with the other `unnest`s as PostgreSQL zips set-returning functions.
//! `pg_index.indclass` and `indcollation` are text in the emulated catalog (no client reads
//! their elements), so unnesting them gives a typed NULL.

use datafusion::sql::sqlparser::ast::{Expr, Function, FunctionArguments};

pub(super) fn index_key_function(f: &Function) -> Option<Expr> {
    let name = f.name.0.last()?.to_string().to_ascii_lowercase();
    let FunctionArguments::List(list) = &f.args else {
        return None;
    };
    let first = list.args.first()?.to_string();
    let sql = match name.trim_matches('"') {
        // The arrays have one dimension: subscripts of any other are none, as in PostgreSQL.
        // (SQLAlchemy binds the dimension as a parameter.)
        "generate_subscripts" if list.args.len() == 2 => {
            let dim = &list.args[1];
            format!(
                "CAST(unnest(range(1, CASE WHEN {dim} = 1 \
                 THEN CAST(array_length({first}, 1) AS BIGINT) + 1 ELSE 1 END)) AS INT)"
            )
        }
        "_pg_expandarray" if list.args.len() == 1 => {
            format!(
                "unnest({}({first}))",
                crate::server::pg_arrays::EXPAND_ARRAY
            )
        }
        "unnest" => {
            let lower = first.to_ascii_lowercase();
            if !(lower.ends_with("indclass") || lower.ends_with("indcollation")) {
                return None;
            }
            "CAST(NULL AS INT)".to_string()
        }
        _ => return None,
    };
    super::parse_expr(&sql)
}

#[cfg(test)]
mod tests {
    use datafusion::sql::sqlparser::dialect::PostgreSqlDialect;
    use datafusion::sql::sqlparser::parser::Parser;

    #[test]
    fn key_functions_become_unnests() {
        let mut s = Parser::parse_sql(
            &PostgreSqlDialect {},
            "SELECT (information_schema._pg_expandarray(i.indkey)).n, generate_subscripts(c.conkey, 1) \
             FROM pg_catalog.pg_index i, pg_catalog.pg_constraint c",
        )
        .unwrap()
        .remove(0);
        super::super::rewrite(&mut s);
        assert_eq!(
            s.to_string(),
            "SELECT get_field(unnest(_pg_expandarray(i.indkey)), 'n'), CAST(unnest(range(1, CASE WHEN 1 = 1 THEN CAST(array_length(c.conkey, 1) AS BIGINT) + 1 ELSE 1 END)) AS INT) \
             FROM pg_catalog.pg_index i, pg_catalog.pg_constraint c"
        );
    }
}
