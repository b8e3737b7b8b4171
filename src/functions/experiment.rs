//! Holdout assignment: `experiment_bucket(salt, customer_id)` and
//! `experiment_arm(salt, customer_id, treatment_share)`.
//!
//! The bucket is the first 8 bytes of SHA-256(`salt` || '.' || `customer_id`) (UTF-8) read as
//! an unsigned big-endian integer, modulo 10000. Nothing else enters it (no seed, no machine,
//! no row order), so a customer is in the same arm on every run and in any tool that
//! implements the formula; in Python:
//! `int.from_bytes(hashlib.sha256(f"{salt}.{cid}".encode()).digest()[:8], "big") % 10000`.
//! The arm is 'treatment' when the bucket is below round(treatment_share × 10000), half away
//! from zero, else 'control'.

use std::sync::{Arc, LazyLock};

use datafusion::arrow::array::{Array, AsArray, Float64Array, Int32Builder, StringBuilder};
use datafusion::arrow::datatypes::DataType;
use datafusion::common::plan_err;
use datafusion::error::Result;
use datafusion::logical_expr::{
    ColumnarValue, DocSection, Documentation, ScalarFunctionArgs, ScalarUDFImpl, Signature,
    Volatility,
};

use super::FunctionError;

/// Buckets per experiment: shares are resolved to 0.01 percentage points.
pub const BUCKETS: u64 = 10_000;

/// The bucket of `customer_id` under `salt` (see the module's formula).
pub fn bucket(salt: &str, customer_id: &str) -> u32 {
    let mut ctx = ring::digest::Context::new(&ring::digest::SHA256);
    ctx.update(salt.as_bytes());
    ctx.update(b".");
    ctx.update(customer_id.as_bytes());
    let digest = ctx.finish();
    let mut first = [0u8; 8];
    first.copy_from_slice(&digest.as_ref()[..8]);
    (u64::from_be_bytes(first) % BUCKETS) as u32
}

/// Buckets below this number are the treatment arm.
pub fn treatment_buckets(share: f64) -> u32 {
    (share * BUCKETS as f64).round() as u32
}

/// Whether `share` is a treatment share a function or an experiment accepts.
pub fn valid_share(share: f64) -> bool {
    share.is_finite() && (0.0..=1.0).contains(&share)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Assign {
    Bucket,
    Arm,
}

#[derive(Debug, PartialEq, Eq, Hash)]
pub struct AssignFunc {
    kind: Assign,
    signature: Signature,
}

impl AssignFunc {
    pub fn new(kind: Assign) -> Self {
        Self {
            kind,
            signature: Signature::user_defined(Volatility::Immutable),
        }
    }
}

static BUCKET_DOC: LazyLock<Documentation> = LazyLock::new(|| {
    Documentation::builder(
        DocSection {
            include: true,
            label: "rebuy: experiments",
            description: None,
        },
        "The holdout bucket (0-9999) of a customer in an experiment: the first 8 bytes of \
         SHA-256(salt || '.' || customer_id), UTF-8, read as an unsigned big-endian integer, \
         modulo 10000. The same on every machine and run, and in any tool implementing the \
         formula; in Python: int.from_bytes(hashlib.sha256(f\"{salt}.{customer_id}\".encode())\
         .digest()[:8], \"big\") % 10000. NULL in either argument gives NULL.",
        "experiment_bucket(salt, customer_id)",
    )
    .with_argument("salt", "the experiment's salt (by default its name)")
    .with_argument("customer_id", "the customer's id")
    .with_sql_example(
        "> SELECT experiment_bucket('winback_coupon_2026q3', 'C000001') AS bucket;\n\
         +--------+\n\
         | bucket |\n\
         +--------+\n\
         | 7176   |\n\
         +--------+",
    )
    .build()
});

static ARM_DOC: LazyLock<Documentation> = LazyLock::new(|| {
    Documentation::builder(
        DocSection { include: true, label: "rebuy: experiments", description: None },
        "The arm of a customer in an experiment: 'treatment' when experiment_bucket(salt, \
         customer_id) is below round(treatment_share * 10000) (half away from zero), else \
         'control'. treatment_share is between 0 and 1; NULL in any argument gives NULL.",
        "experiment_arm(salt, customer_id, treatment_share)",
    )
    .with_argument("salt", "the experiment's salt (by default its name)")
    .with_argument("customer_id", "the customer's id")
    .with_argument("treatment_share", "share of customers in the treatment arm, 0 to 1")
    .with_sql_example(
        "> SELECT experiment_arm('winback_coupon_2026q3', 'C000001', 0.2) AS at_20, experiment_arm('winback_coupon_2026q3', 'C000001', 0.95) AS at_95;\n\
         +---------+-----------+\n\
         | at_20   | at_95     |\n\
         +---------+-----------+\n\
         | control | treatment |\n\
         +---------+-----------+",
    )
    .build()
});

impl ScalarUDFImpl for AssignFunc {
    fn name(&self) -> &str {
        match self.kind {
            Assign::Bucket => "experiment_bucket",
            Assign::Arm => "experiment_arm",
        }
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn coerce_types(&self, arg_types: &[DataType]) -> Result<Vec<DataType>> {
        let name = self.name();
        let wanted = match self.kind {
            Assign::Bucket => 2,
            Assign::Arm => 3,
        };
        if arg_types.len() != wanted {
            return plan_err!(
                "{name} takes {wanted} arguments ({}), got {}",
                match self.kind {
                    Assign::Bucket => "salt, customer_id",
                    Assign::Arm => "salt, customer_id, treatment_share",
                },
                arg_types.len()
            );
        }
        let mut out = Vec::with_capacity(wanted);
        for (t, arg) in arg_types.iter().zip(["salt", "customer_id"]) {
            if !(t.is_null()
                || matches!(t, DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View))
            {
                return plan_err!("{name} argument {arg} must be text, got {t}");
            }
            out.push(DataType::Utf8);
        }
        if let Some(t) = arg_types.get(2) {
            if !(t.is_null() || t.is_numeric()) {
                return plan_err!("{name} argument treatment_share must be a number, got {t}");
            }
            out.push(DataType::Float64);
        }
        Ok(out)
    }

    fn return_type(&self, _arg_types: &[DataType]) -> Result<DataType> {
        Ok(match self.kind {
            Assign::Bucket => DataType::Int32,
            Assign::Arm => DataType::Utf8,
        })
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let arrays = ColumnarValue::values_to_arrays(&args.args)?;
        let salts = arrays[0].as_string::<i32>();
        let ids = arrays[1].as_string::<i32>();
        let n = salts.len();
        let valid = |row: usize| salts.is_valid(row) && ids.is_valid(row);
        let result: Arc<dyn Array> = match self.kind {
            Assign::Bucket => {
                let mut out = Int32Builder::with_capacity(n);
                for row in 0..n {
                    if valid(row) {
                        out.append_value(bucket(salts.value(row), ids.value(row)) as i32);
                    } else {
                        out.append_null();
                    }
                }
                Arc::new(out.finish())
            }
            Assign::Arm => {
                let shares: &Float64Array = arrays[2].as_primitive();
                let mut out = StringBuilder::with_capacity(n, n * 9);
                for row in 0..n {
                    if !valid(row) || shares.is_null(row) {
                        out.append_null();
                        continue;
                    }
                    let share = shares.value(row);
                    if !valid_share(share) {
                        return Err(FunctionError::InvalidArgument {
                            function: "experiment_arm",
                            argument: "treatment_share",
                            message: format!("must be between 0 and 1, got {share}"),
                        }
                        .into());
                    }
                    let b = bucket(salts.value(row), ids.value(row));
                    out.append_value(if b < treatment_buckets(share) {
                        "treatment"
                    } else {
                        "control"
                    });
                }
                Arc::new(out.finish())
            }
        };
        super::columnar_result(result, &args.args)
    }

    fn documentation(&self) -> Option<&Documentation> {
        Some(match self.kind {
            Assign::Bucket => &BUCKET_DOC,
            Assign::Arm => &ARM_DOC,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shares_resolve_to_buckets() {
        assert_eq!(treatment_buckets(0.2), 2000);
        assert_eq!(treatment_buckets(0.00005), 1);
        assert_eq!(treatment_buckets(0.0), 0);
        assert_eq!(treatment_buckets(1.0), 10_000);
        assert!(!valid_share(f64::NAN) && !valid_share(-0.1) && !valid_share(1.5));
    }
}
