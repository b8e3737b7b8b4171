//! `rebuy demo`: a realistic, deterministic order history of a cross-border store.
//!
//! The generator writes ordinary input files (Parquet by default, or CSV) and then loads them
//! with [`crate::ingest::ingest`], the same path real data takes. The files can be kept
//! (`--inputs DIR`) so that other engines can be benchmarked on exactly the same data.
//!
//! The customer process follows the BG/NBD story (Fader, Hardie & Lee 2005): while a customer
//! is active, purchases arrive as a Poisson process whose rate is drawn from a gamma
//! distribution (mean rate = 1 / the category's repurchase cycle); after each purchase the
//! customer drops out with a probability drawn from a beta distribution. Most customers
//! therefore buy once and a heavy-tailed minority buy often. On top of that: subscriptions
//! renewing every 14 or 28 days, Nov/Dec peaks (by thinning the arrival process), about 3%
//! refunded and 1% cancelled orders, occasional second orders on the same day, discounts,
//! daily exchange rates as random walks around realistic levels, and customers with signup
//! dates, member tiers, marketing consent and referrals; and the daily marketing spend of the
//! paid channels, sized by the customers each one brought in (`spend`).
//!
//! Same seed and arguments, same files, byte for byte in content.

use std::path::{Path, PathBuf};

use chrono::{Datelike, NaiveDate};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rand_distr::{Beta, Distribution, Exp, Gamma};

use crate::ingest::parse::{date_to_days, days_to_date};
use crate::storage::TableKind;

mod spend;
mod write;

use write::{OrderBuffer, Out, write_customers, write_fx};

/// Options of one generation run.
#[derive(Debug, Clone)]
pub struct DemoOptions {
    pub orders: u64,
    pub seed: u64,
    pub start: NaiveDate,
    pub end: NaiveDate,
    pub format: InputFormat,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum InputFormat {
    Parquet,
    Csv,
}

impl Default for DemoOptions {
    fn default() -> Self {
        Self {
            orders: 200_000,
            seed: 42,
            start: NaiveDate::from_ymd_opt(2023, 1, 1).unwrap_or_default(),
            end: NaiveDate::from_ymd_opt(2026, 6, 30).unwrap_or_default(),
            format: InputFormat::Parquet,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum DemoError {
    #[error("{}: {source}", .path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("writing {}: {message}", .path.display())]
    Write { path: PathBuf, message: String },
    #[error("invalid demo options: {0}")]
    Options(String),
}

/// The files one run produced.
#[derive(Debug, Clone)]
pub struct DemoFiles {
    pub fx_rates: PathBuf,
    pub customers: PathBuf,
    pub orders: PathBuf,
    pub marketing_spend: PathBuf,
    pub orders_written: u64,
    pub customers_written: u64,
}

struct Country {
    code: &'static str,
    region: &'static str,
    currency: &'static str,
    /// Standard-time UTC offset in minutes (orders carry it in text inputs).
    offset_min: i32,
    weight: f64,
}

const COUNTRIES: &[Country] = &[
    Country {
        code: "US",
        region: "NA",
        currency: "USD",
        offset_min: -300,
        weight: 28.0,
    },
    Country {
        code: "CA",
        region: "NA",
        currency: "CAD",
        offset_min: -300,
        weight: 7.0,
    },
    Country {
        code: "GB",
        region: "EU",
        currency: "GBP",
        offset_min: 0,
        weight: 8.0,
    },
    Country {
        code: "DE",
        region: "EU",
        currency: "EUR",
        offset_min: 60,
        weight: 7.0,
    },
    Country {
        code: "FR",
        region: "EU",
        currency: "EUR",
        offset_min: 60,
        weight: 5.0,
    },
    Country {
        code: "NL",
        region: "EU",
        currency: "EUR",
        offset_min: 60,
        weight: 3.0,
    },
    Country {
        code: "ES",
        region: "EU",
        currency: "EUR",
        offset_min: 60,
        weight: 3.0,
    },
    Country {
        code: "SE",
        region: "EU",
        currency: "SEK",
        offset_min: 60,
        weight: 2.0,
    },
    Country {
        code: "PL",
        region: "EU",
        currency: "PLN",
        offset_min: 60,
        weight: 2.0,
    },
    Country {
        code: "SG",
        region: "SEA",
        currency: "SGD",
        offset_min: 480,
        weight: 4.0,
    },
    Country {
        code: "MY",
        region: "SEA",
        currency: "MYR",
        offset_min: 480,
        weight: 3.0,
    },
    Country {
        code: "TH",
        region: "SEA",
        currency: "THB",
        offset_min: 420,
        weight: 3.0,
    },
    Country {
        code: "ID",
        region: "SEA",
        currency: "IDR",
        offset_min: 420,
        weight: 3.0,
    },
    Country {
        code: "PH",
        region: "SEA",
        currency: "PHP",
        offset_min: 480,
        weight: 2.0,
    },
    Country {
        code: "BR",
        region: "LATAM",
        currency: "BRL",
        offset_min: -180,
        weight: 6.0,
    },
    Country {
        code: "MX",
        region: "LATAM",
        currency: "MXN",
        offset_min: -360,
        weight: 4.0,
    },
    Country {
        code: "CL",
        region: "LATAM",
        currency: "CLP",
        offset_min: -240,
        weight: 1.5,
    },
    Country {
        code: "CO",
        region: "LATAM",
        currency: "COP",
        offset_min: -300,
        weight: 1.5,
    },
    Country {
        code: "AE",
        region: "MEA",
        currency: "AED",
        offset_min: 240,
        weight: 3.0,
    },
    Country {
        code: "SA",
        region: "MEA",
        currency: "SAR",
        offset_min: 180,
        weight: 2.5,
    },
    Country {
        code: "ZA",
        region: "MEA",
        currency: "ZAR",
        offset_min: 120,
        weight: 2.0,
    },
];

/// (currency, USD per unit at the start, daily volatility, decimals used in prices)
const CURRENCIES: &[(&str, f64, f64, u32)] = &[
    ("USD", 1.0, 0.0, 2),
    ("CAD", 0.74, 0.003, 2),
    ("GBP", 1.27, 0.004, 2),
    ("EUR", 1.08, 0.003, 2),
    ("SEK", 0.095, 0.005, 2),
    ("PLN", 0.25, 0.005, 2),
    ("SGD", 0.74, 0.002, 2),
    ("MYR", 0.21, 0.003, 2),
    ("THB", 0.028, 0.004, 2),
    ("IDR", 0.000063, 0.004, 0),
    ("PHP", 0.018, 0.003, 2),
    ("BRL", 0.19, 0.008, 2),
    ("MXN", 0.055, 0.007, 2),
    ("CLP", 0.0011, 0.006, 0),
    ("COP", 0.00025, 0.007, 0),
    ("AED", 0.2723, 0.0, 2),
    ("SAR", 0.2667, 0.0, 2),
    ("ZAR", 0.054, 0.008, 2),
];

/// (category, repurchase cycle in days, mean order value in USD, share of customers)
const CATEGORIES: &[(&str, f64, f64, f64)] = &[
    ("fmcg", 30.0, 35.0, 0.30),
    ("beauty", 60.0, 55.0, 0.25),
    ("apparel", 90.0, 80.0, 0.25),
    ("home", 150.0, 120.0, 0.10),
    ("baby", 25.0, 45.0, 0.10),
];

const FIRST_CHANNELS: &[(&str, f64)] = &[
    ("paid", 0.35),
    ("organic", 0.25),
    ("social", 0.15),
    ("direct", 0.12),
    ("email", 0.05),
    ("sms", 0.02),
    ("referral", 0.06),
];
const REPEAT_CHANNELS: &[(&str, f64)] = &[
    ("email", 0.30),
    ("direct", 0.25),
    ("organic", 0.18),
    ("sms", 0.10),
    ("paid", 0.10),
    ("social", 0.07),
];

fn pick<'a, T>(rng: &mut ChaCha8Rng, items: &'a [T], weight: impl Fn(&T) -> f64) -> &'a T {
    let total: f64 = items.iter().map(&weight).sum();
    let mut x = rng.random::<f64>() * total;
    for it in items {
        x -= weight(it);
        if x <= 0.0 {
            return it;
        }
    }
    &items[items.len() - 1]
}

/// Nov/Dec peaks (Singles' Day, Black Friday, holidays) and a quieter January.
fn season(day: i32) -> f64 {
    match days_to_date(day).map(|d| d.month()) {
        Some(11) => 1.6,
        Some(12) => 1.4,
        Some(1) => 0.85,
        _ => 1.0,
    }
}

const MAX_SEASON: f64 = 1.6;
const MICROS_PER_DAY: i64 = 86_400_000_000;

/// Daily rates: a deterministic random walk per currency, USD fixed at 1.
struct FxTable {
    first_day: i32,
    /// rates[currency index][day - first_day]
    rates: Vec<Vec<f64>>,
}

impl FxTable {
    fn generate(rng: &mut ChaCha8Rng, first_day: i32, last_day: i32) -> FxTable {
        let days = (last_day - first_day + 1).max(1) as usize;
        let rates = CURRENCIES
            .iter()
            .map(|(_, base, vol, _)| {
                let mut v = Vec::with_capacity(days);
                let mut log = 0.0f64;
                for _ in 0..days {
                    v.push(base * log.exp());
                    let shock: f64 = rng.random::<f64>() * 2.0 - 1.0;
                    // Mean-reverting so a long history stays near realistic levels.
                    log = log * 0.995 + shock * vol * 1.7;
                }
                v
            })
            .collect();
        FxTable { first_day, rates }
    }

    fn rate(&self, currency: usize, day: i32) -> f64 {
        let d = (day - self.first_day).clamp(0, self.rates[currency].len() as i32 - 1);
        self.rates[currency][d as usize]
    }
}

fn currency_index(code: &str) -> usize {
    CURRENCIES.iter().position(|c| c.0 == code).unwrap_or(0)
}

fn sha_hex(text: &str) -> String {
    hex::encode(ring::digest::digest(&ring::digest::SHA256, text.as_bytes()))
}

struct Order {
    order_id: String,
    customer_id: usize,
    ts: i64,
    offset_min: i32,
    amount_cents: i128,
    currency: &'static str,
    region: &'static str,
    country: &'static str,
    category: &'static str,
    channel: &'static str,
    subscription: bool,
    status: &'static str,
    discount_cents: i128,
    email: String,
}

struct Customer {
    id: usize,
    signup: Option<i64>,
    country: &'static Country,
    tier: &'static str,
    consent: bool,
    referred_by: Option<usize>,
    email: String,
}

fn customer_key(i: usize) -> String {
    format!("c-{i:07}")
}

/// Generates the four input files into `dir`.
pub fn generate(options: &DemoOptions, dir: &Path) -> Result<DemoFiles, DemoError> {
    if options.end <= options.start {
        return Err(DemoError::Options("--end must be after --start".into()));
    }
    std::fs::create_dir_all(dir).map_err(|source| DemoError::Io {
        path: dir.to_path_buf(),
        source,
    })?;
    let ext = match options.format {
        InputFormat::Parquet => "parquet",
        InputFormat::Csv => "csv",
    };
    let mut rng = ChaCha8Rng::seed_from_u64(options.seed);
    let first_day = date_to_days(options.start);
    let last_day = date_to_days(options.end);
    let span = (last_day - first_day) as f64;

    // Exchange rates for every day of the history (and the week before it).
    let fx = FxTable::generate(&mut rng, first_day - 7, last_day);
    let fx_path = dir.join(format!("fx_rates.{ext}"));
    write_fx(&fx, &fx_path, options.format, last_day)?;

    let orders_path = dir.join(format!("orders.{ext}"));
    let mut orders_out = Out::create(
        orders_path.clone(),
        TableKind::Orders.input_schema(),
        options.format,
    )?;
    let mut buffer = OrderBuffer {
        rows: Vec::with_capacity(65_536),
    };
    let mut customers: Vec<Customer> = Vec::new();
    let mut acquired = spend::Acquisitions::default();

    let dropout = Beta::new(1.2, 1.0).map_err(|e| DemoError::Options(e.to_string()))?;
    let rate_shape = Gamma::new(1.0, 1.0).map_err(|e| DemoError::Options(e.to_string()))?;
    let spend = Gamma::new(3.0, 1.0 / 3.0).map_err(|e| DemoError::Options(e.to_string()))?;
    let order_noise = Gamma::new(8.0, 1.0 / 8.0).map_err(|e| DemoError::Options(e.to_string()))?;
    let mut written = 0u64;
    let mut next_order = 1u64;

    while written < options.orders {
        let cid = customers.len() + 1;
        let country = pick(&mut rng, COUNTRIES, |c| c.weight);
        let &(category, cycle, aov, _) = pick(&mut rng, CATEGORIES, |c| c.3);
        let cur_idx = currency_index(country.currency);
        let decimals = CURRENCIES[cur_idx].3;

        // First purchase: the store grows over time (weight 1 -> 2), with seasonal peaks.
        let t0 = loop {
            let u: f64 = rng.random();
            let day = first_day + (u * span) as i32;
            let weight = (1.0 + u) * season(day) / (2.0 * MAX_SEASON);
            if rng.random::<f64>() < weight {
                break day as f64 + rng.random::<f64>();
            }
        };
        let lambda = rate_shape.sample(&mut rng) / cycle;
        let p_drop: f64 = dropout.sample(&mut rng);
        let mean_spend = aov * spend.sample(&mut rng);
        let subscription =
            matches!(category, "fmcg" | "baby" | "beauty") && rng.random::<f64>() < 0.06;
        let sub_cycle = if rng.random::<bool>() { 14.0 } else { 28.0 };
        let email_plain = format!("customer{cid}@example.com");
        let email = sha_hex(&email_plain);
        let referred_by =
            (cid > 10 && rng.random::<f64>() < 0.08).then(|| rng.random_range(1..cid));

        let mut days: Vec<f64> = vec![t0];
        let mut t = t0;
        if subscription {
            // Renews every cycle (a day of jitter) until cancelled (about 8 renewals on average).
            while rng.random::<f64>() > 0.12 {
                t += sub_cycle + rng.random_range(-1.0..=1.0);
                if t > last_day as f64 + 1.0 {
                    break;
                }
                days.push(t);
            }
        } else if lambda > 0.0 {
            let gap =
                Exp::new(lambda * MAX_SEASON).map_err(|e| DemoError::Options(e.to_string()))?;
            'active: loop {
                if rng.random::<f64>() < p_drop {
                    break;
                }
                // Thinning: candidate arrivals at the peak rate, kept with the season's share.
                loop {
                    t += gap.sample(&mut rng);
                    if t > last_day as f64 + 1.0 {
                        break 'active;
                    }
                    if rng.random::<f64>() < season(t as i32) / MAX_SEASON {
                        break;
                    }
                }
                days.push(t);
            }
        }

        let mut count = 0u32;
        for (i, &d) in days.iter().enumerate() {
            let repeats = if rng.random::<f64>() < 0.02 { 2 } else { 1 };
            for r in 0..repeats {
                if written >= options.orders {
                    break;
                }
                let mut day_pos = d;
                if r == 1 {
                    day_pos = d.floor() + (d.fract() + 0.3).min(0.99);
                }
                let ts = (day_pos * MICROS_PER_DAY as f64) as i64;
                let day = day_pos.floor() as i32;
                let usd = mean_spend * order_noise.sample(&mut rng);
                let local = usd / fx.rate(cur_idx, day);
                let scale = 10f64.powi(decimals as i32);
                let amount_cents = ((local * scale).round() / scale * 100.0).round() as i128;
                let discount_cents = if rng.random::<f64>() < 0.25 {
                    let pct = rng.random_range(0.05..0.20);
                    ((amount_cents as f64 * pct / scale * 100.0).round() / (100.0 / scale)) as i128
                } else {
                    0
                };
                let roll: f64 = rng.random();
                let status = if roll < 0.03 {
                    "refunded"
                } else if roll < 0.04 {
                    "cancelled"
                } else {
                    "completed"
                };
                let channel = if i == 0 && r == 0 {
                    let first = if referred_by.is_some() {
                        "referral"
                    } else {
                        pick(&mut rng, FIRST_CHANNELS, |c| c.1).0
                    };
                    acquired.add(day, first, country.region);
                    first
                } else if subscription {
                    "direct"
                } else {
                    pick(&mut rng, REPEAT_CHANNELS, |c| c.1).0
                };
                buffer.rows.push(Order {
                    order_id: format!("o-{next_order:09}"),
                    customer_id: cid,
                    ts,
                    offset_min: country.offset_min,
                    amount_cents: amount_cents.max(1),
                    currency: country.currency,
                    region: country.region,
                    country: country.code,
                    category,
                    channel,
                    subscription: subscription && i > 0,
                    status,
                    discount_cents,
                    email: email.clone(),
                });
                next_order += 1;
                written += 1;
                count += 1;
                if buffer.rows.len() >= 65_536 {
                    buffer.flush(&mut orders_out)?;
                }
            }
        }

        let signup = if rng.random::<f64>() < 0.9 {
            let before = rng.random::<f64>() * rng.random::<f64>() * 60.0;
            Some(((t0 - before) * MICROS_PER_DAY as f64) as i64)
        } else {
            None
        };
        let tier = match count {
            c if c >= 12 => "diamond",
            c if c >= 6 => "gold",
            c if c >= 3 => "silver",
            _ => "basic",
        };
        customers.push(Customer {
            id: cid,
            signup,
            country,
            tier,
            consent: rng.random::<f64>() < 0.65,
            referred_by,
            email,
        });
    }
    buffer.flush(&mut orders_out)?;
    orders_out.close()?;

    // Some people sign up and never buy; they belong in customers too.
    let buyers = customers.len();
    let extra = buyers / 12;
    for k in 0..extra {
        let cid = buyers + k + 1;
        let country = pick(&mut rng, COUNTRIES, |c| c.weight);
        let day = first_day as f64 + rng.random::<f64>() * span;
        customers.push(Customer {
            id: cid,
            signup: Some((day * MICROS_PER_DAY as f64) as i64),
            country,
            tier: "basic",
            consent: rng.random::<f64>() < 0.5,
            referred_by: None,
            email: sha_hex(&format!("customer{cid}@example.com")),
        });
    }
    let customers_path = dir.join(format!("customers.{ext}"));
    write_customers(&customers, &customers_path, options.format)?;
    let spend_path = dir.join(format!("marketing_spend.{ext}"));
    spend::write(
        &acquired,
        &fx,
        options.seed,
        (first_day, last_day),
        &spend_path,
        options.format,
    )?;
    Ok(DemoFiles {
        fx_rates: fx_path,
        customers: customers_path,
        orders: orders_path,
        marketing_spend: spend_path,
        orders_written: written,
        customers_written: customers.len() as u64,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_seed_same_files() {
        let a = tempfile::tempdir().unwrap();
        let b = tempfile::tempdir().unwrap();
        let opts = DemoOptions {
            orders: 3000,
            format: InputFormat::Csv,
            ..Default::default()
        };
        let fa = generate(&opts, a.path()).unwrap();
        let fb = generate(&opts, b.path()).unwrap();
        assert_eq!(
            std::fs::read(&fa.orders).unwrap(),
            std::fs::read(&fb.orders).unwrap()
        );
        assert_eq!(
            std::fs::read(&fa.customers).unwrap(),
            std::fs::read(&fb.customers).unwrap()
        );
        assert_eq!(fa.orders_written, 3000);
    }

    #[test]
    fn most_customers_buy_once_and_some_buy_often() {
        let dir = tempfile::tempdir().unwrap();
        let opts = DemoOptions {
            orders: 20_000,
            format: InputFormat::Csv,
            ..Default::default()
        };
        let files = generate(&opts, dir.path()).unwrap();
        let mut per_customer = std::collections::HashMap::<String, u32>::new();
        let mut statuses = std::collections::HashMap::<String, u32>::new();
        let mut reader = csv::Reader::from_path(&files.orders).unwrap();
        for rec in reader.records() {
            let rec = rec.unwrap();
            *per_customer.entry(rec[1].to_string()).or_default() += 1;
            *statuses.entry(rec[10].to_string()).or_default() += 1;
        }
        let n = per_customer.len() as f64;
        let once = per_customer.values().filter(|c| **c == 1).count() as f64;
        let many = per_customer.values().filter(|c| **c >= 10).count();
        assert!(once / n > 0.5, "one-time buyers {once}/{n}");
        assert!(many > 0);
        let refunded = f64::from(statuses["refunded"]) / 20_000.0;
        assert!((0.02..0.04).contains(&refunded), "{refunded}");
    }
}
