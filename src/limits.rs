//! Bounds on what one statement may ask of the engine, checked on the SQL text before any
//! recursive pass (parser, rewrites, planner, optimizer) sees it.
//!
//! The parser builds a chain like `1+1+…+1` or `a AND b AND …` iteratively, but everything
//! after it walks the tree recursively, one stack frame per level: a 4 KB statement of 2,000
//! terms overflowed a worker's stack and took the whole server down. The token walk here is
//! iterative and estimates the tree's depth from above (nesting plus the longest operator
//! chain), so a statement is refused with SQLSTATE 54001 before it can be deep, and the threads
//! that plan and run queries get a stack large enough for every statement that passes
//! (see [`STACK_BYTES`]).
//!
//! Placeholder numbers are bounded as in PostgreSQL (65535): `$40000000` made the server
//! allocate types for forty million parameters.

use datafusion::sql::sqlparser::dialect::PostgreSqlDialect;
use datafusion::sql::sqlparser::keywords::Keyword;
use datafusion::sql::sqlparser::tokenizer::{Token, Tokenizer};

/// Longest statement text accepted (BI tools send long IN lists; nothing legitimate is larger).
pub const MAX_STATEMENT_BYTES: usize = 4 << 20;
/// Most tokens in one request.
pub const MAX_TOKENS: usize = 500_000;
/// Deepest expression accepted, estimated as parenthesis nesting plus the longest chain of
/// binary operators at one level.
pub const MAX_DEPTH: usize = 1_000;
/// The highest placeholder number (`$65535`), PostgreSQL's limit.
pub const MAX_PARAMETER: u64 = 65_535;
/// Stack of the threads that parse, plan and execute queries: a statement at [`MAX_DEPTH`]
/// needs a few kilobytes per level in each recursive pass.
pub const STACK_BYTES: usize = 64 << 20;

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum LimitError {
    /// SQLSTATE 54001.
    #[error("statement too complex: {what} (limit {limit})")]
    TooComplex { what: String, limit: usize },
    /// SQLSTATE 42P02.
    #[error("there is no parameter {text}: placeholders go up to ${MAX_PARAMETER}")]
    NoSuchParameter { text: String },
}

impl LimitError {
    pub fn sqlstate(&self) -> &'static str {
        match self {
            LimitError::TooComplex { .. } => "54001",
            LimitError::NoSuchParameter { .. } => "42P02",
        }
    }
}

/// Checks `sql` against the bounds above. Text the tokenizer cannot read passes: the parser
/// then reports the syntax error with its position.
pub fn check_statement_text(sql: &str) -> Result<(), LimitError> {
    if sql.len() > MAX_STATEMENT_BYTES {
        return Err(LimitError::TooComplex {
            what: format!("{} bytes of SQL", sql.len()),
            limit: MAX_STATEMENT_BYTES,
        });
    }
    let dialect = PostgreSqlDialect {};
    let Ok(tokens) = Tokenizer::new(&dialect, sql).tokenize() else {
        return Ok(());
    };
    let significant = tokens
        .iter()
        .filter(|t| !matches!(t, Token::Whitespace(_)))
        .count();
    if significant > MAX_TOKENS {
        return Err(LimitError::TooComplex {
            what: format!("{significant} tokens"),
            limit: MAX_TOKENS,
        });
    }
    // One entry per open parenthesis: the operator chain so far at that level.
    let mut chains: Vec<usize> = vec![0];
    let mut deepest = 0usize;
    for token in &tokens {
        match token {
            Token::Placeholder(text) => check_placeholder(text)?,
            Token::LParen | Token::LBracket => chains.push(0),
            Token::RParen | Token::RBracket => {
                if chains.len() > 1 {
                    chains.pop();
                }
            }
            Token::Comma | Token::SemiColon => {
                if let Some(c) = chains.last_mut() {
                    *c = 0;
                }
            }
            Token::Word(w) if resets_chain(w.keyword) => {
                if let Some(c) = chains.last_mut() {
                    *c = 0;
                }
            }
            t if is_operator(t) => {
                if let Some(c) = chains.last_mut() {
                    *c += 1;
                }
            }
            _ => {}
        }
        let depth = chains.len() - 1 + chains.last().copied().unwrap_or(0);
        deepest = deepest.max(depth);
        if deepest > MAX_DEPTH {
            return Err(LimitError::TooComplex {
                what: format!("expressions nested or chained more than {MAX_DEPTH} deep"),
                limit: MAX_DEPTH,
            });
        }
    }
    Ok(())
}

fn check_placeholder(text: &str) -> Result<(), LimitError> {
    let Some(digits) = text.strip_prefix('$') else {
        return Ok(());
    };
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Ok(());
    }
    match digits.parse::<u64>() {
        Ok(n) if (1..=MAX_PARAMETER).contains(&n) => Ok(()),
        _ => Err(LimitError::NoSuchParameter {
            text: text.to_string(),
        }),
    }
}

/// Clause keywords start a new expression: the chain before them is not the one after.
fn resets_chain(keyword: Keyword) -> bool {
    matches!(
        keyword,
        Keyword::SELECT
            | Keyword::FROM
            | Keyword::WHERE
            | Keyword::GROUP
            | Keyword::HAVING
            | Keyword::ORDER
            | Keyword::LIMIT
            | Keyword::OFFSET
            | Keyword::WHEN
            | Keyword::THEN
            | Keyword::ELSE
            | Keyword::END
            | Keyword::CASE
            | Keyword::ON
            | Keyword::JOIN
            | Keyword::UNION
            | Keyword::INTERSECT
            | Keyword::EXCEPT
            | Keyword::VALUES
            | Keyword::SET
            | Keyword::AS
    )
}

fn is_operator(token: &Token) -> bool {
    match token {
        Token::Word(w) => matches!(
            w.keyword,
            Keyword::AND
                | Keyword::OR
                | Keyword::NOT
                | Keyword::LIKE
                | Keyword::ILIKE
                | Keyword::IS
                | Keyword::IN
                | Keyword::BETWEEN
                | Keyword::XOR
        ),
        Token::Plus
        | Token::Minus
        | Token::Mul
        | Token::Div
        | Token::Mod
        | Token::StringConcat
        | Token::Eq
        | Token::DoubleEq
        | Token::Neq
        | Token::Lt
        | Token::Gt
        | Token::LtEq
        | Token::GtEq
        | Token::Caret
        | Token::Ampersand
        | Token::Pipe
        | Token::DoubleColon
        | Token::Arrow
        | Token::LongArrow
        | Token::Tilde
        | Token::ExclamationMark
        | Token::ShiftLeft
        | Token::ShiftRight => true,
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_chains_and_deep_nesting_are_refused_before_parsing() {
        let chain = |n: usize, op: &str| {
            format!(
                "SELECT {}",
                std::iter::repeat_n("1", n).collect::<Vec<_>>().join(op)
            )
        };
        assert!(check_statement_text(&chain(MAX_DEPTH, " + ")).is_ok());
        let err = check_statement_text(&chain(2_000, "+")).unwrap_err();
        assert_eq!(err.sqlstate(), "54001");
        assert!(check_statement_text(&chain(3_000, " AND ")).is_err());
        let nested = format!("SELECT {}1{}", "(".repeat(1_200), ")".repeat(1_200));
        assert_eq!(
            check_statement_text(&nested).unwrap_err().sqlstate(),
            "54001"
        );
        // Lists are wide, not deep.
        let list = format!(
            "SELECT 1 WHERE 1 IN ({})",
            (0..20_000)
                .map(|i| i.to_string())
                .collect::<Vec<_>>()
                .join(",")
        );
        assert!(check_statement_text(&list).is_ok());
    }

    #[test]
    fn placeholders_stop_at_postgres_limit() {
        assert!(check_statement_text("SELECT $1, $65535").is_ok());
        for sql in [
            "SELECT $65536",
            "SELECT $40000000",
            "SELECT $18446744073709551615",
            "SELECT $99999999999999999999999",
            "SELECT $0",
        ] {
            assert_eq!(
                check_statement_text(sql).unwrap_err().sqlstate(),
                "42P02",
                "{sql}"
            );
        }
        // Inside a string it is text, not a placeholder.
        assert!(check_statement_text("SELECT '$40000000'").is_ok());
    }
}
