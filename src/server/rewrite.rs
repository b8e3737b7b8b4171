//! Rewrites of client SQL that PostgreSQL accepts and DataFusion plans differently.
//!
//! Catalog queries of pgjdbc, Npgsql and BI tools use correlated scalar subqueries that return
//! one row by construction (`(SELECT c.relkind = 'c' FROM pg_class c WHERE c.oid = t.typrelid)`).
//! PostgreSQL checks the row count at run time; DataFusion wants the subquery aggregated. Such a
//! subquery's single expression is wrapped in `max(...)`, which gives the same value for the
//! one row (and NULL for none, as PostgreSQL does).

use std::ops::ControlFlow;

use datafusion::sql::sqlparser::ast::{
    Expr, Function, FunctionArg, FunctionArgExpr, FunctionArgumentList, FunctionArguments,
    GroupByExpr, Ident, ObjectName, SelectItem, SetExpr, Statement, ValueWithSpan,
    visit_expressions_mut,
};

const AGGREGATES: &[&str] = &[
    "count", "sum", "min", "max", "avg", "array_agg", "string_agg", "bool_and", "bool_or",
    "every", "first_value", "last_value",
];

/// Text-level rewrites, before parsing: `'pg_catalog.array_in'::regproc` compares a
/// function name with `pg_type.typinput`, which the catalog holds as text, so the cast is
/// dropped and the bare name kept.
pub fn rewrite_text(sql: &str) -> std::borrow::Cow<'_, str> {
    static REGPROC: std::sync::LazyLock<Option<regex::Regex>> = std::sync::LazyLock::new(|| {
        regex::Regex::new(r"(?i)'(?:pg_catalog\.)?([A-Za-z_][A-Za-z0-9_]*)'\s*::\s*(?:pg_catalog\.)?regproc\b")
            .ok()
    });
    match REGPROC.as_ref() {
        Some(re) if sql.contains("regproc") => re.replace_all(sql, "'$1'"),
        _ => std::borrow::Cow::Borrowed(sql),
    }
}

pub fn rewrite(statement: &mut Statement) {
    let _ = visit_expressions_mut(statement, |expr| {
        match expr {
            Expr::Subquery(query)
                if query.order_by.is_none()
                    && query.limit_clause.is_none()
                    && query.fetch.is_none() =>
            {
                aggregate_single_value(&mut query.body);
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
    let original = std::mem::replace(pattern.as_mut(), Expr::value(datafusion::sql::sqlparser::ast::Value::Null));
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
    let inner = std::mem::replace(slot, Expr::value(datafusion::sql::sqlparser::ast::Value::Null));
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
        let mut s = Parser::parse_sql(&PostgreSqlDialect {}, sql).unwrap().remove(0);
        rewrite(&mut s);
        s.to_string()
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
        let counted = "SELECT (SELECT count(*) FROM c WHERE c.oid = t.rel) FROM t";
        assert_eq!(rewritten(counted), counted);
    }
}
