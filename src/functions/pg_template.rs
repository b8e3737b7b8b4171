//! PostgreSQL's template patterns for `to_char`, `to_timestamp` and `to_date`
//! (`'YYYY-MM-DD HH24:MI:SS.US'`), which Superset writes for every time filter
//! (`TO_TIMESTAMP('2024-03-05 00:00:00.000000', 'YYYY-MM-DD HH24:MI:SS.US')`) and BI users
//! write by habit. DataFusion's functions read chrono formats (`'%Y-%m-%d'`); a format with no
//! `%` in it is read as a PostgreSQL template and translated, so both spellings work (rebuy's
//! own views use the chrono one).
//!
//! Patterns: `YYYY YY MM DD DDD HH24 HH12 HH MI SS MS US AM PM am pm Mon MON Month Dy Day IYYY
//! IW ID TZ OF`, the `FM` prefix (no padding), `"quoted text"`; other characters are copied.
//! Patterns chrono cannot render (`Q`, `WW`, `J`, `CC`, …) are refused with 22023.

use std::sync::Arc;

use datafusion::arrow::datatypes::{DataType, FieldRef};
use datafusion::common::{Result, ScalarValue};
use datafusion::execution::FunctionRegistry;
use datafusion::logical_expr::simplify::{ExprSimplifyResult, SimplifyContext};
use datafusion::logical_expr::{
    ColumnarValue, Documentation, Expr, ReturnFieldArgs, ScalarFunctionArgs, ScalarUDF,
    ScalarUDFImpl, Signature,
};
use datafusion::prelude::SessionContext;

use super::FunctionError;

/// The functions whose second argument is a format.
const WRAPPED: &[&str] = &["to_char", "to_timestamp", "to_date"];

/// Replaces the session's `to_char`, `to_timestamp` and `to_date` by versions that also read
/// PostgreSQL templates.
pub fn register(ctx: &SessionContext) {
    for name in WRAPPED {
        let Ok(udf) = ctx.udf(name) else {
            continue;
        };
        let current = udf.inner().clone();
        let any: &dyn std::any::Any = current.as_ref();
        if any.downcast_ref::<Templated>().is_some() {
            continue;
        }
        ctx.register_udf(ScalarUDF::new_from_shared_impl(Arc::new(Templated {
            inner: current,
        })));
    }
}

/// The chrono format for a PostgreSQL template; a format with a `%` is already chrono's.
pub fn chrono_format(template: &str) -> std::result::Result<String, FunctionError> {
    if template.contains('%') {
        return Ok(template.to_string());
    }
    let unsupported = |p: &str| {
        FunctionError::InvalidSetting(format!(
            "template pattern \"{p}\" is not supported by rebuy's to_char/to_timestamp/to_date"
        ))
    };
    // Longest first: HH24 before HH, DDD before DD, Month before Mon before MM.
    const PATTERNS: &[(&str, &str, &str)] = &[
        // (pattern, padded, FM-unpadded)
        ("HH24", "%H", "%-H"),
        ("HH12", "%I", "%-I"),
        ("IYYY", "%G", "%G"),
        ("YYYY", "%Y", "%Y"),
        ("Month", "%B", "%B"),
        ("MONTH", "%B", "%B"),
        ("month", "%B", "%B"),
        ("DDD", "%j", "%-j"),
        ("Day", "%A", "%A"),
        ("DAY", "%A", "%A"),
        ("day", "%A", "%A"),
        ("Mon", "%b", "%b"),
        ("MON", "%b", "%b"),
        ("mon", "%b", "%b"),
        ("Dy", "%a", "%a"),
        ("DY", "%a", "%a"),
        ("dy", "%a", "%a"),
        ("YY", "%y", "%y"),
        ("MM", "%m", "%-m"),
        ("MI", "%M", "%-M"),
        ("MS", "%3f", "%3f"),
        ("US", "%6f", "%6f"),
        ("DD", "%d", "%-d"),
        ("HH", "%I", "%-I"),
        ("SS", "%S", "%-S"),
        ("IW", "%V", "%-V"),
        ("ID", "%u", "%u"),
        ("AM", "%p", "%p"),
        ("PM", "%p", "%p"),
        ("am", "%P", "%P"),
        ("pm", "%P", "%P"),
        ("TZ", "%Z", "%Z"),
        ("OF", "%:z", "%:z"),
    ];
    const REFUSED: &[&str] = &[
        "CC", "WW", "J", "Q", "RM", "rm", "W", "SSSS", "Y,YYY", "TH", "D", "Y",
    ];
    let mut out = String::new();
    let mut rest = template;
    let mut fill_mode = false;
    while !rest.is_empty() {
        if let Some(r) = rest.strip_prefix("FM") {
            fill_mode = true;
            rest = r;
            continue;
        }
        if let Some(r) = rest.strip_prefix('"') {
            let end = r.find('"').unwrap_or(r.len());
            out.push_str(&r[..end].replace('%', "%%"));
            rest = r.get(end + 1..).unwrap_or("");
            continue;
        }
        if let Some((p, padded, bare)) = PATTERNS.iter().find(|(p, _, _)| rest.starts_with(p)) {
            out.push_str(if fill_mode { bare } else { padded });
            rest = &rest[p.len()..];
            fill_mode = false;
            continue;
        }
        if let Some(p) = REFUSED.iter().find(|p| rest.starts_with(**p)) {
            return Err(unsupported(p));
        }
        let c = rest.chars().next().unwrap_or(' ');
        out.push(c);
        rest = &rest[c.len_utf8()..];
    }
    Ok(out)
}

/// A literal format argument translated, or None when there is nothing to translate.
fn translated(value: &ScalarValue) -> Result<Option<ScalarValue>> {
    let text = match value {
        ScalarValue::Utf8(Some(t))
        | ScalarValue::Utf8View(Some(t))
        | ScalarValue::LargeUtf8(Some(t)) => t,
        _ => return Ok(None),
    };
    if text.contains('%') {
        return Ok(None);
    }
    let chrono = chrono_format(text)?;
    Ok(Some(match value {
        ScalarValue::Utf8View(_) => ScalarValue::Utf8View(Some(chrono)),
        ScalarValue::LargeUtf8(_) => ScalarValue::LargeUtf8(Some(chrono)),
        _ => ScalarValue::Utf8(Some(chrono)),
    }))
}

#[derive(Debug)]
struct Templated {
    inner: Arc<dyn ScalarUDFImpl>,
}

impl PartialEq for Templated {
    fn eq(&self, other: &Self) -> bool {
        self.inner.name() == other.inner.name()
    }
}
impl Eq for Templated {}
impl std::hash::Hash for Templated {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.inner.name().hash(state);
    }
}

impl ScalarUDFImpl for Templated {
    fn name(&self) -> &str {
        self.inner.name()
    }
    fn aliases(&self) -> &[String] {
        self.inner.aliases()
    }
    fn signature(&self) -> &Signature {
        self.inner.signature()
    }
    fn return_type(&self, arg_types: &[DataType]) -> Result<DataType> {
        self.inner.return_type(arg_types)
    }
    fn return_field_from_args(&self, args: ReturnFieldArgs) -> Result<FieldRef> {
        self.inner.return_field_from_args(args)
    }
    fn coerce_types(&self, arg_types: &[DataType]) -> Result<Vec<DataType>> {
        self.inner.coerce_types(arg_types)
    }
    /// A literal template becomes the chrono format once, when the statement is planned.
    fn simplify(&self, mut args: Vec<Expr>, info: &SimplifyContext) -> Result<ExprSimplifyResult> {
        if let Some(Expr::Literal(value, meta)) = args.get(1)
            && let Some(chrono) = translated(value)?
        {
            args[1] = Expr::Literal(chrono, meta.clone());
        }
        self.inner.simplify(args, info)
    }
    fn documentation(&self) -> Option<&Documentation> {
        self.inner.documentation()
    }
    fn invoke_with_args(&self, mut args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        if let Some(ColumnarValue::Scalar(value)) = args.args.get(1)
            && let Some(chrono) = translated(value)?
        {
            args.args[1] = ColumnarValue::Scalar(chrono);
        }
        self.inner.invoke_with_args(args)
    }
}

#[cfg(test)]
mod tests {
    use super::chrono_format;

    #[test]
    fn templates_become_chrono_formats() {
        assert_eq!(
            chrono_format("YYYY-MM-DD HH24:MI:SS.US").unwrap(),
            "%Y-%m-%d %H:%M:%S.%6f"
        );
        assert_eq!(chrono_format("FMDD Mon YYYY").unwrap(), "%-d %b %Y");
        assert_eq!(chrono_format("\"week\" IW, IYYY").unwrap(), "week %V, %G");
        assert_eq!(chrono_format("%Y-%m").unwrap(), "%Y-%m");
        assert!(chrono_format("YYYY-Q").is_err());
    }
}
