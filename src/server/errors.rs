//! SQLSTATE codes for what goes wrong in a query, so that clients can tell a typo from a
//! missing table from a bad argument, as they would with PostgreSQL.

use datafusion::error::DataFusionError;
use pgwire::error::{ErrorInfo, PgWireError};

use crate::functions::FunctionError;

pub const SYNTAX_ERROR: &str = "42601";
pub const UNDEFINED_TABLE: &str = "42P01";
pub const UNDEFINED_COLUMN: &str = "42703";
pub const UNDEFINED_FUNCTION: &str = "42883";
pub const UNDEFINED_OBJECT: &str = "42704";
pub const INVALID_PARAMETER_VALUE: &str = "22023";
pub const QUERY_CANCELED: &str = "57014";
pub const READ_ONLY_TRANSACTION: &str = "25006";
pub const INSUFFICIENT_PRIVILEGE: &str = "42501";
pub const OUT_OF_MEMORY: &str = "53200";
pub const FEATURE_NOT_SUPPORTED: &str = "0A000";
pub const DIVISION_BY_ZERO: &str = "22012";
pub const INVALID_TEXT_REPRESENTATION: &str = "22P02";
pub const DATATYPE_MISMATCH: &str = "42804";
pub const INTERNAL_ERROR: &str = "XX000";
pub const PROGRAM_LIMIT_EXCEEDED: &str = "54000";
pub const TOO_MANY_CONNECTIONS: &str = "53300";
pub const INVALID_PASSWORD: &str = "28P01";
pub const INVALID_AUTHORIZATION: &str = "28000";
pub const CARDINALITY_VIOLATION: &str = "21000";
pub const NUMERIC_VALUE_OUT_OF_RANGE: &str = "22003";
pub const AMBIGUOUS_COLUMN: &str = "42702";
pub const DUPLICATE_COLUMN: &str = "42701";
pub const DUPLICATE_ALIAS: &str = "42712";

/// An ERROR-severity response with `code`.
pub fn pg_error(code: &str, message: impl Into<String>) -> PgWireError {
    PgWireError::UserError(Box::new(ErrorInfo::new(
        "ERROR".to_string(),
        code.to_string(),
        message.into(),
    )))
}

pub fn canceled(reason: &str) -> PgWireError {
    pg_error(
        QUERY_CANCELED,
        format!("canceling statement due to {reason}"),
    )
}

/// The SQLSTATE PostgreSQL would give for this DataFusion error: from the error's structure
/// where DataFusion gives one (parser errors, schema errors, Arrow's compute errors, rebuy's
/// function errors), and from the message only for what DataFusion reports as plain text
/// (unknown tables and functions, a scalar subquery's extra rows).
pub fn sqlstate(error: &DataFusionError) -> &'static str {
    let root = error.find_root();
    structured(root).unwrap_or_else(|| from_message(root))
}

fn structured(root: &DataFusionError) -> Option<&'static str> {
    use datafusion::arrow::error::ArrowError;
    use datafusion::common::SchemaError;
    Some(match root {
        DataFusionError::SQL(..) => SYNTAX_ERROR,
        DataFusionError::ResourcesExhausted(_) => OUT_OF_MEMORY,
        DataFusionError::NotImplemented(_) => FEATURE_NOT_SUPPORTED,
        DataFusionError::SchemaError(e, _) => match e.as_ref() {
            SchemaError::FieldNotFound { .. } => UNDEFINED_COLUMN,
            SchemaError::AmbiguousReference { .. } => AMBIGUOUS_COLUMN,
            // `SELECT * FROM orders, orders`: PostgreSQL's "table name specified more than once".
            SchemaError::DuplicateQualifiedField { .. } => DUPLICATE_ALIAS,
            SchemaError::DuplicateUnqualifiedField { .. } => DUPLICATE_COLUMN,
        },
        DataFusionError::ArrowError(e, _) => return arrow_state(e),
        DataFusionError::External(e) => match e.downcast_ref::<FunctionError>() {
            Some(FunctionError::Stopped { .. }) => QUERY_CANCELED,
            Some(FunctionError::TooLarge { .. }) => PROGRAM_LIMIT_EXCEEDED,
            Some(_) => INVALID_PARAMETER_VALUE,
            None => return e.downcast_ref::<ArrowError>().and_then(arrow_state),
        },
        _ => return None,
    })
}

fn arrow_state(e: &datafusion::arrow::error::ArrowError) -> Option<&'static str> {
    use datafusion::arrow::error::ArrowError;
    Some(match e {
        ArrowError::DivideByZero => DIVISION_BY_ZERO,
        ArrowError::ArithmeticOverflow(_) => NUMERIC_VALUE_OUT_OF_RANGE,
        // Arrow says "Can't cast value 3000000000 to type Int32" for a value out of the
        // target's range, which PostgreSQL reports as 22003, not as bad text.
        // ... and "Cannot cast to Decimal128(5, 2). Overflowing on 12345.6" for a numeric.
        ArrowError::CastError(m)
            if m.starts_with("Can't cast value") || m.contains("Overflowing") =>
        {
            NUMERIC_VALUE_OUT_OF_RANGE
        }
        ArrowError::CastError(_) | ArrowError::ParseError(_) => INVALID_TEXT_REPRESENTATION,
        // "123456.70 is too large to store in a Decimal128 of precision 5".
        ArrowError::InvalidArgumentError(m) if m.contains("too large to store") => {
            NUMERIC_VALUE_OUT_OF_RANGE
        }
        ArrowError::MemoryError(_) => OUT_OF_MEMORY,
        _ => return None,
    })
}

/// DataFusion reports these as plain `Plan`/`Execution` text, with no variant to match.
fn from_message(root: &DataFusionError) -> &'static str {
    let lower = root.to_string().to_ascii_lowercase();
    if lower.contains("scalar subquery returned more than one row") {
        CARDINALITY_VIOLATION
    } else if (lower.contains("table")
        && (lower.contains("not found") || lower.contains("doesn't exist")))
        || lower.contains("no table named")
    {
        UNDEFINED_TABLE
    } else if lower.contains("invalid function")
        || lower.contains("unknown function")
        || lower.contains("no function matches")
        || (lower.contains("function") && lower.contains("not found"))
        || lower.contains("does not support inputs of type")
        || lower.contains("failed to coerce arguments")
        || lower.contains("expects") && (lower.contains("argument") || lower.contains("arguments"))
    {
        UNDEFINED_FUNCTION
    } else if lower.contains("divide by zero") || lower.contains("division by zero") {
        // Arrow's kernels sometimes report it wrapped in an execution message.
        DIVISION_BY_ZERO
    } else if lower.contains("cannot cast") || lower.contains("cast error") {
        INVALID_TEXT_REPRESENTATION
    } else if matches!(root, DataFusionError::Plan(_)) {
        DATATYPE_MISMATCH
    } else {
        INTERNAL_ERROR
    }
}

/// Converts a DataFusion error into the wire error a client receives.
pub fn from_datafusion(error: DataFusionError) -> PgWireError {
    let code = sqlstate(&error);
    let message = postgres_message(code, clean_message(&error));
    pg_error(code, message)
}

/// PostgreSQL's wording for the errors clients match on, keeping DataFusion's hint.
fn postgres_message(code: &str, message: String) -> String {
    static FIELD: std::sync::LazyLock<Option<regex::Regex>> = std::sync::LazyLock::new(|| {
        regex::Regex::new(r"No field named ([^ .]+(?:\.[^ .]+)*)\.").ok()
    });
    static TABLE: std::sync::LazyLock<Option<regex::Regex>> =
        std::sync::LazyLock::new(|| regex::Regex::new(r"table '([^']+)' not found").ok());
    let capture = |re: &Option<regex::Regex>| {
        re.as_ref()
            .and_then(|re| re.captures(&message))
            .and_then(|c| c.get(1))
            .map(|m| m.as_str().trim_matches('"').to_string())
    };
    match code {
        UNDEFINED_COLUMN => match capture(&FIELD) {
            Some(name) => format!("column \"{name}\" does not exist ({message})"),
            None => message,
        },
        UNDEFINED_TABLE => match capture(&TABLE) {
            Some(name) => {
                let short = name.rsplit('.').next().unwrap_or(&name).to_string();
                format!("relation \"{short}\" does not exist")
            }
            None => message,
        },
        CARDINALITY_VIOLATION => {
            "more than one row returned by a subquery used as an expression".to_string()
        }
        _ => message,
    }
}

/// DataFusion prefixes messages with the error's kind ("Error during planning: ..."); clients
/// show PostgreSQL-style messages, so the innermost message is what they get.
fn clean_message(error: &DataFusionError) -> String {
    let root = error.find_root();
    let text = match root {
        DataFusionError::External(e) => e.to_string(),
        DataFusionError::Plan(m)
        | DataFusionError::Execution(m)
        | DataFusionError::NotImplemented(m)
        | DataFusionError::ResourcesExhausted(m) => m.clone(),
        other => other.to_string(),
    };
    text.lines().next().unwrap_or_default().to_string()
}

/// Rewrites errors that reach pgwire without a specific code (anything wrapped as an API
/// error) into classified ones.
pub fn classify(error: &mut PgWireError) {
    if let PgWireError::ApiError(inner) = error {
        let code_and_message = if let Some(df) = inner.downcast_ref::<DataFusionError>() {
            (sqlstate(df), clean_message(df))
        } else if inner.to_string().contains("sql parser error")
            || inner.to_string().contains("ParserError")
        {
            (SYNTAX_ERROR, inner.to_string())
        } else {
            (INTERNAL_ERROR, inner.to_string())
        };
        *error = pg_error(code_and_message.0, code_and_message.1);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::prelude::SessionContext;

    async fn code_of(sql: &str) -> &'static str {
        let ctx = SessionContext::new();
        crate::functions::register_all(&ctx);
        ctx.sql("CREATE TABLE t (a INT) AS VALUES (1)")
            .await
            .unwrap();
        let err = match ctx.sql(sql).await {
            Ok(df) => df.collect().await.unwrap_err(),
            Err(e) => e,
        };
        sqlstate(&err)
    }

    #[tokio::test]
    async fn errors_get_postgres_codes() {
        assert_eq!(code_of("SELEC 1").await, SYNTAX_ERROR);
        assert_eq!(code_of("SELECT * FROM nope").await, UNDEFINED_TABLE);
        assert_eq!(code_of("SELECT nope FROM t").await, UNDEFINED_COLUMN);
        assert_eq!(code_of("SELECT no_such_fn(1)").await, UNDEFINED_FUNCTION);
        assert_eq!(
            code_of("SELECT (SELECT a FROM (VALUES (1), (2)) v(a))").await,
            CARDINALITY_VIOLATION
        );
        assert_eq!(
            code_of("SELECT rfm_segment(9, 1, 1)").await,
            INVALID_PARAMETER_VALUE
        );
    }
}
