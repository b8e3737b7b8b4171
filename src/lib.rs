//! # rebuy
//!
//! An embedded analytical warehouse for the repurchase analytics of cross-border stores.
//!
//! Data flow:
//! - [`ingest`] reads CSV, Parquet or NDJSON order histories, validates every row against the
//!   data model (`../shared/DATA_MODEL.md`), and commits them to Delta Lake tables managed by
//!   [`storage`] (partitioned Parquet plus an atomic transaction log).
//! - [`session`] registers those tables with Apache DataFusion; `rebuy query` runs SQL on it.
//! - [`server`] serves the same session over the PostgreSQL wire protocol (`rebuy serve`).
//! - [`demo`] generates a realistic store's history and loads it through [`ingest`].
//!
//! The command line lives in [`cli`]; `main.rs` only parses, runs and maps errors to exit codes.

pub mod cli;
pub mod config;
pub mod demo;
pub mod export;
pub mod functions;
pub mod ingest;
pub mod limits;
pub mod ltv;
pub mod optimize;
pub mod server;
pub mod session;
pub mod sql;
pub mod storage;
pub mod summary;
pub mod views;
