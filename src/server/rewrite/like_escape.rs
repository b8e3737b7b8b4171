//! SQLAlchemy's reflection (`get_table_names`, `has_table` with a pattern) escapes LIKE patterns
//! with a slash:
//!
//! ```sql
//! ... WHERE pg_catalog.pg_class.relname NOT LIKE $1 || '%' ESCAPE '/'
//! ```

use std::ops::ControlFlow;

use datafusion::sql::sqlparser::ast::{Expr, ValueWithSpan, visit_expressions_mut};

/// DataFusion's LIKE escapes with a backslash only; SQLAlchemy sends `ESCAPE '/'`. The pattern
/// is rewritten to backslash escapes at run time (it is often a parameter).
pub(super) fn backslash_escape(pattern: &mut Box<Expr>, escape: &mut Option<ValueWithSpan>) {
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
    let Some(mut template) = super::parse_expr(&sql) else {
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
