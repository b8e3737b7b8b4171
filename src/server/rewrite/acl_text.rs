//! psql's `\df+` (and `\dp`) print access privileges with
//!
//! ```sql
//! pg_catalog.array_to_string(p.proacl, E'\n') AS "Access privileges"
//! ```
//!
//! The emulated catalogs keep `*acl` columns as text (NULL: the default privileges), not as
//! `aclitem[]`, so `array_to_string` of one is the column itself.

use datafusion::sql::sqlparser::ast::{
    Expr, Function, FunctionArg, FunctionArgExpr, FunctionArguments,
};

pub(super) fn acl_as_text(f: &Function) -> Option<Expr> {
    let name = f.name.0.last()?.to_string().to_ascii_lowercase();
    if name.trim_matches('"') != "array_to_string" {
        return None;
    }
    let FunctionArguments::List(list) = &f.args else {
        return None;
    };
    match list.args.first()? {
        FunctionArg::Unnamed(FunctionArgExpr::Expr(
            e @ (Expr::Identifier(_) | Expr::CompoundIdentifier(_)),
        )) if e.to_string().to_ascii_lowercase().ends_with("acl") => Some(e.clone()),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use datafusion::sql::sqlparser::dialect::PostgreSqlDialect;
    use datafusion::sql::sqlparser::parser::Parser;

    #[test]
    fn acl_columns_are_their_own_text() {
        let mut s = Parser::parse_sql(
            &PostgreSqlDialect {},
            "SELECT pg_catalog.array_to_string(p.proacl, E'\\n'), array_to_string(p.x, ',') FROM pg_catalog.pg_proc p",
        )
        .unwrap()
        .remove(0);
        super::super::rewrite(&mut s);
        assert_eq!(
            s.to_string(),
            "SELECT p.proacl, array_to_string(p.x, ',') FROM pg_catalog.pg_proc p"
        );
    }
}
