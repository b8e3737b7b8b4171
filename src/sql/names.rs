//! Result column names as PostgreSQL figures them (its `FigureColname`): a column reference is
//! named after the column, a function call after the function (`count`, not `count(*)`), a cast
//! after what it casts or else the type (`1::int` is `int4`), `CASE` is `case`, anything else
//! `?column?`. Clients show these names and some key on them (asyncpg records, pandas frames,
//! JDBC `getColumnLabel`), and SQL over a derived table refers to them (`SELECT count FROM
//! (SELECT count(*) FROM orders) t`).
//!
//! PostgreSQL also allows equal names in one result (`SELECT NULL, NULL`, or
//! `SELECT amount, amount::float8 AS amount`); DataFusion needs distinct names, so a repeated
//! name gets a suffix after [`super::NAME_MARK`], which the front ends drop when they print.

use std::ops::ControlFlow;

use datafusion::sql::sqlparser::ast::{
    AccessExpr, DataType, Expr, Ident, Query, SelectItem, SetExpr, Statement, TimezoneInfo, Value,
    VisitMut, VisitorMut,
};

/// Names every projection of `statement` (the outer query, derived tables, CTEs, subqueries).
pub fn name_like_postgres(statement: &mut Statement) {
    let _ = statement.visit(&mut Namer);
}

struct Namer;

impl VisitorMut for Namer {
    type Break = ();

    fn pre_visit_query(&mut self, query: &mut Query) -> ControlFlow<()> {
        name_set_expr(&mut query.body);
        ControlFlow::Continue(())
    }
}

fn name_set_expr(body: &mut SetExpr) {
    match body {
        SetExpr::Select(select) => name_projection(&mut select.projection),
        // A set operation's names are its first branch's; the others need only be distinct.
        SetExpr::SetOperation { left, right, .. } => {
            name_set_expr(left);
            name_set_expr(right);
        }
        _ => {}
    }
}

fn name_projection(projection: &mut [SelectItem]) {
    let mut taken: Vec<String> = Vec::new();
    for item in projection.iter_mut() {
        let (name, explicit) = match item {
            SelectItem::ExprWithAlias { alias, .. } => (alias.value.clone(), true),
            SelectItem::UnnamedExpr(e) => (postgres_name(e), false),
            // A wildcard's names are the table's; DataFusion checks those.
            _ => continue,
        };
        let key = name.to_lowercase();
        let repeats = taken.iter().filter(|t| **t == key).count();
        taken.push(key);
        let plain_column = matches!(
            item,
            SelectItem::UnnamedExpr(Expr::Identifier(_) | Expr::CompoundIdentifier(_))
        );
        if repeats == 0 && (explicit || plain_column) {
            continue;
        }
        let internal = if repeats == 0 {
            name
        } else {
            format!("{name}{}{}", super::NAME_MARK, repeats + 1)
        };
        let expr = match std::mem::replace(item, SelectItem::UnnamedExpr(Expr::value(Value::Null)))
        {
            SelectItem::ExprWithAlias { expr, .. } | SelectItem::UnnamedExpr(expr) => expr,
            other => {
                *item = other;
                continue;
            }
        };
        *item = SelectItem::ExprWithAlias {
            expr,
            alias: Ident::with_quote('"', internal),
        };
    }
}

/// The name PostgreSQL gives a result column computed by `e`.
pub fn postgres_name(e: &Expr) -> String {
    figure(e).unwrap_or_else(|| "?column?".into())
}

fn figure(e: &Expr) -> Option<String> {
    match e {
        Expr::Identifier(i) => Some(i.value.clone()),
        Expr::CompoundIdentifier(p) => p.last().map(|i| i.value.clone()),
        Expr::Function(f) => f
            .name
            .0
            .last()
            .map(|p| p.to_string().trim_matches('"').to_lowercase()),
        Expr::Nested(inner) => figure(inner),
        // A field's name (`(keys).n` is `n`); past subscripts, the base's (`conkey[1]`).
        Expr::CompoundFieldAccess { root, access_chain } => {
            match access_chain.iter().rev().find_map(|a| match a {
                AccessExpr::Dot(Expr::Identifier(i)) => Some(i.value.clone()),
                _ => None,
            }) {
                Some(field) => Some(field),
                None => figure(root),
            }
        }
        Expr::Cast {
            expr, data_type, ..
        } => figure(expr).or_else(|| type_name(data_type)),
        Expr::TypedString(t) => type_name(&t.data_type),
        Expr::Interval(_) => Some("interval".into()),
        Expr::Case { .. } => Some("case".into()),
        Expr::Exists { .. } => Some("exists".into()),
        Expr::Array(_) => Some("array".into()),
        Expr::Extract { .. } => Some("extract".into()),
        Expr::Substring { .. } => Some("substring".into()),
        Expr::Position { .. } => Some("position".into()),
        Expr::Trim { .. } => Some("btrim".into()),
        Expr::Ceil { .. } => Some("ceil".into()),
        Expr::Floor { .. } => Some("floor".into()),
        Expr::Overlay { .. } => Some("overlay".into()),
        Expr::Subquery(q) => match q.body.as_ref() {
            SetExpr::Select(sel) => match sel.projection.first() {
                Some(SelectItem::ExprWithAlias { alias, .. }) => {
                    Some(super::output_name(&alias.value).to_string())
                }
                Some(SelectItem::UnnamedExpr(inner)) => figure(inner),
                _ => None,
            },
            _ => None,
        },
        _ => None,
    }
}

/// PostgreSQL's internal name of a type, which names a cast of a constant.
fn type_name(t: &DataType) -> Option<String> {
    let name = match t {
        DataType::Int(_) | DataType::Int4(_) | DataType::Integer(_) => "int4",
        DataType::BigInt(_) | DataType::Int8(_) => "int8",
        DataType::SmallInt(_) | DataType::Int2(_) => "int2",
        DataType::Float8 | DataType::Double(_) | DataType::DoublePrecision => "float8",
        DataType::Float4 | DataType::Real => "float4",
        DataType::Numeric(_) | DataType::Decimal(_) => "numeric",
        DataType::Text => "text",
        DataType::Varchar(_) | DataType::CharacterVarying(_) => "varchar",
        DataType::Char(_) => "bpchar",
        DataType::Bool | DataType::Boolean => "bool",
        DataType::Date => "date",
        DataType::Timestamp(_, TimezoneInfo::Tz | TimezoneInfo::WithTimeZone) => "timestamptz",
        DataType::Timestamp(_, _) => "timestamp",
        DataType::Interval { .. } => "interval",
        DataType::JSON => "json",
        DataType::JSONB => "jsonb",
        DataType::Bytea => "bytea",
        DataType::Uuid => "uuid",
        DataType::Custom(name, _) => {
            return name.0.last().map(|p| p.to_string().to_lowercase());
        }
        _ => return None,
    };
    Some(name.into())
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::sql::sqlparser::dialect::PostgreSqlDialect;
    use datafusion::sql::sqlparser::parser::Parser;

    fn named(sql: &str) -> String {
        let mut s = Parser::parse_sql(&PostgreSqlDialect {}, sql)
            .unwrap()
            .remove(0);
        name_like_postgres(&mut s);
        s.to_string().replace(crate::sql::NAME_MARK, "#")
    }

    #[test]
    fn columns_are_named_as_postgres_names_them() {
        assert_eq!(
            named(
                "SELECT count(*), 1, region, amount::int, 1::int, CAST('x' AS text), max(a) AS m FROM t"
            ),
            "SELECT count(*) AS \"count\", 1 AS \"?column?\", region, amount::INT AS \"amount\", \
             1::INT AS \"int4\", CAST('x' AS TEXT) AS \"text\", max(a) AS m FROM t"
        );
        assert_eq!(
            named("SELECT k[1], (r).n, 2 = ANY(k) FROM t"),
            "SELECT k[1] AS \"k\", (r).n AS \"n\", 2 = ANY(k) AS \"?column?\" FROM t"
        );
    }

    #[test]
    fn repeated_names_are_kept_distinct_inside() {
        assert_eq!(
            named("SELECT NULL, NULL, count(*), count(DISTINCT c) FROM t"),
            "SELECT NULL AS \"?column?\", NULL AS \"?column?#2\", count(*) AS \"count\", \
             count(DISTINCT c) AS \"count#2\" FROM t"
        );
        assert_eq!(
            named("SELECT amount, CAST(amount AS DOUBLE PRECISION) AS amount FROM t"),
            "SELECT amount, CAST(amount AS DOUBLE PRECISION) AS \"amount#2\" FROM t"
        );
    }

    #[test]
    fn derived_tables_are_named_too() {
        assert_eq!(
            named("SELECT count FROM (SELECT count(*) FROM t) s"),
            "SELECT count FROM (SELECT count(*) AS \"count\" FROM t) s"
        );
    }
}
