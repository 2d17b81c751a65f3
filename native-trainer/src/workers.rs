//! A queue of numbered jobs over scoped threads: the CLI's one way to use several cores (core
//! owns no threads).

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

/// `f(0), f(1), … f(n - 1)` on up to `workers` threads, each taking the next index as it
/// finishes one; results in index order. With one worker (or one job) everything runs here.
pub fn parallel_map<T: Send>(n: usize, workers: usize, f: impl Fn(usize) -> T + Sync) -> Vec<T> {
    if workers <= 1 || n <= 1 {
        return (0..n).map(f).collect();
    }
    let next = AtomicUsize::new(0);
    let results: Vec<Mutex<Option<T>>> = (0..n).map(|_| Mutex::new(None)).collect();
    std::thread::scope(|scope| {
        for _ in 0..workers.min(n) {
            scope.spawn(|| loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= n {
                    break;
                }
                let value = f(i);
                *results[i].lock().expect("a result slot") = Some(value);
            });
        }
    });
    results.into_iter().map(|r| r.into_inner().expect("a result slot").expect("every job ran")).collect()
}
