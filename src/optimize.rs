//! rebuy's own logical optimizer rule: a LEFT JOIN of `customers` on its key whose columns
//! nobody reads is left out.
//!
//! `customer_summary` (and the views on it) join `customers` for the region fallback, the
//! member tier, the consent and the signup date. A question that reads none of those, such
//! as the lifetime-value inputs `SELECT customer_id, frequency, recency, t, monetary_value
//! FROM customer_summary`, would still build a hash table of every customer. `customers`
//! holds one row per `customer_id` (ingest upserts by that key), so a LEFT JOIN on it gives
//! every row of its left side exactly once: without the right side's columns, the join
//! changes nothing and can go. DataFusion cannot know that uniqueness, rebuy does.

use datafusion::common::tree_node::Transformed;
use datafusion::error::Result;
use datafusion::logical_expr::{Aggregate, Expr, JoinType, LogicalPlan, Projection};
use datafusion::optimizer::{ApplyOrder, OptimizerConfig, OptimizerRule};

use crate::storage::TableKind;

/// Removes a LEFT JOIN of `customers ON customers.customer_id = …` when the operator above
/// it (a projection or an aggregate) reads only columns of the join's left side.
#[derive(Debug, Default)]
pub struct DropUnreadCustomersJoin;

impl OptimizerRule for DropUnreadCustomersJoin {
    fn name(&self) -> &str {
        "rebuy_drop_unread_customers_join"
    }

    fn apply_order(&self) -> Option<ApplyOrder> {
        Some(ApplyOrder::TopDown)
    }

    fn supports_rewrite(&self) -> bool {
        true
    }

    fn rewrite(
        &self,
        plan: LogicalPlan,
        _config: &dyn OptimizerConfig,
    ) -> Result<Transformed<LogicalPlan>> {
        match &plan {
            LogicalPlan::Projection(p) => {
                let Some(left) = droppable_join(&p.input, p.expr.iter()) else {
                    return Ok(Transformed::no(plan));
                };
                let projection = Projection::try_new(p.expr.clone(), left)?;
                Ok(Transformed::yes(LogicalPlan::Projection(projection)))
            }
            LogicalPlan::Aggregate(a) => {
                let read = a.group_expr.iter().chain(a.aggr_expr.iter());
                let Some(left) = droppable_join(&a.input, read) else {
                    return Ok(Transformed::no(plan));
                };
                let aggregate =
                    Aggregate::try_new(left, a.group_expr.clone(), a.aggr_expr.clone())?;
                Ok(Transformed::yes(LogicalPlan::Aggregate(aggregate)))
            }
            _ => Ok(Transformed::no(plan)),
        }
    }
}

/// The left input of `input` when it is a droppable join: LEFT, no extra condition, on
/// `customers.customer_id` alone, and `read` uses no column of the right side.
fn droppable_join<'a>(
    input: &LogicalPlan,
    read: impl Iterator<Item = &'a Expr>,
) -> Option<std::sync::Arc<LogicalPlan>> {
    let LogicalPlan::Join(join) = input else {
        return None;
    };
    if join.join_type != JoinType::Left || join.filter.is_some() || join.on.len() != 1 {
        return None;
    }
    let Expr::Column(key) = &join.on[0].1 else {
        return None;
    };
    if key.name != "customer_id" || !join.right.schema().has_column(key) {
        return None;
    }
    if !at_most_one_row_per_customer(&join.right) {
        return None;
    }
    let left = join.left.schema();
    for expr in read {
        if expr.column_refs().iter().any(|c| !left.has_column(c)) {
            return None;
        }
    }
    Some(join.left.clone())
}

/// True when `plan` is the `customers` table, possibly renamed, narrowed to some columns,
/// filtered or limited: every one of those keeps at most one row per `customer_id`.
fn at_most_one_row_per_customer(plan: &LogicalPlan) -> bool {
    match plan {
        LogicalPlan::SubqueryAlias(a) => at_most_one_row_per_customer(&a.input),
        LogicalPlan::Filter(f) => at_most_one_row_per_customer(&f.input),
        LogicalPlan::Limit(l) => at_most_one_row_per_customer(&l.input),
        LogicalPlan::Projection(p) => {
            // Only plain columns: a computed `customer_id` would not be the key any more.
            p.expr.iter().all(|e| matches!(e, Expr::Column(_)))
                && at_most_one_row_per_customer(&p.input)
        }
        LogicalPlan::TableScan(scan) => {
            scan.table_name.table() == TableKind::Customers.name()
                && matches!(scan.table_name.schema(), None | Some("public"))
                && matches!(scan.table_name.catalog(), None | Some("rebuy"))
        }
        _ => false,
    }
}
