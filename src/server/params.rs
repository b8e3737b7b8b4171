//! Parameter types PostgreSQL infers from the statement text.

use std::ops::ControlFlow;

use datafusion::arrow::datatypes::DataType;
use datafusion::logical_expr::LogicalPlan;
use datafusion::sql::sqlparser::ast::{Expr, Statement, Value, visit_expressions_mut};
use pgwire::api::Type;
use pgwire::error::PgWireResult;

use super::errors;

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

/// Parameter types of a plan, in `$1, $2, …` order; unknown ones as text.
pub fn parameter_types(plan: &LogicalPlan) -> PgWireResult<Vec<(Option<DataType>, Type)>> {
    let types = plan
        .get_parameter_types()
        .map_err(errors::from_datafusion)?;
    let mut entries: Vec<(usize, Option<DataType>)> = types
        .into_iter()
        .filter_map(|(k, v)| {
            k.trim_start_matches('$')
                .parse::<usize>()
                .ok()
                .map(|n| (n, v))
        })
        .collect();
    entries.sort_by_key(|(n, _)| *n);
    let max = entries.last().map(|(n, _)| *n).unwrap_or(0);
    let mut out = vec![(None, Type::TEXT); max];
    for (n, dt) in entries {
        if n == 0 {
            continue;
        }
        let pg = dt
            .as_ref()
            .and_then(|d| arrow_pg::datatypes::into_pg_type(d).ok())
            .unwrap_or(Type::TEXT);
        out[n - 1] = (dt, pg);
    }
    Ok(out)
}
