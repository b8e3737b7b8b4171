//! pgjdbc's `getPrimaryKeys` and `getIndexInfo` take fields of a composite value:
//!
//! ```sql
//! SELECT ..., (information_schema._pg_expandarray(i.indkey)).n AS KEY_SEQ, ...
//! ... WHERE result.A_ATTNUM = (result.KEYS).x
//! ```
//!
//! DataFusion reads `a.b` only as a column path, not as a field of any expression, so
//! `(expr).field` becomes `get_field(expr, 'field')`.

use datafusion::sql::sqlparser::ast::{AccessExpr, Expr};

/// Rewrites `expr` in place when it is `(expr).field[.field…]`; whether it did.
pub(super) fn get_field_for_dots(expr: &mut Expr) -> bool {
    let Expr::CompoundFieldAccess { root, access_chain } = expr else {
        return false;
    };
    if !matches!(root.as_ref(), Expr::Nested(_))
        || !access_chain
            .iter()
            .all(|a| matches!(a, AccessExpr::Dot(Expr::Identifier(_))))
    {
        return false;
    }
    let mut out = match root.as_ref() {
        Expr::Nested(inner) => inner.as_ref().to_string(),
        other => other.to_string(),
    };
    for access in access_chain.iter() {
        if let AccessExpr::Dot(Expr::Identifier(field)) = access {
            // An unquoted name is folded to lower case, as PostgreSQL folds it.
            let name = match field.quote_style {
                Some(_) => field.value.clone(),
                None => field.value.to_ascii_lowercase(),
            };
            out = format!("get_field({out}, '{}')", name.replace('\'', "''"));
        }
    }
    match super::parse_expr(&out) {
        Some(call) => {
            *expr = call;
            true
        }
        None => false,
    }
}

#[cfg(test)]
mod tests {
    use datafusion::sql::sqlparser::dialect::PostgreSqlDialect;
    use datafusion::sql::sqlparser::parser::Parser;

    #[test]
    fn fields_of_expressions_are_get_field_calls() {
        let mut s = Parser::parse_sql(
            &PostgreSqlDialect {},
            "SELECT r.k FROM pg_catalog.pg_index r WHERE r.a = (r.KEYS).x",
        )
        .unwrap()
        .remove(0);
        super::super::rewrite(&mut s);
        assert_eq!(
            s.to_string(),
            "SELECT r.k FROM pg_catalog.pg_index r WHERE r.a = get_field(r.KEYS, 'x')"
        );
    }
}
