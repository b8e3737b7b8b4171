//! Grafana lists a table's columns, and Tableau, Power BI and Metabase its keys, through
//! `information_schema`:
//!
//! ```sql
//! SELECT column_name, data_type FROM information_schema.columns
//!   WHERE table_schema = 'public' AND table_name = 'orders' ORDER BY ordinal_position
//! SELECT kcu.column_name FROM information_schema.table_constraints tc
//!   JOIN information_schema.key_column_usage kcu ON tc.constraint_name = kcu.constraint_name
//!   WHERE tc.constraint_type = 'PRIMARY KEY' AND tc.table_name = 'orders'
//! ```
//!
//! Those views are read from rebuy's PostgreSQL-shaped ones (`super::super::information_schema`)
//! instead of DataFusion's, which name Arrow types and have no constraints.

use std::ops::ControlFlow;

use datafusion::sql::sqlparser::ast::{
    Ident, ObjectName, ObjectNamePart, Statement, visit_relations_mut,
};

use crate::server::information_schema::{SCHEMA, VIEWS};

pub(super) fn use_postgres_views(statement: &mut Statement) {
    let _ = visit_relations_mut(statement, |name: &mut ObjectName| {
        let parts: Vec<String> = name
            .0
            .iter()
            .map(|p| p.to_string().trim_matches('"').to_ascii_lowercase())
            .collect();
        let n = parts.len();
        if n >= 2 && parts[n - 2] == "information_schema" && VIEWS.contains(&parts[n - 1].as_str())
        {
            let view = parts[n - 1].clone();
            *name = ObjectName(vec![
                ObjectNamePart::Identifier(Ident::new(SCHEMA)),
                ObjectNamePart::Identifier(Ident::new(view)),
            ]);
        }
        ControlFlow::<()>::Continue(())
    });
}

#[cfg(test)]
mod tests {
    #[test]
    fn information_schema_views_are_the_postgres_shaped_ones() {
        let mut s = datafusion::sql::sqlparser::parser::Parser::parse_sql(
            &datafusion::sql::sqlparser::dialect::PostgreSqlDialect {},
            "SELECT c.column_name FROM information_schema.columns c JOIN \"information_schema\".\"tables\" t ON true",
        )
        .unwrap()
        .remove(0);
        super::use_postgres_views(&mut s);
        assert_eq!(
            s.to_string(),
            "SELECT c.column_name FROM pg_information_schema.columns c JOIN \"information_schema\".\"tables\" t ON true"
        );
    }
}
