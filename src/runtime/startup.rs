//! The operator's first calls to the API server (the CRD established, CurveClusters
//! listable), retried with a doubling delay while the API server cannot be reached. Exiting
//! at the first failure, as the operator did, put it in the kubelet's CrashLoopBackOff
//! (up to 5 minutes between starts) after any blip of the API server at the wrong moment:
//! found by the soak (issue 32), whose proxy cut the connection while the operator started.

use std::future::Future;
use std::time::Duration;

/// The delays between attempts: `first`, doubling up to `max`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RetryDelays {
    pub first: Duration,
    pub max: Duration,
}

impl Default for RetryDelays {
    /// client-go's reflector backs off 800 ms doubling to 30 s; the start is shorter-lived,
    /// so a shorter first delay and ceiling.
    fn default() -> Self {
        RetryDelays {
            first: Duration::from_millis(500),
            max: Duration::from_secs(10),
        }
    }
}

impl RetryDelays {
    /// The delay after the `n`th failed attempt (from 1).
    pub fn after(&self, n: u32) -> Duration {
        let factor = 1u32 << n.saturating_sub(1).min(16);
        self.first.saturating_mul(factor).min(self.max)
    }
}

/// Runs `attempt` until it succeeds, logging each failure as `what` with the error and the
/// wait before the next attempt.
pub async fn until_ok<T, E, F, Fut>(what: &str, delays: RetryDelays, mut attempt: F) -> T
where
    E: std::fmt::Display,
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, E>>,
{
    let mut failures = 0;
    loop {
        match attempt().await {
            Ok(value) => return value,
            Err(e) => {
                failures += 1;
                let wait = delays.after(failures);
                tracing::warn!(error = %e, attempt = failures, retry_in = ?wait, "{what}");
                tokio::time::sleep(wait).await;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_double_up_to_the_ceiling() {
        let delays = RetryDelays::default();
        let seen: Vec<u128> = (1..=7).map(|n| delays.after(n).as_millis()).collect();
        assert_eq!(seen, vec![500, 1000, 2000, 4000, 8000, 10_000, 10_000]);
        assert_eq!(delays.after(1000), Duration::from_secs(10));
    }

    #[tokio::test(start_paused = true)]
    async fn a_failing_start_step_is_retried_until_it_succeeds() {
        let started = tokio::time::Instant::now();
        let mut attempts = 0;
        let value = until_ok(
            "cannot reach the API server",
            RetryDelays::default(),
            || {
                attempts += 1;
                let result = if attempts <= 3 {
                    Err(format!("connection refused ({attempts})"))
                } else {
                    Ok(attempts * 10)
                };
                async move { result }
            },
        )
        .await;
        assert_eq!(value, 40);
        assert_eq!(attempts, 4);
        // 0.5 + 1 + 2 s of waiting, on the paused clock.
        assert_eq!(started.elapsed(), Duration::from_millis(3500));
    }
}
