//! Writing the demo's input files: Parquet with typed columns (as a store's export would be) or
//! CSV with text timestamps in the customer's local offset (as most exports are).

use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use datafusion::arrow::array::{
    ArrayRef, BooleanBuilder, Date32Builder, Decimal128Builder, Float64Builder, RecordBatch,
    StringBuilder, TimestampMicrosecondBuilder,
};
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::parquet::arrow::ArrowWriter;
use datafusion::parquet::basic::{Compression, ZstdLevel};
use datafusion::parquet::file::properties::WriterProperties;

use super::{CURRENCIES, Customer, DemoError, FxTable, InputFormat, Order, customer_key};
use crate::ingest::parse::days_to_date;
use crate::storage::TableKind;

/// Writes rows as Parquet (typed, as a store's export would be) or CSV (text, timestamps with
/// the customer's local UTC offset, as most exports are).
pub(super) enum Out {
    Parquet {
        path: PathBuf,
        writer: ArrowWriter<File>,
        schema: SchemaRef,
    },
    Csv {
        path: PathBuf,
        writer: csv::Writer<std::io::BufWriter<File>>,
    },
}

impl Out {
    pub(super) fn create(
        path: PathBuf,
        schema: SchemaRef,
        format: InputFormat,
    ) -> Result<Out, DemoError> {
        let file = File::create(&path).map_err(|source| DemoError::Io {
            path: path.clone(),
            source,
        })?;
        Ok(match format {
            InputFormat::Parquet => {
                let props = WriterProperties::builder()
                    .set_compression(Compression::ZSTD(ZstdLevel::try_new(1).unwrap_or_default()))
                    .build();
                let writer =
                    ArrowWriter::try_new(file, schema.clone(), Some(props)).map_err(|e| {
                        DemoError::Write {
                            path: path.clone(),
                            message: e.to_string(),
                        }
                    })?;
                Out::Parquet {
                    path,
                    writer,
                    schema,
                }
            }
            InputFormat::Csv => {
                let mut writer =
                    csv::Writer::from_writer(std::io::BufWriter::with_capacity(1 << 20, file));
                let header: Vec<&str> = schema.fields().iter().map(|f| f.name().as_str()).collect();
                writer.write_record(&header).map_err(|e| DemoError::Write {
                    path: path.clone(),
                    message: e.to_string(),
                })?;
                Out::Csv { path, writer }
            }
        })
    }

    pub(super) fn batch(&mut self, columns: Vec<ArrayRef>) -> Result<(), DemoError> {
        if let Out::Parquet {
            path,
            writer,
            schema,
        } = self
        {
            let batch = RecordBatch::try_new(schema.clone(), columns)
                .and_then(|b| writer.write(&b).map_err(Into::into))
                .map_err(|e| DemoError::Write {
                    path: path.clone(),
                    message: e.to_string(),
                });
            batch?;
        }
        Ok(())
    }

    pub(super) fn row(&mut self, fields: &[&str]) -> Result<(), DemoError> {
        if let Out::Csv { path, writer } = self {
            writer.write_record(fields).map_err(|e| DemoError::Write {
                path: path.clone(),
                message: e.to_string(),
            })?;
        }
        Ok(())
    }

    pub(super) fn close(self) -> Result<(), DemoError> {
        match self {
            Out::Parquet { path, writer, .. } => {
                writer.close().map(|_| ()).map_err(|e| DemoError::Write {
                    path,
                    message: e.to_string(),
                })
            }
            Out::Csv { path, mut writer } => writer
                .flush()
                .map_err(|source| DemoError::Io { path, source }),
        }
    }
}

fn format_ts(micros: i64, offset_min: i32) -> String {
    let offset = chrono::FixedOffset::east_opt(offset_min * 60)
        .unwrap_or_else(|| chrono::FixedOffset::east_opt(0).expect("zero offset is valid"));
    chrono::DateTime::from_timestamp_micros(micros)
        .map(|dt| {
            dt.with_timezone(&offset)
                .format("%Y-%m-%dT%H:%M:%S%:z")
                .to_string()
        })
        .unwrap_or_default()
}

pub(super) fn cents_text(c: i128) -> String {
    format!("{}.{:02}", c / 100, c % 100)
}

pub(super) struct OrderBuffer {
    pub(super) rows: Vec<Order>,
}

impl OrderBuffer {
    pub(super) fn flush(&mut self, out: &mut Out) -> Result<(), DemoError> {
        if self.rows.is_empty() {
            return Ok(());
        }
        match out {
            Out::Csv { .. } => {
                for o in &self.rows {
                    let cid = customer_key(o.customer_id);
                    let ts = format_ts(o.ts, o.offset_min);
                    let amount = cents_text(o.amount_cents);
                    let discount = cents_text(o.discount_cents);
                    out.row(&[
                        &o.order_id,
                        &cid,
                        &ts,
                        &amount,
                        o.currency,
                        o.region,
                        o.country,
                        o.category,
                        o.channel,
                        if o.subscription { "true" } else { "false" },
                        o.status,
                        &discount,
                        &o.email,
                    ])?;
                }
            }
            Out::Parquet { .. } => {
                let mut id = StringBuilder::new();
                let mut cust = StringBuilder::new();
                let mut ts = TimestampMicrosecondBuilder::new().with_timezone("UTC");
                let mut amount = Decimal128Builder::new()
                    .with_precision_and_scale(18, 2)
                    .unwrap_or_default();
                let mut cur = StringBuilder::new();
                let mut region = StringBuilder::new();
                let mut country = StringBuilder::new();
                let mut cat = StringBuilder::new();
                let mut chan = StringBuilder::new();
                let mut sub = BooleanBuilder::new();
                let mut status = StringBuilder::new();
                let mut disc = Decimal128Builder::new()
                    .with_precision_and_scale(18, 2)
                    .unwrap_or_default();
                let mut email = StringBuilder::new();
                for o in &self.rows {
                    id.append_value(&o.order_id);
                    cust.append_value(customer_key(o.customer_id));
                    ts.append_value(o.ts);
                    amount.append_value(o.amount_cents);
                    cur.append_value(o.currency);
                    region.append_value(o.region);
                    country.append_value(o.country);
                    cat.append_value(o.category);
                    chan.append_value(o.channel);
                    sub.append_value(o.subscription);
                    status.append_value(o.status);
                    disc.append_value(o.discount_cents);
                    email.append_value(&o.email);
                }
                out.batch(vec![
                    Arc::new(id.finish()),
                    Arc::new(cust.finish()),
                    Arc::new(ts.finish()),
                    Arc::new(amount.finish()),
                    Arc::new(cur.finish()),
                    Arc::new(region.finish()),
                    Arc::new(country.finish()),
                    Arc::new(cat.finish()),
                    Arc::new(chan.finish()),
                    Arc::new(sub.finish()),
                    Arc::new(status.finish()),
                    Arc::new(disc.finish()),
                    Arc::new(email.finish()),
                ])?;
            }
        }
        self.rows.clear();
        Ok(())
    }
}

pub(super) fn write_fx(
    fx: &FxTable,
    path: &Path,
    format: InputFormat,
    last_day: i32,
) -> Result<(), DemoError> {
    let mut out = Out::create(
        path.to_path_buf(),
        TableKind::FxRates.input_schema(),
        format,
    )?;
    let mut date = Date32Builder::new();
    let mut cur = StringBuilder::new();
    let mut rate = Float64Builder::new();
    for day in fx.first_day..=last_day {
        for (i, c) in CURRENCIES.iter().enumerate() {
            let r = fx.rate(i, day);
            match format {
                InputFormat::Csv => {
                    let d = days_to_date(day).map(|d| d.to_string()).unwrap_or_default();
                    out.row(&[&d, c.0, &format!("{r}")])?;
                }
                InputFormat::Parquet => {
                    date.append_value(day);
                    cur.append_value(c.0);
                    rate.append_value(r);
                }
            }
        }
    }
    out.batch(vec![
        Arc::new(date.finish()),
        Arc::new(cur.finish()),
        Arc::new(rate.finish()),
    ])?;
    out.close()
}

pub(super) fn write_customers(
    customers: &[Customer],
    path: &Path,
    format: InputFormat,
) -> Result<(), DemoError> {
    let mut out = Out::create(
        path.to_path_buf(),
        TableKind::Customers.input_schema(),
        format,
    )?;
    for chunk in customers.chunks(65_536) {
        match format {
            InputFormat::Csv => {
                for c in chunk {
                    let signup = c
                        .signup
                        .map(|s| format_ts(s, c.country.offset_min))
                        .unwrap_or_default();
                    let referred = c.referred_by.map(customer_key).unwrap_or_default();
                    out.row(&[
                        &customer_key(c.id),
                        &signup,
                        c.country.code,
                        c.country.region,
                        c.tier,
                        if c.consent { "true" } else { "false" },
                        &referred,
                        &c.email,
                    ])?;
                }
            }
            InputFormat::Parquet => {
                let mut id = StringBuilder::new();
                let mut signup = TimestampMicrosecondBuilder::new().with_timezone("UTC");
                let mut country = StringBuilder::new();
                let mut region = StringBuilder::new();
                let mut tier = StringBuilder::new();
                let mut consent = BooleanBuilder::new();
                let mut referred = StringBuilder::new();
                let mut email = StringBuilder::new();
                for c in chunk {
                    id.append_value(customer_key(c.id));
                    signup.append_option(c.signup);
                    country.append_value(c.country.code);
                    region.append_value(c.country.region);
                    tier.append_value(c.tier);
                    consent.append_value(c.consent);
                    referred.append_option(c.referred_by.map(customer_key));
                    email.append_value(&c.email);
                }
                out.batch(vec![
                    Arc::new(id.finish()),
                    Arc::new(signup.finish()),
                    Arc::new(country.finish()),
                    Arc::new(region.finish()),
                    Arc::new(tier.finish()),
                    Arc::new(consent.finish()),
                    Arc::new(referred.finish()),
                    Arc::new(email.finish()),
                ])?;
            }
        }
    }
    out.close()
}
