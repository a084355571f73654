//! Parsing and aggregating Prometheus responses of 1, 1,000 and 100,000 series.
//!
//! Budget (BENCHMARKS.md): 100,000 series in under 50 ms. Throughput is reported per series,
//! so a step that grows faster than the body shows as a falling rate from 1k to 100k. The
//! `spaced` rows read the same answers re-encoded with spaces, which takes the slower path
//! that copies each label set out of the body.

mod support;

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use kafka_lag_scaler::config::Aggregation;
use kafka_lag_scaler::prometheus::{parse_response, LagReading, Parsed};

fn is_known(parsed: &Parsed) -> bool {
    matches!(parsed.reading, LagReading::Known(_))
}

fn parse_and_aggregate(c: &mut Criterion) {
    let mut group = c.benchmark_group("parse_response");
    for series in [1, 1_000, 100_000] {
        let body = support::vector_body(series);
        group.throughput(Throughput::Elements(series as u64));
        if series >= 100_000 {
            group.sample_size(20);
        }
        for (name, aggregation) in [("max", Aggregation::Max), ("sum", Aggregation::Sum)] {
            group.bench_with_input(BenchmarkId::new(name, series), &body, |b, body| {
                b.iter(|| {
                    let reading = parse_response(black_box(body), aggregation);
                    assert!(reading.as_ref().is_ok_and(is_known));
                    reading
                })
            });
        }
    }
    for series in [1_000, 100_000] {
        let body = support::spaced_vector_body(series);
        group.throughput(Throughput::Elements(series as u64));
        group.sample_size(if series >= 100_000 { 20 } else { 100 });
        group.bench_with_input(BenchmarkId::new("spaced", series), &body, |b, body| {
            b.iter(|| {
                let reading = parse_response(black_box(body), Aggregation::Max);
                assert!(reading.as_ref().is_ok_and(is_known));
                reading
            })
        });
    }
    group.finish();
}

criterion_group!(benches, parse_and_aggregate);
criterion_main!(benches);
