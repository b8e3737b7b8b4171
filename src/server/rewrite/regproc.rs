//! Npgsql's type loading (Power BI, and any .NET client) compares `pg_type.typinput` with
//! `'pg_catalog.array_in'::regproc`:
//!
//! ```sql
//! ... WHEN typ.typinput = 'pg_catalog.array_in'::regproc THEN ...
//! ```
//!
//! The emulated catalog holds `typinput` as text, so the cast is dropped and the bare name
//! compared. The same query joins the receive function by oid and Npgsql's older releases
//! cast the column to a number:
//!
//! ```sql
//! LEFT JOIN pg_proc AS proc ON proc.oid = typ.typreceive
//! SELECT typ.typinput::oid ...
//! ```
//!
//! so an equality between a regproc column and an `oid` compares names
//! (`typ.typreceive = _rebuy_regproc_name(proc.oid)`), and a cast of one to a number looks
//! the function's oid up (`_rebuy_regproc_oid(typ.typinput)`); see `server::pg_proc`.

use datafusion::sql::sqlparser::ast::{BinaryOperator, Expr};

/// `pg_type`'s columns that are `regproc` in PostgreSQL.
const REGPROC_COLUMNS: &[&str] = &[
    "typinput",
    "typoutput",
    "typreceive",
    "typsend",
    "typmodin",
    "typmodout",
    "typanalyze",
    "typsubscript",
];

fn last_name(e: &Expr) -> Option<String> {
    match e {
        Expr::Identifier(i) => Some(i.value.to_ascii_lowercase()),
        Expr::CompoundIdentifier(p) => p.last().map(|i| i.value.to_ascii_lowercase()),
        Expr::Nested(inner) => last_name(inner),
        _ => None,
    }
}

fn is_regproc(e: &Expr) -> bool {
    last_name(e).is_some_and(|n| REGPROC_COLUMNS.contains(&n.as_str()))
}

fn call(function: &str, arg: &Expr) -> Option<Expr> {
    super::parse_expr(&format!("{function}({arg})"))
}

/// Rewrites `expr` when it compares a regproc column with an oid or casts one to a number.
pub(super) fn regproc_as_oid(expr: &mut Expr) -> bool {
    match expr {
        Expr::BinaryOp {
            left,
            op: BinaryOperator::Eq | BinaryOperator::NotEq,
            right,
        } => {
            let oid = if is_regproc(left) {
                right
            } else if is_regproc(right) {
                left
            } else {
                return false;
            };
            if last_name(oid).as_deref() != Some("oid") {
                return false;
            }
            match call(crate::server::pg_proc::REGPROC_NAME, oid) {
                Some(named) => {
                    **oid = named;
                    true
                }
                None => false,
            }
        }
        Expr::Cast {
            expr: inner,
            data_type,
            ..
        } if is_regproc(inner) => {
            let target = data_type.to_string().to_ascii_lowercase();
            let looked_up = format!("{}({inner})", crate::server::pg_proc::REGPROC_OID);
            let sql = match target.as_str() {
                "oid" => looked_up,
                "int" | "integer" | "int4" | "bigint" | "int8" => {
                    format!("CAST({looked_up} AS {data_type})")
                }
                _ => return false,
            };
            match super::parse_expr(&sql) {
                Some(e) => {
                    *expr = e;
                    true
                }
                None => false,
            }
        }
        _ => false,
    }
}

/// Text-level rewrites, before parsing: `'pg_catalog.array_in'::regproc` compares a
/// function name with `pg_type.typinput`, which the catalog holds as text, so the cast is
/// dropped and the bare name kept.
pub fn drop_regproc_casts(sql: &str) -> std::borrow::Cow<'_, str> {
    static REGPROC: std::sync::LazyLock<Option<regex::Regex>> = std::sync::LazyLock::new(|| {
        regex::Regex::new(
            r"(?i)'(?:pg_catalog\.)?([A-Za-z_][A-Za-z0-9_]*)'\s*::\s*(?:pg_catalog\.)?regproc\b",
        )
        .ok()
    });
    match REGPROC.as_ref() {
        Some(re) if sql.contains("regproc") => re.replace_all(sql, "'$1'"),
        _ => std::borrow::Cow::Borrowed(sql),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn regproc_columns_meet_oids_by_name() {
        let mut s = datafusion::sql::sqlparser::parser::Parser::parse_sql(
            &datafusion::sql::sqlparser::dialect::PostgreSqlDialect {},
            "SELECT typ.typinput::oid FROM pg_type AS typ LEFT JOIN pg_proc AS proc ON proc.oid = typ.typreceive",
        )
        .unwrap()
        .remove(0);
        super::super::rewrite(&mut s);
        assert_eq!(
            s.to_string(),
            "SELECT _rebuy_regproc_oid(typ.typinput) FROM pg_type AS typ \
             LEFT JOIN pg_proc AS proc ON _rebuy_regproc_name(proc.oid) = typ.typreceive"
        );
    }

    #[test]
    fn regproc_literals_become_names() {
        assert_eq!(
            super::drop_regproc_casts(
                "SELECT typinput='pg_catalog.array_in'::regproc FROM pg_type"
            ),
            "SELECT typinput='array_in' FROM pg_type"
        );
    }
}
