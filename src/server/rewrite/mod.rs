//! Rewrites of catalog queries that drivers and BI tools send, which PostgreSQL accepts and
//! DataFusion plans differently. They apply only to statements that read `pg_catalog` or
//! `information_schema` ([`reads_catalog`]): analyst SQL reaches the engine as written (shaped
//! only by [`crate::sql`], as in `rebuy query`), so a rewrite can never change its answer.
//! Each rule is a file that quotes the client query it exists for.

mod acl_text;
mod empty_sequences;
mod field_access;
mod index_keys;
mod information_schema;
mod like_escape;
mod missing_columns;
mod outer_filters;
mod regproc;
mod single_value;

use std::ops::ControlFlow;

use datafusion::sql::sqlparser::ast::{Expr, ObjectName, Statement, Value, visit_expressions_mut};

pub use regproc::drop_regproc_casts;

/// Whether `statement` reads a catalog: a relation in `pg_catalog` or `information_schema`,
/// or one named `pg_*` (clients often leave the schema out), or calls a function by its
/// `pg_catalog.` name (`SELECT pg_catalog.version()`, as SQLAlchemy and Superset send).
pub fn reads_catalog(statement: &Statement) -> bool {
    let mut found = false;
    let _ = datafusion::sql::sqlparser::ast::visit_relations(statement, |name: &ObjectName| {
        if is_catalog_name(name) {
            found = true;
            return ControlFlow::Break(());
        }
        ControlFlow::Continue(())
    });
    if !found {
        let mut copy = statement.clone();
        let _ = visit_expressions_mut(&mut copy, |e| {
            if let Expr::Function(f) = e
                && f.name.0.len() > 1
                && f.name.0.first().is_some_and(|p| {
                    p.to_string()
                        .trim_matches('"')
                        .eq_ignore_ascii_case("pg_catalog")
                })
            {
                found = true;
                return ControlFlow::Break(());
            }
            ControlFlow::Continue(())
        });
    }
    found
}

fn is_catalog_name(name: &ObjectName) -> bool {
    let parts: Vec<String> = name
        .0
        .iter()
        .map(|p| p.to_string().trim_matches('"').to_ascii_lowercase())
        .collect();
    parts
        .iter()
        .rev()
        .skip(1)
        .any(|s| s == "pg_catalog" || s == "information_schema")
        || parts.last().is_some_and(|t| t.starts_with("pg_"))
}

/// An expression the rules build as SQL text, parsed; None when it does not parse (a rule
/// then leaves the client's expression as it was).
fn parse_expr(sql: &str) -> Option<Expr> {
    datafusion::sql::sqlparser::parser::Parser::new(&crate::sql::dialect::RebuyDialect::default())
        .try_with_sql(sql)
        .and_then(|mut p| p.parse_expr())
        .ok()
}

/// Applies every rule to a catalog statement.
pub fn rewrite(statement: &mut Statement) {
    information_schema::use_postgres_views(statement);
    let _ = visit_expressions_mut(statement, |expr| {
        if let Expr::Subquery(query) = expr
            && empty_sequences::reads_only_empty_catalogs(query)
        {
            *expr = Expr::value(Value::Null);
            return ControlFlow::Continue(());
        }
        if regproc::regproc_as_oid(expr) {
            return ControlFlow::Continue(());
        }
        if field_access::get_field_for_dots(expr) {
            return ControlFlow::Continue(());
        }
        if missing_columns::null_for_missing(expr) {
            return ControlFlow::Continue(());
        }
        if let Expr::Function(f) = expr
            && let Some(replacement) =
                index_keys::index_key_function(f).or_else(|| acl_text::acl_as_text(f))
        {
            *expr = replacement;
            return ControlFlow::Continue(());
        }
        match expr {
            Expr::Subquery(query) => {
                if query.order_by.is_none() && query.limit_clause.is_none() && query.fetch.is_none()
                {
                    single_value::aggregate_single_value(&mut query.body);
                }
                outer_filters::move_outer_only_filters(query);
            }
            Expr::Like {
                pattern,
                escape_char,
                ..
            }
            | Expr::ILike {
                pattern,
                escape_char,
                ..
            } => like_escape::backslash_escape(pattern, escape_char),
            _ => {}
        }
        ControlFlow::<()>::Continue(())
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::sql::sqlparser::dialect::PostgreSqlDialect;
    use datafusion::sql::sqlparser::parser::Parser;

    fn parsed(sql: &str) -> Statement {
        Parser::parse_sql(&PostgreSqlDialect {}, sql)
            .unwrap()
            .remove(0)
    }

    #[test]
    fn only_catalog_statements_are_catalog_statements() {
        for sql in [
            "SELECT typname FROM pg_type",
            "SELECT * FROM pg_catalog.pg_class c JOIN orders o ON true",
            "SELECT column_name FROM information_schema.columns",
            "SELECT pg_catalog.version()",
            "SELECT (SELECT 1 FROM pg_namespace) FROM orders",
        ] {
            assert!(reads_catalog(&parsed(sql)), "{sql}");
        }
        for sql in [
            "SELECT (SELECT order_id FROM orders)",
            "SELECT * FROM customers WHERE region LIKE 'E%' ESCAPE '/'",
            "SELECT version()",
            "SELECT rebuy.public.orders.order_id FROM rebuy.public.orders",
        ] {
            assert!(!reads_catalog(&parsed(sql)), "{sql}");
        }
    }

    #[test]
    fn like_escapes_become_backslashes() {
        let mut s = parsed("SELECT n FROM pg_class WHERE n NOT LIKE $1 || '%' ESCAPE '/'");
        rewrite(&mut s);
        assert_eq!(
            s.to_string(),
            r"SELECT n FROM pg_class WHERE n NOT LIKE replace(replace(replace(replace($1 || '%', '\', '\\'), '/%', '\%'), '/_', '\_'), '//', '/')"
        );
    }
}
