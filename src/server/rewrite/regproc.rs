//! Npgsql's type loading (Power BI, and any .NET client) compares `pg_type.typinput` with
//! `'pg_catalog.array_in'::regproc`:
//!
//! ```sql
//! ... WHEN typ.typinput = 'pg_catalog.array_in'::regproc THEN ...
//! ```
//!
//! The emulated catalog holds `typinput` as text, so the cast is dropped and the bare name
//! compared.

/// Text-level rewrites, before parsing: `'pg_catalog.array_in'::regproc` compares a
/// function name with `pg_type.typinput`, which the catalog holds as text, so the cast is
/// dropped and the bare name kept.
pub fn drop_regproc_casts(sql: &str) -> std::borrow::Cow<'_, str> {
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

#[cfg(test)]
mod tests {
    #[test]
    fn regproc_literals_become_names() {
        assert_eq!(
            super::drop_regproc_casts(
                "SELECT typinput='pg_catalog.array_in'::regproc FROM pg_type"
            ),
            "SELECT typinput='array_in' FROM pg_type"
        );
    }
}
