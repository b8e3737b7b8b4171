//! SQLAlchemy's column reflection reads defaults with a correlated subquery filtered on an
//! outer column alone:
//!
//! ```sql
//! (SELECT pg_catalog.pg_get_expr(d.adbin, d.adrelid) FROM pg_catalog.pg_attrdef d
//!    WHERE a.atthasdef AND d.adrelid = a.attrelid AND d.adnum = a.attnum) AS "default"
//! ```

use std::ops::ControlFlow;

use datafusion::sql::sqlparser::ast::helpers::attached_token::AttachedToken;
use datafusion::sql::sqlparser::ast::{
    BinaryOperator, CaseWhen, Expr, Query, SetExpr, TableFactor, Value, visit_expressions_mut,
};

/// DataFusion decorrelates a scalar subquery's `inner = outer` equalities, but not a filter on
/// outer columns alone (`WHERE a.atthasdef AND d.adrelid = a.attrelid`, as SQLAlchemy writes
/// column reflection). Such filters move into the outer side of an equality:
/// `d.adrelid = CASE WHEN a.atthasdef THEN a.attrelid END` selects the same rows (none when
/// the filter is false).
pub(super) fn move_outer_only_filters(query: &mut Query) {
    let SetExpr::Select(select) = query.body.as_mut() else {
        return;
    };
    let mut inner: Vec<String> = Vec::new();
    for t in &select.from {
        for factor in std::iter::once(&t.relation).chain(t.joins.iter().map(|j| &j.relation)) {
            match factor {
                TableFactor::Table { name, alias, .. } => {
                    inner.push(match alias {
                        Some(a) => a.name.value.to_ascii_lowercase(),
                        None => name
                            .0
                            .last()
                            .map(|p| p.to_string().to_ascii_lowercase())
                            .unwrap_or_default(),
                    });
                }
                TableFactor::Derived { alias: Some(a), .. } => {
                    inner.push(a.name.value.to_ascii_lowercase())
                }
                _ => return,
            }
        }
    }
    let Some(selection) = select.selection.take() else {
        return;
    };
    let mut conjuncts = Vec::new();
    split_and(selection, &mut conjuncts);
    let (outer_only, mut rest): (Vec<Expr>, Vec<Expr>) = conjuncts
        .into_iter()
        .partition(|c| matches!(side_of(c, &inner), Side::Outer));
    if !outer_only.is_empty() {
        let equality = rest.iter_mut().find_map(|c| match c {
            Expr::BinaryOp {
                left,
                op: BinaryOperator::Eq,
                right,
            } => match (side_of(left, &inner), side_of(right, &inner)) {
                (Side::Inner, Side::Outer) => Some(right),
                (Side::Outer, Side::Inner) => Some(left),
                _ => None,
            },
            _ => None,
        });
        match equality {
            Some(outer_side) => {
                let condition = outer_only
                    .into_iter()
                    .reduce(|a, b| and(a, b))
                    .unwrap_or(Expr::value(Value::Boolean(true)));
                let value = std::mem::replace(outer_side.as_mut(), Expr::value(Value::Null));
                **outer_side = Expr::Case {
                    case_token: AttachedToken::empty(),
                    end_token: AttachedToken::empty(),
                    operand: None,
                    conditions: vec![CaseWhen {
                        condition,
                        result: value,
                    }],
                    else_result: None,
                };
            }
            None => rest.extend(outer_only),
        }
    }
    select.selection = rest.into_iter().reduce(and);
}

fn and(a: Expr, b: Expr) -> Expr {
    Expr::BinaryOp {
        left: Box::new(Expr::Nested(Box::new(a))),
        op: BinaryOperator::And,
        right: Box::new(Expr::Nested(Box::new(b))),
    }
}

fn split_and(e: Expr, out: &mut Vec<Expr>) {
    match e {
        Expr::BinaryOp {
            left,
            op: BinaryOperator::And,
            right,
        } => {
            split_and(*left, out);
            split_and(*right, out);
        }
        Expr::Nested(inner)
            if matches!(
                inner.as_ref(),
                Expr::BinaryOp {
                    op: BinaryOperator::And,
                    ..
                }
            ) =>
        {
            split_and(*inner, out)
        }
        other => out.push(other),
    }
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Side {
    /// Refers only to the subquery's own tables (or to nothing).
    Inner,
    /// Refers only to qualified columns of other (outer) tables.
    Outer,
    Mixed,
}

fn side_of(e: &Expr, inner: &[String]) -> Side {
    let mut saw_inner = false;
    let mut saw_outer = false;
    let mut unknown = false;
    let mut e = e.clone();
    let _ = visit_expressions_mut(&mut e, |x| {
        match x {
            Expr::CompoundIdentifier(parts) if parts.len() >= 2 => {
                let qualifier = parts[parts.len() - 2].value.to_ascii_lowercase();
                if inner.contains(&qualifier) {
                    saw_inner = true;
                } else {
                    saw_outer = true;
                }
            }
            Expr::Identifier(_) => saw_inner = true,
            Expr::Subquery(_) | Expr::Exists { .. } | Expr::InSubquery { .. } => unknown = true,
            _ => {}
        }
        ControlFlow::<()>::Continue(())
    });
    match (unknown, saw_inner, saw_outer) {
        (true, _, _) | (_, true, true) => Side::Mixed,
        (false, false, true) => Side::Outer,
        _ => Side::Inner,
    }
}

#[cfg(test)]
mod tests {
    use datafusion::sql::sqlparser::dialect::PostgreSqlDialect;
    use datafusion::sql::sqlparser::parser::Parser;

    #[test]
    fn outer_only_filters_move_into_an_equality() {
        let mut s = Parser::parse_sql(
            &PostgreSqlDialect {},
            "SELECT (SELECT max(d.x) FROM pg_attrdef d WHERE a.h AND d.r = a.r AND d.n = a.n) FROM a",
        )
        .unwrap()
        .remove(0);
        super::super::rewrite(&mut s);
        assert_eq!(
            s.to_string(),
            "SELECT (SELECT max(d.x) FROM pg_attrdef d WHERE (d.r = CASE WHEN a.h THEN a.r END) AND (d.n = a.n)) FROM a"
        );
    }
}
