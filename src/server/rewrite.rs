//! Rewrites of client SQL that PostgreSQL accepts and DataFusion plans differently.
//!
//! Catalog queries of pgjdbc, Npgsql and BI tools use correlated scalar subqueries that return
//! one row by construction (`(SELECT c.relkind = 'c' FROM pg_class c WHERE c.oid = t.typrelid)`).
//! PostgreSQL checks the row count at run time; DataFusion wants the subquery aggregated. Such a
//! subquery's single expression is wrapped in `max(...)`, which gives the same value for the
//! one row (and NULL for none, as PostgreSQL does).

use std::ops::ControlFlow;

use datafusion::sql::sqlparser::ast::helpers::attached_token::AttachedToken;

use datafusion::sql::sqlparser::ast::{
    BinaryOperator, CaseWhen, Expr, Function, FunctionArg, FunctionArgExpr, FunctionArgumentList,
    FunctionArguments, GroupByExpr, Ident, ObjectName, Query, SelectItem, SetExpr, Statement,
    TableFactor, Value, ValueWithSpan, visit_expressions_mut,
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

/// Text-level rewrites, before parsing: `'pg_catalog.array_in'::regproc` compares a
/// function name with `pg_type.typinput`, which the catalog holds as text, so the cast is
/// dropped and the bare name kept.
pub fn rewrite_text(sql: &str) -> std::borrow::Cow<'_, str> {
    static REGPROC: std::sync::LazyLock<Option<regex::Regex>> = std::sync::LazyLock::new(|| {
        regex::Regex::new(
            r"(?i)'(?:pg_catalog\.)?([A-Za-z_][A-Za-z0-9_]*)'\s*::\s*(?:pg_catalog\.)?regproc\b",
        )
        .ok()
    });
    match REGPROC.as_ref() {
        Some(re) if sql.contains("regproc") => re.replace_all(sql, "'$1'"),
        _ => std::borrow::Cow::Borrowed(sql),
    }
}

pub fn rewrite(statement: &mut Statement) {
    if let Statement::Query(query) = statement {
        name_columns_like_postgres(&mut query.body);
    }
    let _ = visit_expressions_mut(statement, |expr| {
        if let Expr::Subquery(query) = expr
            && reads_only_empty_catalogs(query)
        {
            *expr = Expr::value(Value::Null);
            return ControlFlow::Continue(());
        }
        if let Expr::CompoundIdentifier(parts) = expr
            && parts.len() >= 2
            && MISSING_CATALOG_COLUMNS.iter().any(|(t, c)| {
                parts[parts.len() - 1].value.eq_ignore_ascii_case(c)
                    && parts[parts.len() - 2].value.eq_ignore_ascii_case(t)
            })
        {
            *expr = Expr::value(Value::Null);
            return ControlFlow::Continue(());
        }
        if let Expr::Function(f) = expr
            && let Some(replacement) = index_key_function(f)
        {
            *expr = replacement;
            return ControlFlow::Continue(());
        }
        match expr {
            Expr::Subquery(query) => {
                if query.order_by.is_none() && query.limit_clause.is_none() && query.fetch.is_none()
                {
                    aggregate_single_value(&mut query.body);
                }
                move_outer_only_filters(query);
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
            } => backslash_escape(pattern, escape_char),
            _ => {}
        }
        ControlFlow::<()>::Continue(())
    });
}

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

/// Result column names as PostgreSQL gives them: a function call is named after the function
/// (`count`, `as_of`), a cast after what it casts, anything else `?column?`. DataFusion would
/// say `count(*)` or `Int64(1)`, which clients show and some (asyncpg records, pandas) key on.
/// Only the first of equal names is given (DataFusion needs distinct names).
fn name_columns_like_postgres(body: &mut SetExpr) {
    let select = match body {
        SetExpr::Select(select) => select,
        SetExpr::SetOperation { left, .. } => return name_columns_like_postgres(left),
        _ => return,
    };
    let mut taken: Vec<String> = select
        .projection
        .iter()
        .filter_map(|item| match item {
            SelectItem::ExprWithAlias { alias, .. } => Some(alias.value.to_ascii_lowercase()),
            SelectItem::UnnamedExpr(Expr::Identifier(i)) => Some(i.value.to_ascii_lowercase()),
            SelectItem::UnnamedExpr(Expr::CompoundIdentifier(p)) => {
                p.last().map(|i| i.value.to_ascii_lowercase())
            }
            _ => None,
        })
        .collect();
    for item in select.projection.iter_mut() {
        let SelectItem::UnnamedExpr(e) = item else {
            continue;
        };
        if matches!(e, Expr::Identifier(_) | Expr::CompoundIdentifier(_)) {
            continue;
        }
        let name = postgres_name(e);
        if taken.contains(&name.to_ascii_lowercase()) {
            continue;
        }
        taken.push(name.to_ascii_lowercase());
        let expr = std::mem::replace(e, Expr::value(Value::Null));
        *item = SelectItem::ExprWithAlias {
            expr,
            alias: Ident::with_quote('"', name),
        };
    }
}

fn postgres_name(e: &Expr) -> String {
    match e {
        Expr::Function(f) => f
            .name
            .0
            .last()
            .map(|p| p.to_string().trim_matches('"').to_ascii_lowercase())
            .unwrap_or_else(|| "?column?".into()),
        Expr::Identifier(i) => i.value.clone(),
        Expr::CompoundIdentifier(p) => p.last().map(|i| i.value.clone()).unwrap_or_default(),
        Expr::Nested(inner) => postgres_name(inner),
        Expr::Cast { expr, .. } => postgres_name(expr),
        Expr::Case { .. } => "case".into(),
        Expr::Subquery(q) => match q.body.as_ref() {
            SetExpr::Select(sel) if sel.projection.len() == 1 => match &sel.projection[0] {
                SelectItem::UnnamedExpr(inner) => postgres_name(inner),
                SelectItem::ExprWithAlias { alias, .. } => alias.value.clone(),
                _ => "?column?".into(),
            },
            _ => "?column?".into(),
        },
        Expr::Exists { .. } => "exists".into(),
        Expr::Array(_) => "array".into(),
        _ => "?column?".into(),
    }
}

/// Catalog columns the emulated catalog lacks, always NULL for rebuy's objects.
const MISSING_CATALOG_COLUMNS: &[(&str, &str)] = &[("pg_class", "reloptions")];

/// rebuy's tables have no indexes, so `pg_index` is empty and `unnest(pg_index.indkey)` /
/// `generate_subscripts(pg_index.indkey, 1)` never produce a row; `indkey` is not an array in
/// the emulated catalog, so they are replaced by typed NULLs that plan (SQLAlchemy's primary
/// key, unique constraint and index reflection).
fn index_key_function(f: &Function) -> Option<Expr> {
    let name = f.name.0.last()?.to_string().to_ascii_lowercase();
    let target = match name.as_str() {
        "unnest" => "SMALLINT",
        "generate_subscripts" => "INT",
        _ => return None,
    };
    let FunctionArguments::List(list) = &f.args else {
        return None;
    };
    let first = list.args.first()?.to_string().to_ascii_lowercase();
    if !(first.ends_with("indkey") || first.ends_with("indclass") || first.ends_with("indoption")) {
        return None;
    }
    datafusion::sql::sqlparser::parser::Parser::new(
        &datafusion::sql::sqlparser::dialect::PostgreSqlDialect {},
    )
    .try_with_sql(&format!("CAST(NULL AS {target})"))
    .and_then(|mut p| p.parse_expr())
    .ok()
}

/// rebuy has no sequences: a scalar subquery reading only `pg_sequence` is NULL (SQLAlchemy's
/// identity-column reflection asks through casts DataFusion cannot decorrelate).
fn reads_only_empty_catalogs(query: &Query) -> bool {
    let SetExpr::Select(select) = query.body.as_ref() else {
        return false;
    };
    !select.from.is_empty()
        && select.from.iter().all(|t| {
            t.joins.is_empty()
                && matches!(&t.relation, TableFactor::Table { name, .. }
                    if name.0.last().is_some_and(|p| p.to_string().eq_ignore_ascii_case("pg_sequence")))
        })
}

/// DataFusion decorrelates a scalar subquery's `inner = outer` equalities, but not a filter on
/// outer columns alone (`WHERE a.atthasdef AND d.adrelid = a.attrelid`, as SQLAlchemy writes
/// column reflection). Such filters move into the outer side of an equality:
/// `d.adrelid = CASE WHEN a.atthasdef THEN a.attrelid END` selects the same rows (none when
/// the filter is false).
fn move_outer_only_filters(query: &mut Query) {
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

/// DataFusion's LIKE escapes with a backslash only; SQLAlchemy sends `ESCAPE '/'`. The pattern
/// is rewritten to backslash escapes at run time (it is often a parameter).
fn backslash_escape(pattern: &mut Box<Expr>, escape: &mut Option<ValueWithSpan>) {
    let Some(c) = escape.as_ref().and_then(|v| v.value.clone().into_string()) else {
        return;
    };
    if c == "\\" || c.chars().count() != 1 {
        return;
    }
    let e = c.replace('\'', "''");
    // x with `\` doubled, then `<e>%`, `<e>_` and `<e><e>` turned into backslash escapes.
    let sql = format!(
        "replace(replace(replace(replace(x, '\\', '\\\\'), '{e}%', '\\%'), '{e}_', '\\_'), '{e}{e}', '{e}')"
    );
    let Ok(mut template) = datafusion::sql::sqlparser::parser::Parser::new(
        &datafusion::sql::sqlparser::dialect::PostgreSqlDialect {},
    )
    .try_with_sql(&sql)
    .and_then(|mut p| p.parse_expr()) else {
        return;
    };
    let original = std::mem::replace(
        pattern.as_mut(),
        Expr::value(datafusion::sql::sqlparser::ast::Value::Null),
    );
    let mut original = Some(original);
    let _ = visit_expressions_mut(&mut template, |e| {
        if matches!(e, Expr::Identifier(i) if i.value == "x")
            && let Some(o) = original.take()
        {
            *e = o;
        }
        ControlFlow::<()>::Continue(())
    });
    **pattern = template;
    *escape = None;
}

fn aggregate_single_value(body: &mut SetExpr) {
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
    use super::*;
    use datafusion::sql::sqlparser::dialect::PostgreSqlDialect;
    use datafusion::sql::sqlparser::parser::Parser;

    fn rewritten(sql: &str) -> String {
        let mut s = Parser::parse_sql(&PostgreSqlDialect {}, sql)
            .unwrap()
            .remove(0);
        rewrite(&mut s);
        s.to_string()
    }

    #[test]
    fn result_columns_are_named_like_postgres() {
        assert_eq!(
            rewritten("SELECT count(*), 1, 2, region, as_of(), amount::int, max(a) AS m FROM t"),
            "SELECT count(*) AS \"count\", 1 AS \"?column?\", 2, region, as_of() AS \"as_of\", amount::INT AS \"amount\", max(a) AS m FROM t"
        );
    }

    #[test]
    fn regproc_literals_become_names() {
        assert_eq!(
            rewrite_text("SELECT typinput='pg_catalog.array_in'::regproc FROM pg_type"),
            "SELECT typinput='array_in' FROM pg_type"
        );
    }

    #[test]
    fn like_escapes_become_backslashes() {
        assert_eq!(
            rewritten("SELECT n FROM t WHERE n NOT LIKE $1 || '%' ESCAPE '/'"),
            r"SELECT n FROM t WHERE n NOT LIKE replace(replace(replace(replace($1 || '%', '\', '\\'), '/%', '\%'), '/_', '\_'), '//', '/')"
        );
    }

    #[test]
    fn single_value_subqueries_are_aggregated_once() {
        assert_eq!(
            rewritten("SELECT t.oid FROM t WHERE (SELECT c.kind = 'c' FROM c WHERE c.oid = t.rel)"),
            "SELECT t.oid FROM t WHERE (SELECT max(c.kind = 'c') FROM c WHERE c.oid = t.rel)"
        );
        let counted = "SELECT (SELECT count(*) FROM c WHERE c.oid = t.rel) AS n FROM t";
        assert_eq!(rewritten(counted), counted);
    }
}

#[cfg(test)]
mod outer_filter_tests {
    use super::*;
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
        rewrite(&mut s);
        assert_eq!(
            s.to_string(),
            "SELECT (SELECT max(d.x) FROM pg_attrdef d WHERE (d.r = CASE WHEN a.h THEN a.r END) AND (d.n = a.n)) AS \"max\" FROM a"
        );
    }
}
