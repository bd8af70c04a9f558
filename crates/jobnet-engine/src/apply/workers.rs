//! The executor's per-device work in parallel on a bounded number of threads: one thread per
//! device up to [`MAX_WORKERS`] (devices wait on the network, not on the CPU, so a job over 300
//! switches still talks to all of them at once), and never more, however large the job. Each
//! worker runs in the request's scope (`base::deadline::Scope`) of the thread that started it.

use std::collections::VecDeque;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::Mutex;

/// The most threads one phase of one job runs at once.
pub const MAX_WORKERS: usize = 256;

/// `f` on every item, in parallel on at most `max` scoped threads; the results in the items'
/// order. An item whose work panics gives `panicked()` (the others go on).
pub(super) fn each<T: Send, R: Send>(
    items: Vec<T>,
    max: usize,
    f: impl Fn(T) -> R + Sync,
    panicked: impl Fn() -> R + Sync,
) -> Vec<R> {
    let n = items.len();
    let queue = Mutex::new(items.into_iter().enumerate().collect::<VecDeque<_>>());
    let results: Mutex<Vec<Option<R>>> = Mutex::new((0..n).map(|_| None).collect());
    // The workers wait and give up by the rules of the request that started them.
    let scope = crate::base::deadline::current();
    std::thread::scope(|s| {
        for _ in 0..n.min(max.max(1)) {
            let scope = scope.clone();
            s.spawn(|| {
                crate::base::deadline::enter(scope, || loop {
                    let Some((i, item)) = queue.lock().expect("work queue").pop_front() else {
                        return;
                    };
                    let r =
                        catch_unwind(AssertUnwindSafe(|| f(item))).unwrap_or_else(|_| panicked());
                    results.lock().expect("results")[i] = Some(r);
                })
            });
        }
    });
    results
        .into_inner()
        .expect("results")
        .into_iter()
        .map(|r| r.expect("every item was worked on"))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::Duration;

    /// Never more threads than the bound, every item once, results in order, a panic is one
    /// item's result.
    #[test]
    fn bounded_in_order_and_panics_stay_per_item() {
        let (now, most) = (AtomicUsize::new(0), AtomicUsize::new(0));
        let out = each(
            (0..40).collect(),
            8,
            |i: usize| {
                let running = now.fetch_add(1, Ordering::SeqCst) + 1;
                most.fetch_max(running, Ordering::SeqCst);
                std::thread::sleep(Duration::from_millis(5));
                now.fetch_sub(1, Ordering::SeqCst);
                if i == 13 {
                    panic!("item 13");
                }
                Some(i * 2)
            },
            || None,
        );
        assert_eq!(most.load(Ordering::SeqCst), 8, "the bound is used and kept");
        for (i, r) in out.iter().enumerate() {
            assert_eq!(*r, (i != 13).then_some(i * 2), "item {i}");
        }
        assert!(each(Vec::<u8>::new(), 8, |_| 1, || 0).is_empty());
    }

    /// The workers run in the scope of the request that started them: a cancelled request's
    /// workers see it cancelled, another request's do not.
    #[test]
    fn workers_wait_by_their_request_s_rules() {
        use crate::base::deadline::{enter, interrupted, Scope};
        let cancelled = Scope::request(false);
        cancelled.cancel();
        let seen = enter(Some(cancelled), || {
            each((0..4).collect(), 2, |_: u8| interrupted(), || false)
        });
        assert_eq!(seen, vec![true; 4]);
        let other = enter(Some(Scope::request(false)), || {
            each((0..4).collect(), 2, |_: u8| interrupted(), || true)
        });
        assert_eq!(other, vec![false; 4]);
    }
}
