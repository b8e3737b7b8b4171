//! What a statement is before it runs: parsed (analyst SQL as `rebuy query` parses it, catalog
//! queries with the catalog-compatible parser and rewrites), classified into the hook that
//! answers it, and checked against the user's role. Knows nothing of connections.

use datafusion::logical_expr::LogicalPlan;
use datafusion::sql::parser::Statement as DfStatement;
use datafusion::sql::sqlparser::ast::{CopyTarget, Statement};
use pgwire::error::PgWireResult;

use super::config::Role;
use super::errors::{self, pg_error};

/// Building the parser parses its token rewrite tables: done once.
static PARSER: std::sync::LazyLock<datafusion_pg_catalog::sql::PostgresCompatibilityParser> =
    std::sync::LazyLock::new(datafusion_pg_catalog::sql::PostgresCompatibilityParser::new);

/// What a statement turns into before it runs.
#[derive(Debug, Clone, PartialEq)]
pub enum Kind {
    /// Planned by DataFusion (queries, and for admins DDL/DML).
    Plan,
    Set,
    Show(String),
    Begin,
    Commit,
    Rollback,
    /// Accepted and ignored, answered with this command tag.
    NoOp(&'static str),
    CopyOut,
    /// DataFusion-only syntax (CREATE EXTERNAL TABLE, COPY ... TO 'path'): admins only.
    DataFusionText,
    /// asyncpg's type-introspection query, answered by [`super::asyncpg`].
    AsyncpgTypes,
    Reset,
    /// `DECLARE … CURSOR FOR query`: the query is planned (with its parameters) as a query.
    Declare,
    /// `FETCH` (or `MOVE`, which counts rows without sending them) from a cursor.
    Fetch {
        cursor: String,
        moving: bool,
    },
    Close,
}

/// A parsed statement, as kept for the extended protocol.
#[derive(Debug, Clone)]
pub struct Prepared {
    pub sql: String,
    pub statement: Option<Statement>,
    pub kind: Kind,
    pub plan: Option<LogicalPlan>,
    /// The data snapshot `plan` reads (its tables are that snapshot's): a statement kept
    /// across a commit is planned again, so that it sees the new rows as PostgreSQL's would.
    pub planned_at: u64,
    /// The plan made again for a later snapshot, kept until the next one, so that a statement
    /// prepared once and run many times after a commit is not planned at every run.
    pub replanned: std::sync::Arc<std::sync::Mutex<Option<(u64, LogicalPlan)>>>,
    /// [`Kind::DataFusionText`]: the statement as parsed once, with the PostgreSQL dialect
    /// whatever the session's `datafusion.sql_parser.dialect`; the same parse is checked and
    /// run.
    pub df: Option<Box<DfStatement>>,
}

impl Prepared {
    /// The query DataFusion plans for this statement: the statement itself, or a cursor's.
    pub fn query_to_plan(&self) -> Option<Statement> {
        match (&self.kind, &self.statement) {
            (Kind::Plan, Some(s)) => Some(s.clone()),
            (Kind::Declare, Some(Statement::Declare { stmts })) => stmts
                .first()
                .and_then(|d| d.for_query.clone())
                .map(Statement::Query),
            _ => None,
        }
    }
}

/// Parses SQL text into statements with the PostgreSQL-compatible parser. Text only
/// DataFusion understands (CREATE EXTERNAL TABLE, COPY TO a path) comes back as one
/// [`Kind::DataFusionText`] statement.
pub fn parse(sql: &str) -> PgWireResult<Vec<Prepared>> {
    crate::limits::check_statement_text(sql).map_err(|e| pg_error(e.sqlstate(), e.to_string()))?;
    if super::asyncpg::is_introspection(sql) {
        return Ok(vec![Prepared {
            sql: "asyncpg type introspection".to_string(),
            statement: None,
            kind: Kind::AsyncpgTypes,
            plan: None,
            planned_at: 0,
            replanned: Default::default(),
            df: None,
        }]);
    }
    if let Some(fetch) = move_as_fetch(sql) {
        let mut prepared = parse(&fetch)?;
        for p in prepared.iter_mut() {
            if let Kind::Fetch { moving, .. } = &mut p.kind {
                *moving = true;
            }
        }
        return Ok(prepared);
    }
    // Analyst SQL is parsed as `rebuy query` parses it; a catalog statement again with the
    // catalog-compatible parser, and then rewritten for the engine (see super::rewrite).
    let parsed = match crate::sql::parse_plain(sql) {
        Ok(statements) => {
            let single = statements.len() == 1;
            Ok(statements
                .into_iter()
                .map(|s| {
                    if !super::rewrite::reads_catalog(&s) {
                        return (s, false);
                    }
                    // The client's own text when it sent one statement (the compatible
                    // parser reads spellings the printed AST no longer has).
                    let text = if single {
                        sql.to_string()
                    } else {
                        s.to_string()
                    };
                    match PARSER.parse(&super::rewrite::drop_regproc_casts(&text)) {
                        Ok(mut again) if again.len() == 1 => (again.remove(0), true),
                        _ => (s, true),
                    }
                })
                .collect::<Vec<_>>())
        }
        Err(plain) => PARSER
            .parse(&super::rewrite::drop_regproc_casts(sql))
            .map(|statements| {
                statements
                    .into_iter()
                    .map(|s| {
                        let catalog = super::rewrite::reads_catalog(&s);
                        (s, catalog)
                    })
                    .collect()
            })
            .map_err(|_| plain),
    };
    match parsed {
        Ok(statements) => Ok(statements
            .into_iter()
            .map(|(mut s, catalog)| {
                if catalog {
                    crate::sql::name_columns(&mut s);
                    super::rewrite::rewrite(&mut s);
                }
                crate::sql::shape(&mut s);
                s
            })
            .map(|s| Prepared {
                sql: s.to_string(),
                kind: classify(&s),
                statement: Some(s),
                plan: None,
                planned_at: 0,
                replanned: Default::default(),
                df: None,
            })
            .collect()),
        Err(plain_err) => {
            let dialect = crate::sql::dialect::RebuyDialect::default();
            if let Ok(mut df) =
                datafusion::sql::parser::DFParser::parse_sql_with_dialect(sql, &dialect)
                && df.len() == 1
                && matches!(
                    df.front(),
                    Some(
                        DfStatement::CreateExternalTable(_)
                            | DfStatement::CopyTo(_)
                            | DfStatement::Explain(_)
                    )
                )
            {
                return Ok(vec![Prepared {
                    sql: sql.to_string(),
                    statement: None,
                    kind: Kind::DataFusionText,
                    plan: None,
                    planned_at: 0,
                    replanned: Default::default(),
                    df: df.pop_front().map(Box::new),
                }]);
            }
            Err(pg_error(plain_err.sqlstate(), plain_err.to_string()))
        }
    }
}

/// Statements that only read: what analysts may plan, and what answers with rows.
pub fn is_read(s: &Statement) -> bool {
    matches!(
        s,
        Statement::Query(_)
            | Statement::Explain { .. }
            | Statement::ExplainTable { .. }
            | Statement::ShowTables { .. }
            | Statement::ShowColumns { .. }
            | Statement::ShowFunctions { .. }
    )
}

/// Refuses what the user's role may not do.
pub fn check_allowed(role: Role, p: &Prepared) -> PgWireResult<()> {
    if role == Role::Admin {
        return Ok(());
    }
    let refused = |what: &str| {
        Err(pg_error(
            errors::READ_ONLY_TRANSACTION,
            format!("cannot execute {what} in a read-only transaction (role analyst)"),
        ))
    };
    match (&p.kind, &p.statement) {
        (Kind::DataFusionText, _) => Err(pg_error(
            errors::INSUFFICIENT_PRIVILEGE,
            "permission denied: reading or writing files and URLs needs the admin role",
        )),
        (Kind::Plan, Some(s)) => match s {
            s if is_read(s) => Ok(()),
            Statement::Copy { .. } => Err(pg_error(
                errors::INSUFFICIENT_PRIVILEGE,
                "permission denied: COPY to or from a file needs the admin role",
            )),
            other => refused(&statement_word(other)),
        },
        _ => Ok(()),
    }
}

/// `MOVE …` as the `FETCH …` whose rows it counts (the SQL parser knows only FETCH).
fn move_as_fetch(sql: &str) -> Option<String> {
    let trimmed = sql.trim_start();
    let word = trimmed.get(..4)?;
    let after = trimmed[4..].chars().next()?;
    (word.eq_ignore_ascii_case("move") && after.is_whitespace())
        .then(|| format!("FETCH{}", &trimmed[4..]))
}

/// How a statement is handled (see [`Kind`]).
pub fn classify(s: &Statement) -> Kind {
    match s {
        Statement::Set(_) => Kind::Set,
        Statement::Reset(_) => Kind::Reset,
        Statement::Declare { stmts }
            if stmts.len() == 1 && stmts[0].for_query.is_some() && stmts[0].names.len() == 1 =>
        {
            Kind::Declare
        }
        Statement::Fetch {
            name, into: None, ..
        } => Kind::Fetch {
            cursor: name.value.clone(),
            moving: false,
        },
        Statement::Close { .. } => Kind::Close,
        Statement::ShowVariable { variable } => {
            let parts: Vec<String> = variable.iter().map(|v| v.value.clone()).collect();
            let dotted = parts.first().is_some_and(|f| {
                f.eq_ignore_ascii_case("rebuy") || f.eq_ignore_ascii_case("datafusion")
            });
            Kind::Show(parts.join(if dotted { "." } else { " " }))
        }
        Statement::StartTransaction { .. } => Kind::Begin,
        Statement::Commit { .. } => Kind::Commit,
        Statement::Rollback {
            savepoint: Some(_), ..
        } => Kind::NoOp("ROLLBACK"),
        Statement::Rollback { .. } => Kind::Rollback,
        Statement::Savepoint { .. } => Kind::NoOp("SAVEPOINT"),
        Statement::ReleaseSavepoint { .. } => Kind::NoOp("RELEASE"),
        Statement::Discard { .. } => Kind::NoOp("DISCARD ALL"),
        Statement::Deallocate { .. } => Kind::NoOp("DEALLOCATE"),
        Statement::Copy {
            to: true,
            target: CopyTarget::Stdout,
            ..
        } => Kind::CopyOut,
        _ => Kind::Plan,
    }
}

/// The command word PostgreSQL uses in tags and messages ("CREATE TABLE", "INSERT", …).
pub fn statement_word(s: &Statement) -> String {
    match s {
        Statement::Insert(_) => "INSERT".into(),
        Statement::Update { .. } => "UPDATE".into(),
        Statement::Delete(_) => "DELETE".into(),
        Statement::CreateTable(_) => "CREATE TABLE".into(),
        Statement::CreateView { .. } => "CREATE VIEW".into(),
        Statement::CreateSchema { .. } => "CREATE SCHEMA".into(),
        Statement::Drop { object_type, .. } => format!("DROP {object_type}"),
        Statement::Truncate { .. } => "TRUNCATE TABLE".into(),
        Statement::AlterTable { .. } => "ALTER TABLE".into(),
        other => other
            .to_string()
            .split_whitespace()
            .take(1)
            .collect::<Vec<_>>()
            .join(" ")
            .to_ascii_uppercase(),
    }
}
