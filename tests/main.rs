//! Integration tests: the `rebuy` binary run as a user runs it, on temporary data directories.
//! One test binary (DataFusion links once); one module per surface.

mod common;

mod cli;
mod crash;
mod experiment;
mod export;
mod fidelity;
mod ingest;
mod ingest_spend;
mod object_store;
mod security;
mod server;
mod server_sessions;
mod summary;
