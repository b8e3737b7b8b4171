//! Marketing spend for the demo store: what the paid channels cost per day and region, sized
//! from the customers each channel actually brought in that day, so that CAC and LTV/CAC come
//! out plausible (paid search/ads about 30 USD per new customer, social 22, referral rewards 12,
//! email and sms a few dollars) and noisy as real invoices are.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use datafusion::arrow::array::{Date32Builder, Decimal128Builder, StringBuilder};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use super::write::{Out, cents_text};
use super::{DemoError, FxTable, InputFormat, currency_index};
use crate::ingest::parse::days_to_date;
use crate::storage::TableKind;

/// (channel, target USD cost per acquired customer). Organic and direct cost nothing.
const PAID: &[(&str, f64)] = &[
    ("paid", 30.0),
    ("social", 22.0),
    ("referral", 12.0),
    ("email", 4.0),
    ("sms", 3.0),
];

/// Where regional spend is invoiced (each region in one currency, as ad accounts are).
const REGION_CURRENCY: &[(&str, &str)] = &[
    ("NA", "USD"),
    ("EU", "EUR"),
    ("SEA", "SGD"),
    ("LATAM", "BRL"),
    ("MEA", "AED"),
];

/// New customers per (day, channel, region), counted as the orders are generated.
#[derive(Default)]
pub struct Acquisitions {
    by_day: BTreeMap<(i32, &'static str, &'static str), u32>,
}

impl Acquisitions {
    pub fn add(&mut self, day: i32, channel: &'static str, region: &'static str) {
        *self.by_day.entry((day, channel, region)).or_default() += 1;
    }
}

/// Writes one row per day × paid channel × region (in the region's currency), plus a
/// brand campaign of the paid channel that no region owns (region NULL, in USD).
pub fn write(
    acquired: &Acquisitions,
    fx: &FxTable,
    seed: u64,
    (first_day, last_day): (i32, i32),
    path: &Path,
    format: InputFormat,
) -> Result<u64, DemoError> {
    // Its own stream, so the orders and customers of a seed stay what they were.
    let mut rng = ChaCha8Rng::seed_from_u64(seed ^ 0x5eed_5be4d);
    let mut out = Out::create(
        path.to_path_buf(),
        TableKind::MarketingSpend.input_schema(),
        format,
    )?;
    let mut date = Date32Builder::new();
    let mut channel = StringBuilder::new();
    let mut region = StringBuilder::new();
    let mut amount = Decimal128Builder::new()
        .with_precision_and_scale(18, 2)
        .map_err(|e| DemoError::Write {
            path: path.to_path_buf(),
            message: e.to_string(),
        })?;
    let mut currency = StringBuilder::new();
    let mut rows = 0u64;
    let mut push = |out: &mut Out,
                    day: i32,
                    ch: &str,
                    reg: Option<&str>,
                    cents: i128,
                    cur: &str|
     -> Result<(), DemoError> {
        rows += 1;
        match format {
            InputFormat::Csv => {
                let d = days_to_date(day).map(|d| d.to_string()).unwrap_or_default();
                out.row(&[&d, ch, reg.unwrap_or(""), &cents_text(cents), cur])
            }
            InputFormat::Parquet => {
                date.append_value(day);
                channel.append_value(ch);
                region.append_option(reg);
                amount.append_value(cents);
                currency.append_value(cur);
                Ok(())
            }
        }
    };
    let days = f64::from((last_day - first_day + 1).max(1));
    let mut daily_mean: BTreeMap<(&str, &str), f64> = BTreeMap::new();
    for (&(_, ch, reg), &n) in &acquired.by_day {
        *daily_mean.entry((ch, reg)).or_default() += f64::from(n) / days;
    }
    // Amounts under a dollar are not invoiced on their day but carried to the next, so a small
    // store's history keeps its spend (and its CAC) without thousands of cent-sized rows.
    let mut carried: BTreeMap<(&str, &str), f64> = BTreeMap::new();
    let mut carried_brand = 0.0;
    for day in first_day..=last_day {
        let mut paid_usd = 0.0;
        for &(ch, cac) in PAID {
            for &(reg, cur) in REGION_CURRENCY {
                let n = acquired.by_day.get(&(day, ch, reg)).copied().unwrap_or(0);
                let mean = daily_mean.get(&(ch, reg)).copied().unwrap_or(0.0);
                // Campaigns run steadily while conversions come and go: half of a day's spend
                // follows the channel's average, half that day's customers; invoices vary by
                // ±35%. Over the history the spend per customer stays near the channel's CAC.
                let carry = carried.entry((ch, reg)).or_default();
                *carry += (0.5 * f64::from(n) + 0.5 * mean) * cac * rng.random_range(0.65..1.35);
                if *carry < 1.0 {
                    continue;
                }
                let usd = std::mem::take(carry);
                if ch == "paid" {
                    paid_usd += usd;
                }
                let local = usd / fx.rate(currency_index(cur), day);
                let cents = (local * 100.0).round() as i128;
                push(&mut out, day, ch, Some(reg), cents, cur)?;
            }
        }
        // Brand campaigns: about a tenth on top of the regional paid spend.
        carried_brand += paid_usd * rng.random_range(0.05..0.15);
        if carried_brand >= 1.0 {
            let brand = std::mem::take(&mut carried_brand);
            push(
                &mut out,
                day,
                "paid",
                None,
                (brand * 100.0).round() as i128,
                "USD",
            )?;
        }
    }
    if format == InputFormat::Parquet {
        out.batch(vec![
            Arc::new(date.finish()),
            Arc::new(channel.finish()),
            Arc::new(region.finish()),
            Arc::new(amount.finish()),
            Arc::new(currency.finish()),
        ])?;
    }
    out.close()?;
    Ok(rows)
}
