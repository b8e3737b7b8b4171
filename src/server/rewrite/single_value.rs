//! pgjdbc's and Npgsql's type and attribute queries use correlated scalar subqueries that return
//! one row by construction, as pgjdbc's `getTypeInfo`/`getColumns` do:
//!
//! ```sql
//! SELECT t.typname, ..., (SELECT c.relkind = 'c' FROM pg_class c WHERE c.oid = t.typrelid)
//!   FROM pg_catalog.pg_type t ...
//! ```
//!
//! PostgreSQL checks the row count at run time; DataFusion wants a correlated subquery
//! aggregated. In a catalog query only (see `super`), such a subquery's single expression is
//! wrapped in `max(...)`, which gives the same value for the one row and NULL for none. Analyst
//! SQL is never rewritten so: there PostgreSQL's error for several rows (21000) is the answer.

use std::ops::ControlFlow;

use datafusion::sql::sqlparser::ast::{
    Expr, Function, FunctionArg, FunctionArgExpr, FunctionArgumentList, FunctionArguments,
    GroupByExpr, Ident, ObjectName, SelectItem, SetExpr, visit_expressions_mut,
};

const AGGREGATES: &[&str] = &[
    "count",
    "sum",
    "min",
    "max",
    "avg",
    "array_agg",
    "string_agg",
    "bool_and",
    "bool_or",
    "every",
    "first_value",
    "last_value",
];

pub(super) fn aggregate_single_value(body: &mut SetExpr) {
    let SetExpr::Select(select) = body else {
        return;
    };
    let grouped = match &select.group_by {
        GroupByExpr::Expressions(e, _) => !e.is_empty(),
        GroupByExpr::All(_) => true,
    };
    if grouped || select.projection.len() != 1 || select.from.is_empty() {
        return;
    }
    let slot = match &mut select.projection[0] {
        SelectItem::UnnamedExpr(e) => e,
        SelectItem::ExprWithAlias { expr, .. } => expr,
        _ => return,
    };
    if contains_aggregate(slot) {
        return;
    }
    let inner = std::mem::replace(
        slot,
        Expr::value(datafusion::sql::sqlparser::ast::Value::Null),
    );
    *slot = Expr::Function(Function {
        name: ObjectName::from(vec![Ident::new("max")]),
        uses_odbc_syntax: false,
        parameters: FunctionArguments::None,
        args: FunctionArguments::List(FunctionArgumentList {
            duplicate_treatment: None,
            args: vec![FunctionArg::Unnamed(FunctionArgExpr::Expr(inner))],
            clauses: vec![],
        }),
        filter: None,
        null_treatment: None,
        over: None,
        within_group: vec![],
    });
}

fn contains_aggregate(expr: &mut Expr) -> bool {
    let mut found = false;
    let _ = visit_expressions_mut(expr, |e| {
        if let Expr::Function(f) = e {
            let name = f.name.to_string().to_ascii_lowercase();
            if AGGREGATES.contains(&name.as_str()) || f.over.is_some() {
                found = true;
                return ControlFlow::Break(());
            }
        }
        ControlFlow::Continue(())
    });
    found
}

#[cfg(test)]
mod tests {
    #[test]
    fn single_value_subqueries_are_aggregated_once() {
        let rewritten = |sql: &str| {
            let mut s = datafusion::sql::sqlparser::parser::Parser::parse_sql(
                &datafusion::sql::sqlparser::dialect::PostgreSqlDialect {},
                sql,
            )
            .unwrap()
            .remove(0);
            super::super::rewrite(&mut s);
            s.to_string()
        };
        assert_eq!(
            rewritten(
                "SELECT t.oid FROM pg_type t WHERE (SELECT c.kind = 'c' FROM pg_class c WHERE c.oid = t.rel)"
            ),
            "SELECT t.oid FROM pg_type t WHERE (SELECT max(c.kind = 'c') FROM pg_class c WHERE c.oid = t.rel)"
        );
        let counted = "SELECT (SELECT count(*) FROM pg_class c WHERE c.oid = t.rel) FROM pg_type t";
        assert_eq!(rewritten(counted), counted);
    }
}
