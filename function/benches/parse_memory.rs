//! Memory and scaling of `parse_response`, measured with a counting global allocator.
//!
//! For 1,000, 10,000 and 100,000 series it prints the body size, the peak of live heap bytes
//! while parsing (the body itself excluded), all bytes allocated, the allocation count and the
//! time per series (the best of rounds in which the sizes take turns). It fails when memory
//! per body byte or time per series at 100,000 series is more than twice that at 1,000: the
//! mark of a step that grows faster than the body. The `spaced` case reads the same answers
//! re-encoded with spaces, whose label sets are all copied out of the body.

mod support;

use std::alloc::{GlobalAlloc, Layout, System};
use std::hint::black_box;
use std::process::ExitCode;
use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};
use std::time::{Duration, Instant};

use kafka_lag_scaler::config::Aggregation;
use kafka_lag_scaler::prometheus::parse_response;

/// The system allocator, counting live bytes, their peak, total bytes and calls.
struct Counting;

static LIVE: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);
static TOTAL: AtomicUsize = AtomicUsize::new(0);
static CALLS: AtomicUsize = AtomicUsize::new(0);

fn grew(bytes: usize) {
    let live = LIVE.fetch_add(bytes, Relaxed) + bytes;
    PEAK.fetch_max(live, Relaxed);
    TOTAL.fetch_add(bytes, Relaxed);
    CALLS.fetch_add(1, Relaxed);
}

// SAFETY: every call is forwarded unchanged to the system allocator; only counters are added.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        grew(layout.size());
        System.alloc(layout)
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE.fetch_sub(layout.size(), Relaxed);
        System.dealloc(ptr, layout)
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        LIVE.fetch_sub(layout.size(), Relaxed);
        grew(new_size);
        System.realloc(ptr, layout, new_size)
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

struct Measure {
    series: usize,
    body_bytes: usize,
    peak_bytes: usize,
    total_bytes: usize,
    allocations: usize,
    per_series: Duration,
}

impl Measure {
    fn peak_per_body_byte(&self) -> f64 {
        self.peak_bytes as f64 / self.body_bytes as f64
    }
}

/// Writes a body of so many series.
type Writer = fn(usize) -> Vec<u8>;

const SIZES: [usize; 3] = [1_000, 10_000, 100_000];

/// Rounds of timing; each times every size once, over 100,000 series' worth of parses.
const ROUNDS: usize = 20;

fn measure_all(aggregation: Aggregation, write: Writer) -> Vec<Measure> {
    let bodies: Vec<Vec<u8>> = SIZES.iter().map(|&series| write(series)).collect();
    let mut rows: Vec<Measure> = SIZES
        .iter()
        .zip(&bodies)
        .map(|(&series, body)| measure_memory(series, body, aggregation))
        .collect();
    // The sizes take turns, so that a slow spell of a shared host slows them all alike
    // instead of one; the best round of each is kept.
    for _ in 0..ROUNDS {
        for (row, body) in rows.iter_mut().zip(&bodies) {
            let repeat = SIZES[SIZES.len() - 1] / row.series;
            let start = Instant::now();
            for _ in 0..repeat {
                black_box(parse_response(black_box(body), aggregation)).ok();
            }
            let per_series = start.elapsed() / (repeat * row.series) as u32;
            row.per_series = row.per_series.min(per_series);
        }
    }
    rows
}

fn measure_memory(series: usize, body: &[u8], aggregation: Aggregation) -> Measure {
    let base = LIVE.load(Relaxed);
    PEAK.store(base, Relaxed);
    let (total, calls) = (TOTAL.load(Relaxed), CALLS.load(Relaxed));
    let reading = parse_response(black_box(body), aggregation);
    let peak_bytes = PEAK.load(Relaxed) - base;
    let total_bytes = TOTAL.load(Relaxed) - total;
    let allocations = CALLS.load(Relaxed) - calls;
    assert!(reading.is_ok(), "{series} series: {reading:?}");

    Measure {
        series,
        body_bytes: body.len(),
        peak_bytes,
        total_bytes,
        allocations,
        per_series: Duration::MAX,
    }
}

fn main() -> ExitCode {
    // `cargo bench` passes `--bench`; a filter argument, if any, is not used here.
    let mut failed = false;
    let cases: [(&str, Aggregation, Writer); 3] = [
        ("max", Aggregation::Max, support::vector_body),
        ("sum", Aggregation::Sum, support::vector_body),
        ("max, spaced", Aggregation::Max, support::spaced_vector_body),
    ];
    for (name, aggregation, write) in cases {
        println!("parse_response, {name}:");
        println!(
            "  {:>8} {:>12} {:>12} {:>9} {:>12} {:>9} {:>10}",
            "series", "body B", "peak B", "peak/B", "allocated B", "allocs", "ns/series"
        );
        let rows = measure_all(aggregation, write);
        for row in &rows {
            println!(
                "  {:>8} {:>12} {:>12} {:>9.2} {:>12} {:>9} {:>10}",
                row.series,
                row.body_bytes,
                row.peak_bytes,
                row.peak_per_body_byte(),
                row.total_bytes,
                row.allocations,
                row.per_series.as_nanos()
            );
        }
        let (small, large) = (&rows[0], &rows[rows.len() - 1]);
        let memory_growth = large.peak_per_body_byte() / small.peak_per_body_byte();
        let time_growth = large.per_series.as_secs_f64() / small.per_series.as_secs_f64();
        println!(
            "  1k -> 100k: peak per body byte x{memory_growth:.2}, time per series \
             x{time_growth:.2} (linear is x1)"
        );
        if memory_growth > 2.0 || time_growth > 2.0 {
            println!("  FAIL: a step grows faster than the body");
            failed = true;
        }
    }
    if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}
