//! psql's `\\d+` and DBeaver's table properties read `pg_class.reloptions`:
//!
//! ```sql
//! SELECT c.relchecks, c.relkind, ..., c.reloptions FROM pg_catalog.pg_class c WHERE c.oid = ...
//! ```
//!
//! The emulated catalog has no such column; for rebuy's objects it is always NULL.

use datafusion::sql::sqlparser::ast::{Expr, Value};

/// Catalog columns the emulated catalog lacks, always NULL for rebuy's objects.
pub(super) const MISSING_CATALOG_COLUMNS: &[(&str, &str)] = &[("pg_class", "reloptions")];

/// NULL in place of a column of [`MISSING_CATALOG_COLUMNS`].
pub(super) fn null_for_missing(expr: &mut Expr) -> bool {
    if let Expr::CompoundIdentifier(parts) = expr
        && parts.len() >= 2
        && MISSING_CATALOG_COLUMNS.iter().any(|(t, c)| {
            parts[parts.len() - 1].value.eq_ignore_ascii_case(c)
                && parts[parts.len() - 2].value.eq_ignore_ascii_case(t)
        })
    {
        *expr = Expr::value(Value::Null);
        return true;
    }
    false
}
