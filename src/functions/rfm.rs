//! `rfm_segment(r, f, m)`: the customer segment of recency, frequency and monetary scores.
//!
//! Segment map "rebuy-rfm-v1". Source: the segment table of the `rfm` R package (Aravind
//! Hebbali, "RFM Analysis" vignette; the same 11-segment table as Putler's RFM guide), restricted
//! to eight segments (Promising, Need Attention and About To Sleep are folded into their
//! neighbours) as in the canonical workload `w1_rfm.sql`. The published score ranges overlap, so
//! the rules are tried in this order and the first match wins:
//!
//! | # | segment | R | F | M |
//! |---|---|---|---|---|
//! | 1 | Champions | 4–5 | 4–5 | 4–5 |
//! | 2 | Can't Lose Them | 1 | 4–5 | 4–5 |
//! | 3 | At Risk | 1–2 | 2–5 | 2–5 |
//! | 4 | Loyal Customers | 2–5 | 3–5 | 3–5 |
//! | 5 | New Customers | 4–5 | 1 | 1 |
//! | 6 | Potential Loyalist | 3–5 | 1–3 | 1–3 |
//! | 7 | Hibernating | 2 | 1–2 | 1–2 |
//! | 8 | Lost | 1 | 1–2 | 1–2 |
//! | – | Others | anything else | | |
//!
//! Scores are 1–5 with 5 best (most recent, most frequent, highest spend).

use std::sync::{Arc, LazyLock};

use datafusion::arrow::array::{Array, AsArray, StringBuilder};
use datafusion::arrow::datatypes::{DataType, Int64Type};
use datafusion::common::plan_err;
use datafusion::error::Result;
use datafusion::logical_expr::{
    ColumnarValue, DocSection, Documentation, ScalarFunctionArgs, ScalarUDFImpl, Signature,
    Volatility,
};

use super::FunctionError;

/// Version of the segment map, cited in the docs and by `rfm_segment`'s documentation.
pub const SEGMENT_MAP_VERSION: &str = "rebuy-rfm-v1";

/// The segment of valid (1–5) scores, by the first matching rule.
pub fn segment(r: i64, f: i64, m: i64) -> &'static str {
    if r >= 4 && f >= 4 && m >= 4 {
        "Champions"
    } else if r <= 1 && f >= 4 && m >= 4 {
        "Can't Lose Them"
    } else if r <= 2 && f >= 2 && m >= 2 {
        "At Risk"
    } else if r >= 2 && f >= 3 && m >= 3 {
        "Loyal Customers"
    } else if r >= 4 && f <= 1 && m <= 1 {
        "New Customers"
    } else if r >= 3 && f <= 3 && m <= 3 {
        "Potential Loyalist"
    } else if r == 2 && f <= 2 && m <= 2 {
        "Hibernating"
    } else if r <= 1 && f <= 2 && m <= 2 {
        "Lost"
    } else {
        "Others"
    }
}

/// [`segment`] of every score triple, at (r-1)*25 + (f-1)*5 + (m-1).
static SEGMENT_OF_CELL: LazyLock<[&str; 125]> = LazyLock::new(|| {
    std::array::from_fn(|i| segment(i as i64 / 25 + 1, i as i64 / 5 % 5 + 1, i as i64 % 5 + 1))
});

#[derive(Debug, PartialEq, Eq, Hash)]
pub struct RfmSegmentFunc {
    signature: Signature,
}

impl Default for RfmSegmentFunc {
    fn default() -> Self {
        Self {
            signature: Signature::user_defined(Volatility::Immutable),
        }
    }
}

static DOC: LazyLock<Documentation> = LazyLock::new(|| {
    Documentation::builder(
        DocSection { include: true, label: "rebuy: RFM", description: None },
        "The RFM segment of recency, frequency and monetary scores (1-5, 5 best), by segment map \
         rebuy-rfm-v1: adapted from the segment table of the `rfm` R package (A. Hebbali, \"RFM \
         Analysis\"), eight segments tried in order, first match wins: Champions, Can't Lose \
         Them, At Risk, Loyal Customers, New Customers, Potential Loyalist, Hibernating, Lost; \
         'Others' when none matches. NULL in any argument gives NULL; a score outside 1-5 is an \
         error naming the argument.",
        "rfm_segment(r, f, m)",
    )
    .with_argument("r", "recency score, 1-5 (5 = most recent)")
    .with_argument("f", "frequency score, 1-5 (5 = most frequent)")
    .with_argument("m", "monetary score, 1-5 (5 = highest spend)")
    .with_sql_example(
        "> SELECT rfm_segment(5, 5, 5) AS best, rfm_segment(1, 1, 1) AS worst, rfm_segment(1, 5, 5) AS slipping;\n\
         +-----------+-------+-----------------+\n\
         | best      | worst | slipping        |\n\
         +-----------+-------+-----------------+\n\
         | Champions | Lost  | Can't Lose Them |\n\
         +-----------+-------+-----------------+",
    )
    .build()
});

const ARGS: [&str; 3] = ["r", "f", "m"];

impl ScalarUDFImpl for RfmSegmentFunc {
    fn name(&self) -> &str {
        "rfm_segment"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn coerce_types(&self, arg_types: &[DataType]) -> Result<Vec<DataType>> {
        if arg_types.len() != 3 {
            return plan_err!(
                "rfm_segment takes three arguments (r, f, m scores 1-5), got {}",
                arg_types.len()
            );
        }
        for (t, name) in arg_types.iter().zip(ARGS) {
            if !(t.is_integer() || t.is_null()) {
                return plan_err!(
                    "rfm_segment argument {name} must be an integer score 1-5, got {t}"
                );
            }
        }
        Ok(vec![DataType::Int64; 3])
    }

    fn return_type(&self, _arg_types: &[DataType]) -> Result<DataType> {
        Ok(DataType::Utf8)
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let arrays = ColumnarValue::values_to_arrays(&args.args)?;
        let scores: Vec<_> = arrays
            .iter()
            .map(|a| a.as_primitive::<Int64Type>())
            .collect();
        let n = scores[0].len();
        let mut out = StringBuilder::with_capacity(n, n * 12);
        for row in 0..n {
            let mut cell = 0;
            let mut null = false;
            for (i, s) in scores.iter().enumerate() {
                if s.is_null(row) {
                    null = true;
                    continue;
                }
                let v = s.value(row);
                if !(1..=5).contains(&v) {
                    return Err(FunctionError::InvalidArgument {
                        function: "rfm_segment",
                        argument: ARGS[i],
                        message: format!("must be a score between 1 and 5, got {v}"),
                    }
                    .into());
                }
                cell = cell * 5 + (v - 1) as usize;
            }
            if null {
                out.append_null();
            } else {
                out.append_value(SEGMENT_OF_CELL[cell]);
            }
        }
        super::columnar_result(Arc::new(out.finish()), &args.args)
    }

    fn documentation(&self) -> Option<&Documentation> {
        Some(&DOC)
    }
}

#[cfg(test)]
mod tests {
    use super::segment;

    #[test]
    fn every_score_combination_has_one_segment() {
        let mut seen = std::collections::BTreeMap::new();
        for r in 1..=5 {
            for f in 1..=5 {
                for m in 1..=5 {
                    *seen.entry(segment(r, f, m)).or_insert(0) += 1;
                }
            }
        }
        assert_eq!(segment(5, 5, 5), "Champions");
        assert_eq!(segment(1, 1, 1), "Lost");
        assert_eq!(segment(2, 1, 1), "Hibernating");
        assert_eq!(seen.values().sum::<i32>(), 125);
        assert_eq!(seen.len(), 9, "{seen:?}");
    }
}
