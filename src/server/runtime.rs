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
use datafusion::execution::SendableRecordBatchStream;
use datafusion::logical_expr::LogicalPlan;
use futures::{FutureExt, StreamExt};
use pgwire::error::PgWireResult;
use tokio::sync::{mpsc, oneshot};

use super::conn::Session;
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

/// What a query sends first: its schema, the batches it had ready, and whether that was all.
/// Each hand-over between threads is a wake-up that costs about as much as planning a small
/// query, so a small result comes in this one message.
pub struct Start {
    pub schema: SchemaRef,
    pub first: Vec<datafusion::error::Result<RecordBatch>>,
    pub done: bool,
}

/// The most a [`Start`] carries before the rest streams: enough for any small result, little
/// next to a query's memory share.
const START_BYTES: usize = 1 << 20;

/// Plans and runs `plan` on the query threads. The first receiver gets the [`Start`] (or the
/// planning error) when the stream is open, or with `eager` when its first batch is there;
/// the second the batches after those. Dropping either ends the query at its next yield.
pub fn run_on_query_threads(
    session: Session,
    plan: LogicalPlan,
    eager: bool,
) -> (
    oneshot::Receiver<PgWireResult<Start>>,
    mpsc::Receiver<datafusion::error::Result<RecordBatch>>,
) {
    let (mut start_tx, start_rx) = oneshot::channel();
    let (tx, rx) = mpsc::channel(2);
    let work = async move {
        let mut stream = match open(&session, plan).await {
            Ok(s) => s,
            Err(e) => {
                let _ = start_tx.send(Err(errors::from_datafusion(e)));
                return;
            }
        };
        let mut start = Start {
            schema: stream.schema(),
            first: Vec::new(),
            done: false,
        };
        if eager {
            let mut bytes = 0;
            // A timeout or cancel drops the receiver: stop then, not when the batch is done.
            let mut next = tokio::select! {
                _ = start_tx.closed() => return,
                item = stream.next() => Some(item),
            };
            // After the first batch, only what is ready without waiting.
            while let Some(item) = next {
                match item {
                    None => {
                        start.done = true;
                        break;
                    }
                    Some(item) => {
                        start.done = item.is_err();
                        bytes += item.as_ref().map_or(0, |b| b.get_array_memory_size());
                        start.first.push(item);
                        if start.done || bytes >= START_BYTES {
                            break;
                        }
                    }
                }
                if start_tx.is_closed() {
                    return;
                }
                next = stream.next().now_or_never();
            }
        }
        let done = start.done;
        if start_tx.send(Ok(start)).is_err() || done {
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
    (start_rx, rx)
}

/// The plan's stream, from the session's shared state. Definitions and `SET`s in a plan are
/// the context's to apply (they change it); everything else is planned as a `DataFrame` would
/// be.
async fn open(
    session: &Session,
    plan: LogicalPlan,
) -> datafusion::error::Result<SendableRecordBatchStream> {
    if matches!(plan, LogicalPlan::Ddl(_) | LogicalPlan::Statement(_)) {
        return session
            .ctx
            .execute_logical_plan(plan)
            .await?
            .execute_stream()
            .await;
    }
    // `now()` is folded at optimisation from the state's start time: each statement needs
    // its own, as in PostgreSQL, so the shared state is copied and marked (the copy is what
    // `SessionContext::state()` costs; the task context stays shared).
    let mut state = session.state.as_ref().clone();
    state.mark_start_execution();
    let physical = state.create_physical_plan(&plan).await?;
    datafusion::physical_plan::execute_stream(physical, session.task.clone())
}
