//! The SQL dialect both front ends parse with: PostgreSQL's, with `IS [NOT] DISTINCT FROM`
//! binding as in PostgreSQL.
//!
//! sqlparser 0.62 parses the right operand of `IS [NOT] DISTINCT FROM` as a whole expression,
//! so it swallows what follows: `a IS DISTINCT FROM b AND c` becomes `a IS DISTINCT FROM (b AND
//! c)`. With boolean operands that is a silently different answer (`SELECT true IS DISTINCT FROM
//! true AND false` gives true, PostgreSQL false); with others a baffling "Cannot infer common
//! argument type … AND" error on join conditions written over several columns. The fix merged
//! upstream (sqlparser pull request 2436, not in the release DataFusion 55 uses) parses the
//! operand at the precedence of IS; [`RebuyDialect::parse_infix`] does the same through the
//! dialect's parsing hook, and everything else is PostgreSQL's dialect unchanged.

use std::any::TypeId;

use datafusion::sql::sqlparser::ast::Expr;
use datafusion::sql::sqlparser::dialect::{Dialect, PostgreSqlDialect, Precedence};
use datafusion::sql::sqlparser::keywords::Keyword;
use datafusion::sql::sqlparser::parser::{Parser, ParserError};

#[derive(Debug, Default)]
pub struct RebuyDialect(PostgreSqlDialect);

/// Forwards the methods PostgreSqlDialect overrides (the others keep the trait's defaults,
/// which are PostgreSqlDialect's too); the test below checks the two parse alike.
macro_rules! forward_bool {
    ($($name:ident),* $(,)?) => {
        $(fn $name(&self) -> bool { self.0.$name() })*
    };
}

impl Dialect for RebuyDialect {
    /// The parser asks "is this PostgreSQL?" in many places: it is.
    fn dialect(&self) -> TypeId {
        TypeId::of::<PostgreSqlDialect>()
    }

    fn parse_infix(
        &self,
        parser: &mut Parser,
        expr: &Expr,
        precedence: u8,
    ) -> Option<Result<Expr, ParserError>> {
        let negated = if parser.parse_keywords(&[Keyword::IS, Keyword::DISTINCT, Keyword::FROM]) {
            false
        } else if parser.parse_keywords(&[
            Keyword::IS,
            Keyword::NOT,
            Keyword::DISTINCT,
            Keyword::FROM,
        ]) {
            true
        } else {
            return None;
        };
        // `precedence` is that of IS: the operand stops before AND, OR and a following IS.
        let right = match parser.parse_subexpr(precedence) {
            Ok(r) => Box::new(r),
            Err(e) => return Some(Err(e)),
        };
        let left = Box::new(expr.clone());
        Some(Ok(if negated {
            Expr::IsNotDistinctFrom(left, right)
        } else {
            Expr::IsDistinctFrom(left, right)
        }))
    }

    fn identifier_quote_style(&self, identifier: &str) -> Option<char> {
        self.0.identifier_quote_style(identifier)
    }
    fn is_delimited_identifier_start(&self, ch: char) -> bool {
        self.0.is_delimited_identifier_start(ch)
    }
    fn is_identifier_start(&self, ch: char) -> bool {
        self.0.is_identifier_start(ch)
    }
    fn is_identifier_part(&self, ch: char) -> bool {
        self.0.is_identifier_part(ch)
    }
    fn is_reserved_for_identifier(&self, kw: Keyword) -> bool {
        self.0.is_reserved_for_identifier(kw)
    }
    fn is_custom_operator_part(&self, ch: char) -> bool {
        self.0.is_custom_operator_part(ch)
    }
    fn get_next_precedence(&self, parser: &Parser) -> Option<Result<u8, ParserError>> {
        self.0.get_next_precedence(parser)
    }
    fn prec_value(&self, prec: Precedence) -> u8 {
        self.0.prec_value(prec)
    }
    forward_bool!(
        supports_unicode_string_literal,
        supports_filter_during_aggregation,
        supports_group_by_expr,
        allow_extract_custom,
        allow_extract_single_quotes,
        supports_create_index_with_clause,
        supports_explain_with_utility_options,
        supports_listen_notify,
        supports_factorial_operator,
        supports_bitwise_shift_operators,
        supports_comment_on,
        supports_load_extension,
        supports_named_fn_args_with_colon_operator,
        supports_named_fn_args_with_expr_name,
        supports_empty_projections,
        supports_nested_comments,
        supports_string_escape_constant,
        supports_numeric_literal_underscores,
        supports_array_typedef_with_brackets,
        supports_geometric_types,
        supports_set_names,
        supports_alter_column_type_using,
        supports_notnull_operator,
        supports_interval_options,
        supports_insert_table_alias,
        supports_create_table_like_parenthesized,
        supports_select_wildcard_with_alias,
        supports_comma_separated_trim,
        supports_xml_expressions,
        supports_comment_optimizer_hint,
    );
}

#[cfg(test)]
mod tests {
    use std::ops::ControlFlow;

    use datafusion::sql::sqlparser::ast::visit_expressions_mut;

    use super::*;

    /// The statements as text with the grouping written out: parentheses as written are
    /// dropped, then every operator's operands are parenthesised, so two texts print alike
    /// exactly when they parse to the same grouping.
    fn tree(dialect: &dyn Dialect, sql: &str) -> String {
        let mut statements = Parser::parse_sql(dialect, sql).unwrap();
        let null = || Expr::value(datafusion::sql::sqlparser::ast::Value::Null);
        let _ = visit_expressions_mut(&mut statements, |e| {
            if let Expr::Nested(inner) = e {
                *e = std::mem::replace(inner.as_mut(), null());
            }
            ControlFlow::<()>::Continue(())
        });
        let _ = visit_expressions_mut(&mut statements, |e| {
            if matches!(
                e,
                Expr::BinaryOp { .. } | Expr::IsDistinctFrom(..) | Expr::IsNotDistinctFrom(..)
            ) {
                let inner = std::mem::replace(e, null());
                *e = Expr::Nested(Box::new(inner));
            }
            ControlFlow::<()>::Continue(())
        });
        statements
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join("; ")
    }

    #[test]
    fn is_distinct_from_binds_tighter_than_and_or() {
        let ours = |sql: &str| tree(&RebuyDialect::default(), sql);
        for (written, grouped) in [
            (
                "SELECT a IS DISTINCT FROM b AND c",
                "SELECT (a IS DISTINCT FROM b) AND c",
            ),
            (
                "SELECT x AND a IS NOT DISTINCT FROM b OR c",
                "SELECT (x AND (a IS NOT DISTINCT FROM b)) OR c",
            ),
            (
                "SELECT * FROM t JOIN u ON t.a IS NOT DISTINCT FROM u.a AND t.b IS NOT DISTINCT FROM u.b",
                "SELECT * FROM t JOIN u ON (t.a IS NOT DISTINCT FROM u.a) AND (t.b IS NOT DISTINCT FROM u.b)",
            ),
            // Comparison and arithmetic bind tighter than IS and stay in the operand.
            (
                "SELECT a IS DISTINCT FROM b + 1 = c",
                "SELECT a IS DISTINCT FROM ((b + 1) = c)",
            ),
        ] {
            assert_eq!(
                ours(written),
                tree(&PostgreSqlDialect {}, grouped),
                "{written}"
            );
        }
    }

    #[test]
    fn everything_else_parses_as_postgresql() {
        for sql in [
            "SELECT \"Mixed\".x::int, $1, E'a\\n', U&'d\\0061t', 5!, 1 << 2, a -> 'k' ->> 'v', b @> c FROM t",
            "SELECT count(*) FILTER (WHERE x > 1), substring('abc' from 2), extract('year' from d) FROM t GROUP BY ALL",
            "SELECT a FROM t WHERE x NOTNULL AND a IS DISTINCT FROM (b AND c) ORDER BY 1 COLLATE \"C\"",
            "SET NAMES 'UTF8'; LISTEN ch; COMMENT ON TABLE t IS 'x'; SELECT arr[1:2], ROW(1, 2) FROM t",
            "EXPLAIN (ANALYZE, VERBOSE) SELECT 1; CREATE INDEX i ON t (a) WITH (fillfactor = 70)",
            "SELECT x IS NULL, y IS NOT TRUE, z IS UNKNOWN FROM t WHERE a BETWEEN 1 AND 2 AND b LIKE 'x%'",
        ] {
            assert_eq!(
                tree(&RebuyDialect::default(), sql),
                tree(&PostgreSqlDialect {}, sql),
                "{sql}"
            );
        }
    }
}
