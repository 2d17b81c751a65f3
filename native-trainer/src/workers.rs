//! A queue of numbered jobs over scoped threads: the CLI's one way to use several cores (core
//! owns no threads), and how many parts a training step is cut into.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

use anyhow::{bail, Result};
use savant_core::train::{Job, PartResult, Runner};

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

/// `--threads`: given, or one per core on the CPU (at most one per 4 rows), one on a GPU.
pub fn parts(threads: Option<usize>, device_name: &str, batch_size: usize) -> Result<usize> {
    Ok(match threads {
        Some(0) => bail!("--threads must be at least 1"),
        Some(n) => n,
        None if device_name.starts_with("cpu") => {
            std::thread::available_parallelism().map_or(1, |n| n.get()).min((batch_size / 4).max(1))
        }
        None => 1,
    })
}

/// Runs the parts of each step on up to `.0` threads, results in part order.
pub struct Threads(pub usize);

impl Threads {
    /// Who computes a step's parts: these threads, spread over `devices` when there are several.
    pub fn parts<'a, B>(&'a self, devices: &'a [burn::tensor::Device]) -> savant_core::train::Parts<'a, B> {
        use savant_core::train::Parts;
        if devices.len() > 1 {
            Parts::Devices(devices, self)
        } else {
            Parts::Runner(self)
        }
    }
}

impl Runner for Threads {
    fn run<'a>(&self, jobs: Vec<Job<'a>>) -> Vec<PartResult> {
        let jobs: Vec<Mutex<Option<Job<'a>>>> = jobs.into_iter().map(|j| Mutex::new(Some(j))).collect();
        parallel_map(jobs.len(), self.0, |i| {
            let job = jobs[i].lock().expect("a job slot").take().expect("each job runs once");
            job()
        })
    }
}

/// "2 threads" or "1 thread, bf16 matmuls": how a run computes.
pub fn threads_text(threads: usize, precision: savant_core::model::Precision) -> String {
    let plural = if threads == 1 { "" } else { "s" };
    match precision {
        savant_core::model::Precision::F32 => format!("{threads} thread{plural}"),
        p => format!("{threads} thread{plural}, {p} matmuls"),
    }
}
