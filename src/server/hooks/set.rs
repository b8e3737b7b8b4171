//! `SET`, `SET LOCAL`, `RESET [ALL]` and `SHOW`: PostgreSQL's settings kept per connection,
//! and `rebuy.*` / `datafusion.*` options in the connection's session.

use std::sync::Arc;

use datafusion::arrow::array::{ArrayRef, RecordBatch, StringArray};
use datafusion::arrow::datatypes::{DataType, Field, Schema};
use datafusion::error::DataFusionError;
use datafusion::sql::sqlparser::ast::{ContextModifier, Expr, Reset, Set, Statement};
use pgwire::api::portal::Format;
use pgwire::api::results::{QueryResponse, Response, Tag};
use pgwire::error::{PgWireError, PgWireResult};

use crate::server::conn::ConnState;
use crate::server::errors::{self, pg_error};
use crate::server::statement::Prepared;

pub async fn run_set<C>(conn: &ConnState, client: &mut C, p: &Prepared) -> PgWireResult<Response>
where
    C: futures::Sink<pgwire::messages::PgWireBackendMessage> + Unpin + Send,
    PgWireError: From<<C as futures::Sink<pgwire::messages::PgWireBackendMessage>>::Error>,
{
    use futures::SinkExt;
    let Some(Statement::Set(set)) = &p.statement else {
        return Ok(Response::Execution(Tag::new("SET")));
    };
    let (name, value, local) = match set {
        Set::SingleAssignment {
            variable,
            values,
            scope,
            ..
        } => (
            variable.to_string(),
            values.iter().map(value_text).collect::<Vec<_>>().join(", "),
            matches!(scope, Some(ContextModifier::Local)),
        ),
        Set::SetTimeZone { value, local } => ("TimeZone".to_string(), value_text(value), *local),
        Set::SetNames { charset_name, .. } => (
            "client_encoding".to_string(),
            charset_name.to_string(),
            false,
        ),
        _ => return Ok(Response::Execution(Tag::new("SET"))),
    };
    if local && !super::txn::remember(conn, &name).await? {
        // PostgreSQL warns and changes nothing outside a transaction block.
        return Ok(Response::Execution(Tag::new("SET")));
    }
    let lower = name.to_ascii_lowercase();
    if lower.starts_with("rebuy.") || lower.starts_with("datafusion.") {
        set_engine_option(conn, &name, &value).await?;
        return Ok(Response::Execution(Tag::new("SET")));
    }
    let value = crate::server::settings::checked_value(&name, &value)
        .map_err(|(code, message)| pg_error(code, message))?;
    let report = {
        let mut settings = conn
            .settings
            .lock()
            .map_err(|_| pg_error(errors::INTERNAL_ERROR, "settings lock poisoned"))?;
        if value.eq_ignore_ascii_case("default") {
            settings.reset(&name)
        } else {
            settings.set(&name, value)
        }
        .map(|display| {
            (
                display.clone(),
                settings.get(&display).unwrap_or("").to_string(),
            )
        })
    };
    if let Some((display, value)) = report {
        client
            .send(pgwire::messages::PgWireBackendMessage::ParameterStatus(
                pgwire::messages::startup::ParameterStatus::new(display, value),
            ))
            .await?;
    }
    Ok(Response::Execution(Tag::new("SET")))
}

/// Sets a `rebuy.*` or `datafusion.*` option in this connection's session.
pub async fn set_engine_option(conn: &ConnState, name: &str, value: &str) -> PgWireResult<()> {
    let lower = name.to_ascii_lowercase();
    if lower.starts_with("datafusion.") {
        crate::server::settings::check_datafusion_option(name, value)
            .map_err(|(code, message)| pg_error(code, message))?;
    }
    let ctx = conn.session().await?;
    let value = if value.eq_ignore_ascii_case("default") {
        base_option(conn, &lower).unwrap_or_default()
    } else {
        value.to_string()
    };
    ctx.state_ref()
        .write()
        .config_mut()
        .options_mut()
        .set(&lower, &value)
        .map_err(|e| {
            pg_error(
                errors::INVALID_PARAMETER_VALUE,
                format!("invalid value for parameter \"{name}\": {}", first_line(&e)),
            )
        })?;
    conn.options_changed();
    Ok(())
}

/// The server's value of an engine option, which RESET returns to.
fn base_option(conn: &ConnState, key: &str) -> Option<String> {
    conn.shared
        .base()
        .ctx
        .state()
        .config_options()
        .entries()
        .into_iter()
        .find(|e| e.key.eq_ignore_ascii_case(key))
        .and_then(|e| e.value)
}

/// `RESET name` / `RESET ALL`.
pub async fn run_reset<C>(conn: &ConnState, client: &mut C, p: &Prepared) -> PgWireResult<Response>
where
    C: futures::Sink<pgwire::messages::PgWireBackendMessage> + Unpin + Send,
    PgWireError: From<<C as futures::Sink<pgwire::messages::PgWireBackendMessage>>::Error>,
{
    use futures::SinkExt;
    let Some(Statement::Reset(reset)) = &p.statement else {
        return Ok(Response::Execution(Tag::new("RESET")));
    };
    let names: Vec<String> = match &reset.reset {
        Reset::ALL => {
            let ctx = conn.session().await?;
            let engine: Vec<String> = ctx
                .state()
                .config_options()
                .entries()
                .into_iter()
                .filter(|e| e.key.starts_with("rebuy."))
                .map(|e| e.key)
                .collect();
            for key in engine {
                set_engine_option(conn, &key, "default").await?;
            }
            let mut settings = conn
                .settings
                .lock()
                .map_err(|_| pg_error(errors::INTERNAL_ERROR, "settings lock poisoned"))?;
            settings.reset_all()
        }
        Reset::ConfigurationParameter(name) => {
            let name = name.to_string();
            let lower = name.to_ascii_lowercase();
            if lower.starts_with("rebuy.") || lower.starts_with("datafusion.") {
                set_engine_option(conn, &name, "default").await?;
                vec![]
            } else {
                let mut settings = conn
                    .settings
                    .lock()
                    .map_err(|_| pg_error(errors::INTERNAL_ERROR, "settings lock poisoned"))?;
                settings.reset(&name).into_iter().collect()
            }
        }
    };
    let reports: Vec<(String, String)> = {
        let settings = conn.settings();
        names
            .into_iter()
            .map(|n| {
                let v = settings.get(&n).unwrap_or("").to_string();
                (n, v)
            })
            .collect()
    };
    for (name, value) in reports {
        client
            .send(pgwire::messages::PgWireBackendMessage::ParameterStatus(
                pgwire::messages::startup::ParameterStatus::new(name, value),
            ))
            .await?;
    }
    Ok(Response::Execution(Tag::new("RESET")))
}

pub async fn run_show(conn: &ConnState, name: &str) -> PgWireResult<Response> {
    let ctx = conn.session().await?;
    let settings = conn.settings();
    if name.eq_ignore_ascii_case("all") {
        let mut rows: Vec<(String, String)> = settings
            .all()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        for e in ctx.state().config_options().entries() {
            if e.key.starts_with("rebuy.") {
                rows.push((e.key.clone(), e.value.clone().unwrap_or_default()));
            }
        }
        let names: ArrayRef = Arc::new(StringArray::from_iter_values(rows.iter().map(|r| &r.0)));
        let values: ArrayRef = Arc::new(StringArray::from_iter_values(rows.iter().map(|r| &r.1)));
        let schema = Arc::new(Schema::new(vec![
            Field::new("name", DataType::Utf8, false),
            Field::new("setting", DataType::Utf8, false),
        ]));
        let batch = RecordBatch::try_new(schema, vec![names, values])
            .map_err(|e| pg_error(errors::INTERNAL_ERROR, e.to_string()))?;
        return batch_response(batch);
    }
    let value = crate::server::pgcompat::setting_value(&ctx, &settings, name).ok_or_else(|| {
        pg_error(
            errors::UNDEFINED_OBJECT,
            format!("unrecognized configuration parameter \"{name}\""),
        )
    })?;
    let column = show_column_name(name);
    let schema = Arc::new(Schema::new(vec![Field::new(
        &column,
        DataType::Utf8,
        false,
    )]));
    let batch = RecordBatch::try_new(
        schema,
        vec![Arc::new(StringArray::from(vec![value])) as ArrayRef],
    )
    .map_err(|e| pg_error(errors::INTERNAL_ERROR, e.to_string()))?;
    batch_response(batch)
}

fn first_line(e: &DataFusionError) -> String {
    let s = e.find_root().to_string();
    s.lines().next().unwrap_or_default().to_string()
}

fn value_text(e: &Expr) -> String {
    match e {
        Expr::Value(v) => v.clone().into_string().unwrap_or_else(|| v.to_string()),
        Expr::Identifier(i) => i.value.clone(),
        other => other.to_string().trim_matches('\'').to_string(),
    }
}

pub fn show_column_name(name: &str) -> String {
    match name.to_ascii_lowercase().as_str() {
        "time zone" | "timezone" => "TimeZone".into(),
        "datestyle" => "DateStyle".into(),
        "intervalstyle" => "IntervalStyle".into(),
        "transaction isolation level" => "transaction_isolation".into(),
        other => other.to_string(),
    }
}

/// One batch of text values as a query response (SHOW's answers).
fn batch_response(batch: RecordBatch) -> PgWireResult<Response> {
    let fields = Arc::new(arrow_pg::datatypes::arrow_schema_to_pg_fields(
        &batch.schema(),
        &Format::UnifiedText,
        None,
    )?);
    let rows: Vec<_> = arrow_pg::datatypes::encode_recordbatch(fields.clone(), batch).collect();
    Ok(Response::Query(QueryResponse::new(
        fields,
        futures::stream::iter(rows),
    )))
}
