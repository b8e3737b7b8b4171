//! The stored shape of each warehouse table: the single place where `../shared/DATA_MODEL.md`
//! becomes Arrow schemas. Ingest writes exactly these schemas; the catalog registers them.

use std::sync::Arc;

use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};

/// Timestamps are stored as microseconds in UTC (Delta Lake's `timestamp` type).
pub fn utc_timestamp() -> DataType {
    DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into()))
}

/// Money is `numeric(18,2)` as the data model says.
pub const MONEY: DataType = DataType::Decimal128(18, 2);

/// The tables rebuy stores, with their keys and partitioning.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, clap::ValueEnum)]
pub enum TableKind {
    #[value(name = "orders")]
    Orders,
    #[value(name = "customers")]
    Customers,
    #[value(name = "fx_rates", alias = "fx-rates")]
    FxRates,
    #[value(name = "marketing_spend", alias = "marketing-spend")]
    MarketingSpend,
}

impl TableKind {
    pub const ALL: [TableKind; 4] = [
        TableKind::Orders,
        TableKind::Customers,
        TableKind::FxRates,
        TableKind::MarketingSpend,
    ];

    /// SQL name of the table, also the folder name under the data directory.
    pub fn name(self) -> &'static str {
        match self {
            TableKind::Orders => "orders",
            TableKind::Customers => "customers",
            TableKind::FxRates => "fx_rates",
            TableKind::MarketingSpend => "marketing_spend",
        }
    }

    /// Columns that identify a row: a later row with the same key replaces the stored one.
    pub fn key_columns(self) -> &'static [&'static str] {
        match self {
            TableKind::Orders => &["order_id"],
            TableKind::Customers => &["customer_id"],
            TableKind::FxRates => &["rate_date", "currency"],
            // region may be NULL (spend not attributed to a region): keys compare NULLs as equal.
            TableKind::MarketingSpend => &["spend_date", "channel", "region", "currency"],
        }
    }

    /// Hive-style partition columns of the stored table.
    pub fn partition_columns(self) -> &'static [&'static str] {
        match self {
            TableKind::Orders => &["order_month"],
            TableKind::Customers | TableKind::FxRates | TableKind::MarketingSpend => &[],
        }
    }

    /// The stored schema. Partition columns come last, as Delta Lake readers list them.
    pub fn schema(self) -> SchemaRef {
        let fields = match self {
            TableKind::Orders => vec![
                Field::new("order_id", DataType::Utf8, false),
                Field::new("customer_id", DataType::Utf8, false),
                Field::new("order_ts", utc_timestamp(), false),
                Field::new("amount", MONEY, false),
                Field::new("currency", DataType::Utf8, false),
                Field::new("region", DataType::Utf8, true),
                Field::new("country", DataType::Utf8, true),
                Field::new("category", DataType::Utf8, true),
                Field::new("channel", DataType::Utf8, true),
                Field::new("is_subscription", DataType::Boolean, false),
                Field::new("status", DataType::Utf8, false),
                Field::new("discount", MONEY, false),
                Field::new("email_sha256", DataType::Utf8, true),
                Field::new("amount_usd", DataType::Float64, false),
                Field::new("order_month", DataType::Utf8, false),
            ],
            TableKind::Customers => vec![
                Field::new("customer_id", DataType::Utf8, false),
                Field::new("signup_ts", utc_timestamp(), true),
                Field::new("country", DataType::Utf8, true),
                Field::new("region", DataType::Utf8, true),
                Field::new("member_tier", DataType::Utf8, true),
                Field::new("marketing_consent", DataType::Boolean, false),
                Field::new("referred_by", DataType::Utf8, true),
                Field::new("email_sha256", DataType::Utf8, true),
            ],
            TableKind::FxRates => vec![
                Field::new("rate_date", DataType::Date32, false),
                Field::new("currency", DataType::Utf8, false),
                Field::new("to_usd", DataType::Float64, false),
            ],
            TableKind::MarketingSpend => vec![
                Field::new("spend_date", DataType::Date32, false),
                Field::new("channel", DataType::Utf8, false),
                Field::new("region", DataType::Utf8, true),
                Field::new("amount", MONEY, false),
                Field::new("currency", DataType::Utf8, false),
                Field::new("amount_usd", DataType::Float64, false),
            ],
        };
        Arc::new(Schema::new(fields))
    }

    /// The schema of input files as a store exports them (and `rebuy demo` writes them as
    /// Parquet): the stored columns minus those derived at ingest.
    pub fn input_schema(self) -> SchemaRef {
        let schema = self.schema();
        let names: Vec<String> = self.input_columns().into_iter().map(|c| c.name).collect();
        Arc::new(Schema::new(
            schema
                .fields()
                .iter()
                .filter(|f| names.contains(f.name()))
                .cloned()
                .collect::<Vec<_>>(),
        ))
    }

    /// The key as a PostgreSQL primary key, for the catalogs BI tools read. None when a key
    /// column may be NULL (marketing_spend's region): PostgreSQL's primary keys are NOT NULL,
    /// so announcing one there would tell a tool something false about the rows.
    pub fn primary_key(self) -> Option<&'static [&'static str]> {
        (!self.key_is_nullable()).then_some(self.key_columns())
    }

    /// Whether a key column may be NULL: such keys compare with IS NOT DISTINCT FROM.
    pub fn key_is_nullable(self) -> bool {
        let schema = self.schema();
        self.key_columns()
            .iter()
            .any(|k| schema.field_with_name(k).is_ok_and(|f| f.is_nullable()))
    }

    /// Whether rows of this table carry an amount converted to USD at ingest, so the ingest
    /// needs the stored exchange rates.
    pub fn converts_to_usd(self) -> bool {
        matches!(self, TableKind::Orders | TableKind::MarketingSpend)
    }

    /// Input columns: the stored columns minus those derived at ingest.
    pub fn input_columns(self) -> Vec<InputColumn> {
        let derived: &[&str] = match self {
            TableKind::Orders => &["amount_usd", "order_month"],
            TableKind::MarketingSpend => &["amount_usd"],
            _ => &[],
        };
        let required: &[&str] = match self {
            TableKind::Orders => &["order_id", "customer_id", "order_ts", "amount", "currency"],
            TableKind::Customers => &["customer_id"],
            TableKind::FxRates => &["rate_date", "currency", "to_usd"],
            TableKind::MarketingSpend => &["spend_date", "channel", "amount", "currency"],
        };
        self.schema()
            .fields()
            .iter()
            .filter(|f| !derived.contains(&f.name().as_str()))
            .map(|f| InputColumn {
                name: f.name().clone(),
                required: required.contains(&f.name().as_str()),
            })
            .collect()
    }
}

impl std::fmt::Display for TableKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// One column an input file may (or must) carry.
#[derive(Debug, Clone)]
pub struct InputColumn {
    pub name: String,
    pub required: bool,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_and_partitions_are_stored_columns() {
        for t in TableKind::ALL {
            let schema = t.schema();
            for c in t.key_columns().iter().chain(t.partition_columns()) {
                assert!(schema.field_with_name(c).is_ok(), "{t}: {c}");
            }
        }
    }

    #[test]
    fn derived_columns_are_not_inputs() {
        let inputs: Vec<String> = TableKind::Orders
            .input_columns()
            .into_iter()
            .map(|c| c.name)
            .collect();
        assert!(!inputs.contains(&"amount_usd".to_string()));
        assert!(!inputs.contains(&"order_month".to_string()));
        assert_eq!(inputs.len(), 13);
    }
}
