//! Retrying what fails for a moment (`--export-retry-max-attempts`,
//! `--export-retry-max-duration`): a shard export, a direct-copy shard or a file load that hit
//! a lost connection, a server restart or a serialization failure runs again, from the same
//! snapshot, with growing pauses. Anything else fails at once (and mints a token).
//!
//! Only work that left nothing behind is redone: a file load or a direct-copy shard is one
//! target transaction, rolled back by the failure. A failure *while committing* is
//! [`Ambiguous`] (the commit may have landed) and is never retried blindly.

use std::future::Future;
use std::time::{Duration, Instant};

use tracing::warn;

/// Marks an error whose outcome is unknown (a failed COMMIT): retrying could load twice.
#[derive(Debug, Clone, Copy)]
pub struct Ambiguous;

impl std::fmt::Display for Ambiguous {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("the target may or may not have committed")
    }
}

/// How often and how long to retry.
#[derive(Debug, Clone, Copy)]
pub struct Policy {
    /// Attempts in all (1: no retry).
    pub max_attempts: u32,
    /// Time budget from the first attempt (zero: unlimited).
    pub max_duration: Duration,
}

/// Whether `e` may succeed if tried again.
pub fn is_retryable(e: &anyhow::Error) -> bool {
    if e.downcast_ref::<Ambiguous>().is_some() {
        return false;
    }
    e.chain().any(|c| {
        c.downcast_ref::<sqlx::Error>().is_some_and(molt_target::is_transient)
            || c.downcast_ref::<object_store::Error>()
                .is_some_and(|o| matches!(o, object_store::Error::Generic { .. }))
            || c.downcast_ref::<std::io::Error>().is_some_and(|io| {
                matches!(
                    io.kind(),
                    std::io::ErrorKind::ConnectionReset
                        | std::io::ErrorKind::ConnectionAborted
                        | std::io::ErrorKind::BrokenPipe
                        | std::io::ErrorKind::TimedOut
                        | std::io::ErrorKind::UnexpectedEof
                )
            })
    })
}

/// Runs `op` (given the attempt number, from 1) until it succeeds, fails for good, or the
/// policy is spent; logs each retry with `what`.
///
/// # Errors
/// The last error.
pub async fn retry<T, F, Fut>(policy: Policy, what: &str, mut op: F) -> anyhow::Result<T>
where
    F: FnMut(u32) -> Fut,
    Fut: Future<Output = anyhow::Result<T>>,
{
    let started = Instant::now();
    let mut pause = Duration::from_millis(200);
    let mut attempt = 1;
    loop {
        match op(attempt).await {
            Ok(v) => return Ok(v),
            Err(e) => {
                let over_time = !policy.max_duration.is_zero()
                    && started.elapsed() + pause > policy.max_duration;
                if attempt >= policy.max_attempts || over_time || !is_retryable(&e) {
                    return Err(e);
                }
                warn!(
                    attempt = u64::from(attempt),
                    max_attempts = u64::from(policy.max_attempts),
                    error = %molt_cli::error_chain(&e),
                    "{what} failed with a transient error; retrying"
                );
                tokio::time::sleep(pause).await;
                pause = (pause * 2).min(Duration::from_secs(10));
                attempt += 1;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn transient() -> anyhow::Error {
        anyhow::Error::new(sqlx::Error::PoolTimedOut).context("reading a shard")
    }

    #[tokio::test]
    async fn retries_transient_errors_up_to_the_limit() {
        let p = Policy { max_attempts: 3, max_duration: Duration::ZERO };
        let mut calls = 0;
        let r: anyhow::Result<u32> = retry(p, "x", |n| {
            calls += 1;
            async move { if n < 3 { Err(transient()) } else { Ok(n) } }
        })
        .await;
        assert_eq!(r.unwrap(), 3);
        assert_eq!(calls, 3);
        let mut calls = 0;
        let r: anyhow::Result<()> = retry(p, "x", |_| {
            calls += 1;
            async { Err(transient()) }
        })
        .await;
        assert!(r.is_err());
        assert_eq!(calls, 3, "gives up after max attempts");
    }

    #[tokio::test]
    async fn never_retries_permanent_or_ambiguous_errors() {
        let p = Policy { max_attempts: 5, max_duration: Duration::ZERO };
        for make in [
            || anyhow::anyhow!("duplicate key"),
            || transient().context(Ambiguous).context("committing"),
        ] {
            let mut calls = 0;
            let r: anyhow::Result<()> = retry(p, "x", |_| {
                calls += 1;
                async move { Err(make()) }
            })
            .await;
            assert!(r.is_err());
            assert_eq!(calls, 1);
        }
    }
}
