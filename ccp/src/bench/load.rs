//! The load generator every scenario shares: the same client code drives the
//! baseline and the system under test, so their ratio means something.
//!
//! Closed loop: `concurrency` workers each send, wait, send again, for a fixed
//! duration after a warm-up — maximum throughput. Open loop: requests are
//! scheduled at a fixed rate and each latency is measured from its *intended*
//! send time, so a stall shows up in the tail instead of silently slowing the
//! sender (no coordinated omission). Every loop is bounded in time and count.

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use serde::Serialize;
use tokio::sync::Mutex;

/// How to drive a closed-loop run.
#[derive(Debug, Clone, Copy)]
pub struct ClosedLoop {
    /// Workers sending at once.
    pub concurrency: usize,
    /// Time before measuring starts.
    pub warmup: Duration,
    /// Measured time.
    pub duration: Duration,
    /// Upper bound on requests sent (warm-up included), whatever the duration.
    pub max_requests: u64,
}

/// How to drive an open-loop run.
#[derive(Debug, Clone, Copy)]
pub struct OpenLoop {
    /// Requests per second, scheduled evenly.
    pub rate: u64,
    /// Time before measuring starts (at the same rate).
    pub warmup: Duration,
    /// Measured time.
    pub duration: Duration,
    /// Requests allowed in flight before the generator counts a request as
    /// dropped (bounds memory when the target stalls).
    pub max_in_flight: usize,
}

/// What a run measured.
#[derive(Debug, Clone, Serialize)]
pub struct RunReport {
    /// Successful requests measured.
    pub requests: u64,
    /// Failed requests measured (and, in open loop, requests dropped at the in-flight bound).
    pub errors: u64,
    /// Measured wall time in seconds.
    pub seconds: f64,
    /// Successful requests per second.
    pub rps: f64,
    /// Median latency in milliseconds.
    pub p50_ms: f64,
    /// 99th percentile latency in milliseconds.
    pub p99_ms: f64,
    /// 99.9th percentile latency in milliseconds.
    pub p999_ms: f64,
    /// Largest latency in milliseconds.
    pub max_ms: f64,
}

fn new_histogram() -> Histogram<u64> {
    // 1 µs .. 60 s at 3 significant digits: constant, valid bounds.
    Histogram::new_with_bounds(1, 60_000_000, 3).expect("valid histogram bounds")
}

fn micros(d: Duration) -> u64 {
    u64::try_from(d.as_micros()).unwrap_or(u64::MAX).max(1)
}

fn report(hist: &Histogram<u64>, requests: u64, errors: u64, elapsed: Duration) -> RunReport {
    let ms = |q: f64| hist.value_at_quantile(q) as f64 / 1000.0;
    let seconds = elapsed.as_secs_f64();
    RunReport {
        requests,
        errors,
        seconds,
        rps: if seconds > 0.0 {
            requests as f64 / seconds
        } else {
            0.0
        },
        p50_ms: ms(0.50),
        p99_ms: ms(0.99),
        p999_ms: ms(0.999),
        max_ms: hist.max() as f64 / 1000.0,
    }
}

/// Runs a closed loop: each worker calls `call(worker, sequence)` back to back.
pub async fn closed_loop<F, Fut, E>(spec: ClosedLoop, call: F) -> RunReport
where
    F: Fn(usize, u64) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<(), E>> + Send,
{
    let call = Arc::new(call);
    let sent = Arc::new(AtomicU64::new(0));
    let start = Instant::now();
    let measure_from = start + spec.warmup;
    let end = measure_from + spec.duration;
    let mut workers = Vec::with_capacity(spec.concurrency);
    for worker in 0..spec.concurrency {
        let call = call.clone();
        let sent = sent.clone();
        workers.push(tokio::spawn(async move {
            let mut hist = new_histogram();
            let (mut ok, mut failed) = (0u64, 0u64);
            loop {
                let seq = sent.fetch_add(1, Ordering::Relaxed);
                if seq >= spec.max_requests {
                    break;
                }
                let t0 = Instant::now();
                if t0 >= end {
                    break;
                }
                let result = call(worker, seq).await;
                let t1 = Instant::now();
                if t0 >= measure_from && t1 <= end {
                    match result {
                        Ok(()) => {
                            ok += 1;
                            let _ = hist.record(micros(t1 - t0));
                        }
                        Err(_) => failed += 1,
                    }
                }
            }
            (hist, ok, failed)
        }));
    }
    let mut hist = new_histogram();
    let (mut ok, mut failed) = (0, 0);
    for worker in workers {
        if let Ok((h, o, f)) = worker.await {
            let _ = hist.add(&h);
            ok += o;
            failed += f;
        }
    }
    let measured = Instant::now()
        .min(end)
        .saturating_duration_since(measure_from);
    report(&hist, ok, failed, measured)
}

/// Runs an open loop at a fixed rate; latency counts from each request's
/// intended send time.
pub async fn open_loop<F, Fut, E>(spec: OpenLoop, call: F) -> RunReport
where
    F: Fn(u64) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<(), E>> + Send + 'static,
{
    let mut reports = open_loop_interleaved(spec, spec.warmup + spec.duration, 1, move |_, seq| {
        call(seq)
    })
    .await;
    reports
        .pop()
        .unwrap_or_else(|| report(&new_histogram(), 0, 0, spec.duration))
}

/// Runs one open loop at a fixed rate whose requests go to `targets`
/// targets in turn, a `slice` of time each (target 0, 1, …, 0, 1, …), so
/// that whatever else happens on the machine during the run (a neighbour's
/// build step, a scheduler stall) falls on every target alike. Each target
/// gets `spec.duration` of measured time (the run lasts
/// `spec.warmup + targets × spec.duration`); latency counts from each
/// request's intended send time. Returns one report per target.
pub async fn open_loop_interleaved<F, Fut, E>(
    spec: OpenLoop,
    slice: Duration,
    targets: usize,
    call: F,
) -> Vec<RunReport>
where
    F: Fn(usize, u64) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<(), E>> + Send + 'static,
{
    let targets = targets.max(1);
    let slice_ns = slice.as_nanos().max(1);
    let call = Arc::new(call);
    let stats: Arc<Vec<TargetStats>> = Arc::new((0..targets).map(|_| TargetStats::new()).collect());
    let in_flight = Arc::new(tokio::sync::Semaphore::new(spec.max_in_flight));
    let interval = Duration::from_nanos(1_000_000_000 / spec.rate.max(1));
    let start = Instant::now();
    let measure_from = start + spec.warmup;
    let total_time = spec.warmup + spec.duration * u32::try_from(targets).unwrap_or(u32::MAX);
    let total = u64::try_from((total_time.as_nanos() / interval.as_nanos().max(1)).max(1))
        .unwrap_or(u64::MAX);
    let mut tasks = tokio::task::JoinSet::new();
    for seq in 0..total {
        let offset = interval * u32::try_from(seq).unwrap_or(u32::MAX);
        let intended = start + offset;
        let target = usize::try_from((offset.as_nanos() / slice_ns) % targets as u128).unwrap_or(0);
        tokio::time::sleep_until(tokio::time::Instant::from_std(intended)).await;
        let measured = intended >= measure_from;
        let Ok(permit) = in_flight.clone().try_acquire_owned() else {
            if measured {
                stats[target].failed.fetch_add(1, Ordering::Relaxed);
            }
            continue;
        };
        let (call, stats) = (call.clone(), stats.clone());
        tasks.spawn(async move {
            let succeeded = call(target, seq).await.is_ok();
            let latency = Instant::now().saturating_duration_since(intended);
            drop(permit);
            let s = &stats[target];
            if measured && succeeded {
                s.ok.fetch_add(1, Ordering::Relaxed);
                let _ = s.hist.lock().await.record(micros(latency));
            } else if measured {
                s.failed.fetch_add(1, Ordering::Relaxed);
            }
        });
        // Reap finished tasks as we go so the set stays small.
        while tasks.try_join_next().is_some() {}
    }
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while let Ok(Some(_)) = tokio::time::timeout_at(deadline, tasks.join_next()).await {}
    tasks.abort_all();
    let mut out = Vec::with_capacity(targets);
    for s in stats.iter() {
        let hist = s.hist.lock().await.clone();
        out.push(report(
            &hist,
            s.ok.load(Ordering::Relaxed),
            s.failed.load(Ordering::Relaxed),
            spec.duration,
        ));
    }
    out
}

/// The counters of one target of an open loop.
struct TargetStats {
    hist: Mutex<Histogram<u64>>,
    ok: AtomicU64,
    failed: AtomicU64,
}

impl TargetStats {
    fn new() -> Self {
        Self {
            hist: Mutex::new(new_histogram()),
            ok: AtomicU64::new(0),
            failed: AtomicU64::new(0),
        }
    }
}
