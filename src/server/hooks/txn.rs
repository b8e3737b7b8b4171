//! Transaction blocks: `BEGIN` opens one; at `COMMIT` or `ROLLBACK` the `SET LOCAL` values are
//! undone and the cursors declared without `WITH HOLD` close. (rebuy's tables change only by
//! ingest, so a block has nothing of its own to commit.)

use pgwire::error::PgWireResult;

use crate::server::conn::ConnState;
use crate::server::errors::{self, pg_error};

pub fn begin(conn: &ConnState) {
    if let Ok(mut t) = conn.txn.lock() {
        t.open = true;
    }
}

pub fn in_transaction(conn: &ConnState) -> bool {
    conn.txn.lock().map(|t| t.open).unwrap_or(false)
}

/// Before a `SET LOCAL`: remembers the setting's value to restore at the end of the
/// transaction; false outside a transaction block.
pub async fn remember(conn: &ConnState, name: &str) -> PgWireResult<bool> {
    let ctx = conn.session().await?;
    let current = crate::server::pgcompat::setting_value(&ctx, &conn.settings(), name);
    let mut txn = conn
        .txn
        .lock()
        .map_err(|_| pg_error(errors::INTERNAL_ERROR, "transaction lock poisoned"))?;
    if !txn.open {
        return Ok(false);
    }
    if !txn
        .restore
        .iter()
        .any(|(n, _)| n.eq_ignore_ascii_case(name))
    {
        txn.restore.push((name.to_string(), current));
    }
    Ok(true)
}

/// COMMIT or ROLLBACK: `SET LOCAL` values are undone, cursors without HOLD close.
pub async fn end(conn: &ConnState) {
    let restore = match conn.txn.lock() {
        Ok(mut t) => {
            t.open = false;
            std::mem::take(&mut t.restore)
        }
        Err(_) => vec![],
    };
    for (name, value) in restore {
        let lower = name.to_ascii_lowercase();
        if lower.starts_with("rebuy.") || lower.starts_with("datafusion.") {
            let _ =
                super::set::set_engine_option(conn, &name, value.as_deref().unwrap_or("default"))
                    .await;
        } else if let Ok(mut settings) = conn.settings.lock() {
            match value {
                Some(v) => {
                    settings.set(&name, v);
                }
                None => {
                    settings.reset(&name);
                }
            }
        }
    }
    if let Ok(mut cursors) = conn.cursors.lock() {
        cursors.end_transaction();
    }
}
