//! Integer literals typed as PostgreSQL types them: a constant that fits 32 bits is `int4`
//! (OID 23), a larger one `int8`. DataFusion reads every integer literal as 64-bit, so
//! `SELECT 1 AS one` reached node-postgres as `int8`, which it hands out as a string, and pgjdbc
//! reported `BIGINT` for it.
//!
//! Only a projection column made of integer constants alone (`1`, `-3`, `1 + 1`, `7 / 2`, or
//! a `CASE` whose every result is one) is cast to `INT`: elsewhere a constant is coerced to
//! the column it meets (`amount > 1`), as PostgreSQL does too, and no value changes. The
//! constant arithmetic is done here in 64 bits first, so a result past 32 bits stays 64-bit
//! rather than failing in the cast.

use std::ops::ControlFlow;

use datafusion::sql::sqlparser::ast::{
    BinaryOperator, CastKind, DataType, Expr, Query, SelectItem, SetExpr, Statement, UnaryOperator,
    Value, VisitMut, VisitorMut,
};

pub fn type_integer_literals(statement: &mut Statement) {
    let _ = statement.visit(&mut Typer);
}

struct Typer;

impl VisitorMut for Typer {
    type Break = ();

    fn pre_visit_query(&mut self, query: &mut Query) -> ControlFlow<()> {
        type_set_expr(&mut query.body);
        ControlFlow::Continue(())
    }
}

fn type_set_expr(body: &mut SetExpr) {
    match body {
        SetExpr::Select(select) => {
            for item in select.projection.iter_mut() {
                match item {
                    SelectItem::UnnamedExpr(e) | SelectItem::ExprWithAlias { expr: e, .. } => {
                        if fits_int4(e) {
                            let inner = std::mem::replace(e, Expr::value(Value::Null));
                            *e = Expr::Cast {
                                kind: CastKind::Cast,
                                expr: Box::new(inner),
                                data_type: DataType::Int(None),
                                array: false,
                                format: None,
                            };
                        }
                    }
                    _ => {}
                }
            }
        }
        SetExpr::SetOperation { left, right, .. } => {
            type_set_expr(left);
            type_set_expr(right);
        }
        _ => {}
    }
}

/// Whether `e` is made of integer constants only and PostgreSQL would type it `int4`.
fn fits_int4(e: &Expr) -> bool {
    match e {
        // `CASE x WHEN … THEN 1 …` too: the operand does not type the result.
        Expr::Case {
            conditions,
            else_result,
            ..
        } => {
            let results: Vec<&Expr> = conditions
                .iter()
                .map(|w| &w.result)
                .chain(else_result.as_deref())
                .collect();
            results.iter().any(|r| !is_null(r))
                && results.iter().all(|r| is_null(r) || fits_int4(r))
        }
        other => constant(other).is_some_and(|(value, wide)| !wide && i32::try_from(value).is_ok()),
    }
}

fn is_null(e: &Expr) -> bool {
    matches!(e, Expr::Value(v) if v.value == Value::Null)
}

/// The value of an integer-constant expression, and whether any constant in it is past 32
/// bits (PostgreSQL then types the whole expression `int8`). None when it is not one.
fn constant(e: &Expr) -> Option<(i64, bool)> {
    match e {
        Expr::Value(v) => match &v.value {
            Value::Number(text, _) => {
                let n: i64 = text.parse().ok()?;
                Some((n, i32::try_from(n).is_err()))
            }
            _ => None,
        },
        Expr::Nested(inner) => constant(inner),
        Expr::UnaryOp {
            op: UnaryOperator::Minus,
            expr,
        } => constant(expr).and_then(|(v, w)| v.checked_neg().map(|n| (n, w))),
        Expr::UnaryOp {
            op: UnaryOperator::Plus,
            expr,
        } => constant(expr),
        Expr::BinaryOp { left, op, right } => {
            let (a, wa) = constant(left)?;
            let (b, wb) = constant(right)?;
            let v = match op {
                BinaryOperator::Plus => a.checked_add(b)?,
                BinaryOperator::Minus => a.checked_sub(b)?,
                BinaryOperator::Multiply => a.checked_mul(b)?,
                // Division by zero is left to the engine, which reports it.
                BinaryOperator::Divide if b != 0 => a.checked_div(b)?,
                BinaryOperator::Modulo if b != 0 => a.checked_rem(b)?,
                _ => return None,
            };
            Some((v, wa || wb))
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::sql::sqlparser::dialect::PostgreSqlDialect;
    use datafusion::sql::sqlparser::parser::Parser;

    fn typed(sql: &str) -> String {
        let mut s = Parser::parse_sql(&PostgreSqlDialect {}, sql)
            .unwrap()
            .remove(0);
        type_integer_literals(&mut s);
        s.to_string()
    }

    #[test]
    fn small_integer_constants_are_int4() {
        assert_eq!(typed("SELECT 1 AS one"), "SELECT CAST(1 AS INT) AS one");
        assert_eq!(typed("SELECT -(1 + 2)"), "SELECT CAST(-(1 + 2) AS INT)");
        assert_eq!(
            typed("SELECT CASE WHEN x THEN 1 ELSE NULL END FROM t"),
            "SELECT CAST(CASE WHEN x THEN 1 ELSE NULL END AS INT) FROM t"
        );
    }

    #[test]
    fn wide_constants_columns_and_division_by_zero_are_left_alone() {
        for sql in [
            "SELECT 3000000000",
            "SELECT 3000000000 - 2999999999",
            "SELECT 2147483647 * 2",
            "SELECT amount + 1 FROM t",
            "SELECT 1 / 0",
            "SELECT 1.5",
            "SELECT x FROM t WHERE y = 1",
        ] {
            assert_eq!(typed(sql), sql);
        }
    }
}
