//! Where queries run: threads of their own, apart from the ones that speak the protocol.
//!
//! A query is CPU work that yields only between batches, and some operators loop for minutes
//! without yielding (a cross join whose filter rejects every row; constant folding of a huge
//! value). On the protocol's own two workers, two such queries froze the server: no statement
//! timeout fired, no cancel request was read, `SELECT 1` on another connection got no answer.
//! Planning and execution therefore run on a separate pool with more threads than cores, and
//! the connection's task only awaits the batches they send. The protocol side stays
//! responsive: the timeout answers 57014 on time and drops the query's channel, and the query
//! ends at its next yield. A loop that never yields still burns its thread until it ends; the
//! operating system shares the cores between it and the others meanwhile.

use std::sync::LazyLock;

use datafusion::arrow::array::RecordBatch;
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::logical_expr::LogicalPlan;
use datafusion::prelude::SessionContext;
use futures::StreamExt;
use pgwire::error::PgWireResult;
use tokio::sync::{mpsc, oneshot};

use super::errors;

/// Threads for queries: four per core (at least eight), so that a few that never yield leave
/// others to be scheduled.
static QUERY_THREADS: LazyLock<Option<tokio::runtime::Runtime>> = LazyLock::new(|| {
    let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads((4 * cores).max(8))
        .thread_name("rebuy-query")
        .thread_stack_size(crate::limits::STACK_BYTES)
        .enable_all()
        .build()
        .map_err(|e| tracing::warn!("no separate query threads ({e}): queries share the server's"))
        .ok()
});

/// Plans and runs `plan` on the query threads. The first receiver gets the result's schema
/// (or the planning error); the second its batches. Dropping either ends the query at its
/// next yield.
pub fn run_on_query_threads(
    ctx: SessionContext,
    plan: LogicalPlan,
) -> (
    oneshot::Receiver<PgWireResult<SchemaRef>>,
    mpsc::Receiver<datafusion::error::Result<RecordBatch>>,
) {
    let (schema_tx, schema_rx) = oneshot::channel();
    let (tx, rx) = mpsc::channel(2);
    let work = async move {
        let planned = async {
            let df = ctx.execute_logical_plan(plan).await?;
            df.execute_stream().await
        }
        .await;
        let mut stream = match planned {
            Ok(s) => s,
            Err(e) => {
                let _ = schema_tx.send(Err(errors::from_datafusion(e)));
                return;
            }
        };
        if schema_tx.send(Ok(stream.schema())).is_err() {
            return;
        }
        loop {
            tokio::select! {
                _ = tx.closed() => return,
                next = stream.next() => match next {
                    None => return,
                    Some(item) => {
                        let failed = item.is_err();
                        if tx.send(item).await.is_err() || failed {
                            return;
                        }
                    }
                },
            }
        }
    };
    match QUERY_THREADS.as_ref() {
        Some(rt) => {
            rt.spawn(work);
        }
        None => {
            tokio::spawn(work);
        }
    }
    (schema_rx, rx)
}
