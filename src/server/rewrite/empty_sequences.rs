//! SQLAlchemy's column reflection asks for identity options through a scalar subquery on
//! `pg_sequence` with casts DataFusion cannot decorrelate:
//!
//! ```sql
//! (SELECT json_build_object('always', a.attidentity = 'a', 'start', s.seqstart, ...)
//!    FROM pg_catalog.pg_sequence s JOIN pg_catalog.pg_class c ON s.seqrelid = c."oid"
//!    WHERE c.relkind = 'S' AND a.attidentity != '' AND s.seqrelid = CAST(...::regclass AS oid))
//! ```

use datafusion::sql::sqlparser::ast::{Query, SetExpr, TableFactor};

/// rebuy has no sequences: a scalar subquery reading only `pg_sequence` is NULL (SQLAlchemy's
/// identity-column reflection asks through casts DataFusion cannot decorrelate).
pub(super) fn reads_only_empty_catalogs(query: &Query) -> bool {
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
