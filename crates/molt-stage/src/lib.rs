//! The replicator's staging schema on the target: where it keeps its saved positions (`memo`)
//! and the lease that lets only one instance apply at a time (spec §6.3).
//!
//! Start from [`Staging`] (create and read the schema) and [`Lease`] (acquire, renew, and the
//! fenced checkpoint write).
//!
//! ```text
//!  instance A                     target                          instance B
//!  acquire ── INSERT … ON CONFLICT ─▶ leases(name, nonce=A, expires)
//!                                                 ◀── acquire: held by A, waits
//!  apply txn: rows …                  │
//!             checkpoint ─ UPDATE leases … WHERE nonce = A  (fence)
//!                          + UPSERT memo                     } one transaction
//!  renew every duration/3 ─▶ expires = now() + duration
//!  (crash) ……………………………………………… expires passes, or the holder is a dead
//!                                                 process on B's own host ─▶ B takes over
//! ```
//!
//! The fence is what makes the lease safe rather than advisory: a checkpoint commits only in
//! a transaction that also proves the lease is still this instance's (its nonce), so an
//! instance that lost its lease (paused, partitioned) cannot commit rows after the new holder
//! began.

use std::time::Duration;

use molt_schema::quote_ident;
use sqlx::postgres::PgPool;
use sqlx::{PgConnection, Row as _};
use tracing::{info, warn};

/// Errors of the staging schema.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StageError {
    /// The schema is missing and may not be created.
    #[error(
        "staging schema {schema:?} does not exist on the target: pass --stagingCreateSchema to create it"
    )]
    Missing {
        /// Schema name.
        schema: String,
    },
    /// A statement on the staging tables failed.
    #[error("{what} in staging schema {schema:?}")]
    Sql {
        /// What was being done.
        what: &'static str,
        /// Schema name.
        schema: String,
        /// Cause.
        #[source]
        source: sqlx::Error,
    },
    /// Another instance holds (or took) the lease.
    #[error(
        "the lease {name:?} in the staging schema is held by {holder}: another replicator is applying to this target; stop it, or wait for it to expire"
    )]
    LeaseLost {
        /// Lease name.
        name: String,
        /// `host:pid` of the holder.
        holder: String,
    },
    /// Asked to stop while waiting for the lease.
    #[error("stopped while waiting for the lease {name:?}")]
    Stopped {
        /// Lease name.
        name: String,
    },
}

impl StageError {
    /// Whether retrying later may succeed (a lost connection, not a lost lease).
    pub fn is_transient(&self) -> bool {
        match self {
            Self::Sql { source, .. } => matches!(
                source,
                sqlx::Error::Io(_) | sqlx::Error::PoolTimedOut | sqlx::Error::Protocol(_)
            ),
            _ => false,
        }
    }
}

/// The staging schema of one target database.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Staging {
    schema: String,
}

impl Staging {
    /// The staging schema named `schema` (already resolved to a schema of the target database).
    pub fn new(schema: impl Into<String>) -> Self {
        Self { schema: schema.into() }
    }

    /// The schema's name.
    pub fn schema(&self) -> &str {
        &self.schema
    }

    /// `"schema"."memo"`: saved positions, one row per stream.
    pub fn memo_table(&self) -> String {
        format!("{}.\"memo\"", quote_ident(&self.schema))
    }

    /// `"schema"."leases"`: who may apply.
    pub fn leases_table(&self) -> String {
        format!("{}.\"leases\"", quote_ident(&self.schema))
    }

    fn sql_err(&self, what: &'static str) -> impl FnOnce(sqlx::Error) -> StageError + '_ {
        move |source| StageError::Sql { what, schema: self.schema.clone(), source }
    }

    /// Creates the schema (when `create`) and its tables if missing.
    ///
    /// # Errors
    /// A missing schema without `create`, or failing statements.
    pub async fn prepare(&self, pool: &PgPool, create: bool) -> Result<(), StageError> {
        let exists: bool =
            sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM pg_namespace WHERE nspname = $1)")
                .bind(&self.schema)
                .fetch_one(pool)
                .await
                .map_err(self.sql_err("looking up the schema"))?;
        if !exists && !create {
            return Err(StageError::Missing { schema: self.schema.clone() });
        }
        let ddl = format!(
            "CREATE SCHEMA IF NOT EXISTS {s}; \
             CREATE TABLE IF NOT EXISTS {m} (key text PRIMARY KEY, value bytea NOT NULL, updated_at timestamptz NOT NULL DEFAULT now()); \
             CREATE TABLE IF NOT EXISTS {l} (name text PRIMARY KEY, expires timestamptz NOT NULL, nonce text NOT NULL, hostname text NOT NULL)",
            s = quote_ident(&self.schema),
            m = self.memo_table(),
            l = self.leases_table(),
        );
        sqlx::raw_sql(sqlx::AssertSqlSafe(ddl))
            .execute(pool)
            .await
            .map_err(self.sql_err("creating the staging tables"))?;
        Ok(())
    }

    /// The value saved under `key`, if any.
    ///
    /// # Errors
    /// A failing query.
    pub async fn load(&self, pool: &PgPool, key: &str) -> Result<Option<Vec<u8>>, StageError> {
        sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
            "SELECT value FROM {} WHERE key = $1",
            self.memo_table()
        )))
        .bind(key)
        .fetch_optional(pool)
        .await
        .map_err(self.sql_err("reading the saved position"))
    }
}

/// A held lease: this instance (nonce) may apply until `expires`, renewed while it runs.
#[derive(Debug, Clone)]
pub struct Lease {
    staging: Staging,
    name: String,
    nonce: String,
    holder: String,
    duration: Duration,
}

/// `host:pid` of this process, as written into the lease.
fn this_holder() -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_owned())
        .unwrap_or_else(|_| "unknown-host".into());
    format!("{host}:{}", std::process::id())
}

/// Whether `holder` (`host:pid`) is a process of this host that no longer exists: its lease
/// can be taken at once instead of waiting for it to expire (a restart after `kill -9`).
fn holder_is_dead_local(holder: &str, this: &str) -> bool {
    let (Some((host, pid)), Some((this_host, this_pid))) =
        (holder.rsplit_once(':'), this.rsplit_once(':'))
    else {
        return false;
    };
    host == this_host
        && pid != this_pid
        && pid.parse::<u32>().is_ok_and(|p| !std::path::Path::new(&format!("/proc/{p}")).exists())
}

fn interval(d: Duration) -> String {
    format!("{} milliseconds", d.as_millis().max(1))
}

impl Lease {
    /// Acquires the lease `name`, waiting while another live instance holds it (logging who)
    /// until `stop` turns true.
    ///
    /// # Errors
    /// Failing statements, or [`StageError::Stopped`].
    pub async fn acquire(
        pool: &PgPool,
        staging: &Staging,
        name: &str,
        duration: Duration,
        mut stop: tokio::sync::watch::Receiver<bool>,
    ) -> Result<Self, StageError> {
        let lease = Self {
            staging: staging.clone(),
            name: name.to_owned(),
            nonce: uuid::Uuid::new_v4().to_string(),
            holder: this_holder(),
            duration,
        };
        let sql = format!(
            "INSERT INTO {l} AS l (name, expires, nonce, hostname) VALUES ($1, now() + $2::interval, $3, $4) \
             ON CONFLICT (name) DO UPDATE SET expires = excluded.expires, nonce = excluded.nonce, hostname = excluded.hostname \
             WHERE l.expires < now() OR l.hostname = $5 RETURNING nonce",
            l = staging.leases_table()
        );
        let mut evict = String::new();
        let mut logged = false;
        loop {
            let got: Option<String> = sqlx::query_scalar(sqlx::AssertSqlSafe(sql.clone()))
                .bind(&lease.name)
                .bind(interval(duration))
                .bind(&lease.nonce)
                .bind(&lease.holder)
                .bind(&evict)
                .fetch_optional(pool)
                .await
                .map_err(staging.sql_err("acquiring the lease"))?;
            if got.is_some() {
                info!(lease = %lease.name, holder = %lease.holder, "acquired the staging lease");
                return Ok(lease);
            }
            let row = sqlx::query(sqlx::AssertSqlSafe(format!(
                "SELECT hostname, GREATEST(expires - now(), interval '0')::text FROM {} WHERE name = $1",
                staging.leases_table()
            )))
            .bind(&lease.name)
            .fetch_optional(pool)
            .await
            .map_err(staging.sql_err("reading the lease"))?;
            let Some(row) = row else { continue };
            let holder: String = row.get(0);
            let left: String = row.get(1);
            if holder_is_dead_local(&holder, &lease.holder) {
                info!(lease = %lease.name, holder = %holder, "taking over the lease of an ended process on this host");
                evict = holder;
                continue;
            }
            if !logged {
                warn!(lease = %lease.name, holder = %holder, expires_in = %left, "waiting for the staging lease: another replicator is applying to this target");
                logged = true;
            }
            tokio::select! {
                _ = tokio::time::sleep(Duration::from_millis(500)) => {}
                changed = stop.changed() => {
                    if changed.is_err() || *stop.borrow() {
                        return Err(StageError::Stopped { name: lease.name.clone() });
                    }
                }
            }
        }
    }

    /// Lease name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// How often [`Lease::renew`] should run.
    pub fn renew_every(&self) -> Duration {
        self.duration / 3
    }

    /// Extends the lease.
    ///
    /// # Errors
    /// [`StageError::LeaseLost`] when another instance holds it now; failing statements.
    pub async fn renew(&self, pool: &PgPool) -> Result<(), StageError> {
        let n = sqlx::query(sqlx::AssertSqlSafe(format!(
            "UPDATE {} SET expires = now() + $3::interval WHERE name = $1 AND nonce = $2",
            self.staging.leases_table()
        )))
        .bind(&self.name)
        .bind(&self.nonce)
        .bind(interval(self.duration))
        .execute(pool)
        .await
        .map_err(self.staging.sql_err("renewing the lease"))?
        .rows_affected();
        if n == 1 { Ok(()) } else { Err(self.lost(pool).await) }
    }

    /// The error for a lease this instance no longer holds, naming who holds it now.
    async fn lost<'e>(&self, db: impl sqlx::PgExecutor<'e>) -> StageError {
        let holder: Option<String> = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
            "SELECT hostname FROM {} WHERE name = $1",
            self.staging.leases_table()
        )))
        .bind(&self.name)
        .fetch_optional(db)
        .await
        .ok()
        .flatten();
        StageError::LeaseLost {
            name: self.name.clone(),
            holder: holder.unwrap_or_else(|| "nobody (the lease row was deleted)".into()),
        }
    }

    /// Saves `value` under `key` inside the caller's transaction, only if this instance still
    /// holds the lease (which the same statement extends).
    ///
    /// # Errors
    /// [`StageError::LeaseLost`] (roll the transaction back), or a failing statement.
    pub async fn checkpoint(
        &self,
        conn: &mut PgConnection,
        key: &str,
        value: &[u8],
    ) -> Result<(), StageError> {
        let sql = format!(
            "WITH held AS (UPDATE {l} SET expires = now() + $5::interval WHERE name = $3 AND nonce = $4 RETURNING 1) \
             INSERT INTO {m} (key, value, updated_at) SELECT $1, $2, now() FROM held \
             ON CONFLICT (key) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at",
            l = self.staging.leases_table(),
            m = self.staging.memo_table(),
        );
        let n = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(key)
            .bind(value)
            .bind(&self.name)
            .bind(&self.nonce)
            .bind(interval(self.duration))
            .execute(&mut *conn)
            .await
            .map_err(self.staging.sql_err("writing the checkpoint"))?
            .rows_affected();
        if n == 1 { Ok(()) } else { Err(self.lost(&mut *conn).await) }
    }

    /// Gives the lease up (on a clean shutdown), so a successor need not wait.
    ///
    /// # Errors
    /// A failing statement.
    pub async fn release(&self, pool: &PgPool) -> Result<(), StageError> {
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "DELETE FROM {} WHERE name = $1 AND nonce = $2",
            self.staging.leases_table()
        )))
        .bind(&self.name)
        .bind(&self.nonce)
        .execute(pool)
        .await
        .map_err(self.staging.sql_err("releasing the lease"))?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_ended_processes_of_this_host_are_evicted() {
        let me = this_holder();
        let (host, _) = me.rsplit_once(':').unwrap();
        // No process has PID 999999999 (above pid_max); this process's own entry exists.
        assert!(holder_is_dead_local(&format!("{host}:999999999"), &me));
        assert!(!holder_is_dead_local("other-host:999999999", &me));
        assert!(!holder_is_dead_local(&me, &me), "never evicts itself");
        assert!(!holder_is_dead_local("garbage", &me));
        let init = format!("{host}:1");
        assert!(!holder_is_dead_local(&init, &me), "PID 1 is alive");
    }

    #[test]
    fn table_names_are_quoted() {
        let s = Staging::new("_replicator");
        assert_eq!(s.memo_table(), "\"_replicator\".\"memo\"");
        assert_eq!(s.leases_table(), "\"_replicator\".\"leases\"");
        assert_eq!(interval(Duration::from_secs(15)), "15000 milliseconds");
    }
}
