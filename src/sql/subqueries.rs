//! A scalar subquery that finds no row is NULL, as in PostgreSQL, whatever the nullability of
//! the column it reads. DataFusion types `(SELECT order_id FROM orders WHERE false)` as the
//! non-nullable `order_id` and then fails on the NULL it yields ("declared as non-nullable but
//! contains null values"). Each scalar subquery is written `nullif((subquery), NULL)`, which is
//! the same value (nothing equals NULL) and nullable; the engine still decorrelates the
//! subquery inside. (`coalesce(x, NULL)` would not do: the optimizer folds it back to `x`.)

use std::ops::ControlFlow;

use datafusion::sql::sqlparser::ast::{
    Expr, Function, FunctionArg, FunctionArgExpr, FunctionArgumentList, FunctionArguments, Ident,
    ObjectName, Statement, Value, visit_expressions_mut,
};

pub fn nullable_scalar_subqueries(statement: &mut Statement) {
    let _ = visit_expressions_mut(statement, |e| {
        if matches!(e, Expr::Subquery(_)) {
            let subquery = std::mem::replace(e, Expr::value(Value::Null));
            let arg = |x: Expr| FunctionArg::Unnamed(FunctionArgExpr::Expr(x));
            *e = Expr::Function(Function {
                name: ObjectName::from(vec![Ident::new("nullif")]),
                uses_odbc_syntax: false,
                parameters: FunctionArguments::None,
                args: FunctionArguments::List(FunctionArgumentList {
                    duplicate_treatment: None,
                    args: vec![arg(subquery), arg(Expr::value(Value::Null))],
                    clauses: vec![],
                }),
                filter: None,
                null_treatment: None,
                over: None,
                within_group: vec![],
            });
        }
        ControlFlow::<()>::Continue(())
    });
}

#[cfg(test)]
mod tests {
    #[test]
    fn scalar_subqueries_become_nullable() {
        let mut s = datafusion::sql::sqlparser::parser::Parser::parse_sql(
            &datafusion::sql::sqlparser::dialect::PostgreSqlDialect {},
            "SELECT (SELECT a FROM t WHERE false) AS x FROM u WHERE b IN (SELECT b FROM v)",
        )
        .unwrap()
        .remove(0);
        super::nullable_scalar_subqueries(&mut s);
        assert_eq!(
            s.to_string(),
            "SELECT nullif((SELECT a FROM t WHERE false), NULL) AS x FROM u WHERE b IN (SELECT b FROM v)"
        );
    }
}
