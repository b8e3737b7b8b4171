//! Stopping long function calls: a statement's stop flag, read by the lifetime-value fits.
//!
//! DataFusion stops a query by dropping its stream, which ends the tasks at their next await;
//! a fit is one synchronous call of seconds or minutes with no await in it, so dropping did
//! nothing and a 200k-customer fit outlived its statement timeout, its cancel request and the
//! server's SIGTERM. A fit therefore asks a [`Stop`] flag at every likelihood evaluation. The
//! server gives each connection a flag, sets it on timeout, cancel, disconnect or shutdown, and
//! puts it into the fits of every plan it runs with the [`StopFits`] optimizer rule (views
//! were planned once, in the shared session, so their fits are swapped at optimisation, after
//! the views are inlined).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use datafusion::common::Result;
use datafusion::common::tree_node::{Transformed, TreeNode};
use datafusion::logical_expr::{AggregateUDF, Expr, LogicalPlan};
use datafusion::optimizer::{OptimizerConfig, OptimizerRule};

use super::ltv::FitAggregate;

/// A connection's stop signal; [`Stop::never`] for sessions without one.
///
/// Statements are numbered: a stop is for the statement running when it was given, and a fit
/// holds the [`Ticket`] of the statement it belongs to. A fit of a stopped statement that has
/// not noticed yet when the client's next statement begins is still stopped: clearing a plain
/// flag at that moment let it run on beside the new one.
#[derive(Debug, Clone, Default)]
pub struct Stop(Option<Arc<Numbers>>);

#[derive(Debug, Default)]
pub struct Numbers {
    statement: AtomicU64,
    stopped: AtomicU64,
}

impl Stop {
    pub fn never() -> Self {
        Stop(None)
    }
    pub fn new() -> Self {
        Stop(Some(Arc::new(Numbers::default())))
    }
    /// A new statement begins: earlier stops are not for it.
    pub fn begin_statement(&self) {
        if let Some(n) = &self.0 {
            n.statement.fetch_add(1, Ordering::SeqCst);
        }
    }
    /// Stops the statement running now.
    pub fn set(&self) {
        if let Some(n) = &self.0 {
            n.stopped
                .fetch_max(n.statement.load(Ordering::SeqCst), Ordering::SeqCst);
        }
    }
    /// Whether the statement running now was stopped.
    pub fn is_set(&self) -> bool {
        self.ticket().is_set()
    }
    /// The running statement's ticket, for work that must stop with it.
    pub fn ticket(&self) -> Ticket {
        Ticket {
            numbers: self.0.clone(),
            statement: self
                .0
                .as_ref()
                .map_or(0, |n| n.statement.load(Ordering::SeqCst)),
        }
    }
}

/// One statement's view of its connection's [`Stop`].
#[derive(Debug, Clone, Default)]
pub struct Ticket {
    numbers: Option<Arc<Numbers>>,
    statement: u64,
}

impl Ticket {
    pub fn is_set(&self) -> bool {
        // Statements are numbered from 1; nothing is stopped before the first.
        self.statement > 0
            && self
                .numbers
                .as_ref()
                .is_some_and(|n| n.stopped.load(Ordering::SeqCst) >= self.statement)
    }
}

// Two fit aggregates are the same function when they stop with the same connection.
impl PartialEq for Stop {
    fn eq(&self, other: &Self) -> bool {
        match (&self.0, &other.0) {
            (None, None) => true,
            (Some(a), Some(b)) => Arc::ptr_eq(a, b),
            _ => false,
        }
    }
}
impl Eq for Stop {}
impl std::hash::Hash for Stop {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.0.as_ref().map(Arc::as_ptr).hash(state);
    }
}

/// Runs a long synchronous computation so that the tokio worker it was called on hands its
/// other tasks to the rest of the pool meanwhile (only possible on a multi-threaded runtime).
pub fn off_the_async_workers<T>(work: impl FnOnce() -> T) -> T {
    use tokio::runtime::{Handle, RuntimeFlavor};
    match Handle::try_current() {
        Ok(h) if h.runtime_flavor() == RuntimeFlavor::MultiThread => {
            tokio::task::block_in_place(work)
        }
        _ => work(),
    }
}

/// Optimizer rule: every fit aggregate in the plan (views included) checks `stop`.
#[derive(Debug)]
pub struct StopFits {
    pub stop: Stop,
}

impl OptimizerRule for StopFits {
    fn name(&self) -> &str {
        "rebuy_stop_fits"
    }

    fn supports_rewrite(&self) -> bool {
        true
    }

    fn rewrite(
        &self,
        plan: LogicalPlan,
        _config: &dyn OptimizerConfig,
    ) -> Result<Transformed<LogicalPlan>> {
        plan.transform_up_with_subqueries(|node| {
            node.map_expressions(|e| {
                e.transform_up(|e| match e {
                    Expr::AggregateFunction(mut agg) => {
                        let swap = FitAggregate::kind_named(agg.func.name()).filter(|_| {
                            let any: &dyn std::any::Any = agg.func.inner().as_ref();
                            any.downcast_ref::<FitAggregate>()
                                .is_some_and(|f| *f.stop() != self.stop)
                        });
                        match swap {
                            Some(kind) => {
                                agg.func = Arc::new(AggregateUDF::from(FitAggregate::with_stop(
                                    kind,
                                    self.stop.clone(),
                                )));
                                Ok(Transformed::yes(Expr::AggregateFunction(agg)))
                            }
                            None => Ok(Transformed::no(Expr::AggregateFunction(agg))),
                        }
                    }
                    other => Ok(Transformed::no(other)),
                })
            })
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stop_is_for_the_statement_it_was_given_in() {
        let stop = Stop::new();
        stop.begin_statement();
        let first = stop.ticket();
        assert!(!first.is_set());
        stop.set();
        assert!(first.is_set() && stop.is_set());
        stop.begin_statement();
        let second = stop.ticket();
        assert!(first.is_set(), "the stopped statement stays stopped");
        assert!(!second.is_set() && !stop.is_set());
        assert!(!Stop::never().ticket().is_set());
    }
}
