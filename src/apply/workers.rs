//! The executor's per-device work in parallel on a bounded number of threads: one thread per
//! device up to [`MAX_WORKERS`] (devices wait on the network, not on the CPU, so a job over 300
//! switches still talks to all of them at once), and never more, however large the job.

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
    std::thread::scope(|s| {
        for _ in 0..n.min(max.max(1)) {
            s.spawn(|| loop {
                let Some((i, item)) = queue.lock().expect("work queue").pop_front() else {
                    return;
                };
                let r = catch_unwind(AssertUnwindSafe(|| f(item))).unwrap_or_else(|_| panicked());
                results.lock().expect("results")[i] = Some(r);
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
}
