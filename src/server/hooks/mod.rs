//! Statements answered by the server itself rather than planned by DataFusion, one file per
//! verb. Each takes the connection it runs for; the dispatcher (`super::dispatch`) calls them.

pub mod copy;
pub mod cursor;
pub mod set;
pub mod txn;
