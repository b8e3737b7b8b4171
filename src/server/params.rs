//! Parameter types PostgreSQL infers from the statement text.

use std::ops::ControlFlow;

use datafusion::sql::sqlparser::ast::{Expr, Statement, Value, visit_expressions_mut};

/// The highest placeholder number in `statement`, and the SQL types of those written as
/// `$n::TYPE` / `CAST($n AS TYPE)` (PostgreSQL infers a parameter's type from such a cast).
pub fn placeholder_casts(
    statement: &Statement,
) -> (usize, std::collections::HashMap<usize, String>) {
    let mut max = 0usize;
    let mut types = std::collections::HashMap::new();
    let mut copy = statement.clone();
    let number = |e: &Expr| match e {
        Expr::Value(v) => match &v.value {
            Value::Placeholder(p) => p.trim_start_matches('$').parse::<usize>().ok(),
            _ => None,
        },
        _ => None,
    };
    let _ = visit_expressions_mut(&mut copy, |e| {
        if let Some(n) = number(e) {
            max = max.max(n);
        }
        if let Expr::Cast {
            expr, data_type, ..
        } = e
            && let Some(n) = number(expr)
        {
            types.entry(n).or_insert_with(|| data_type.to_string());
        }
        ControlFlow::<()>::Continue(())
    });
    (max, types)
}
