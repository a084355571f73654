//! The policy decision, once per row family: it runs once per tick and must stay negligible
//! next to the two reads.

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion};
use kafka_lag_scaler::config::Thresholds;
use kafka_lag_scaler::policy::{decide, Group, Lag};

fn group(desired_capacity: i32) -> Group {
    Group {
        desired_capacity,
        max_size: 10,
        suspended_processes: vec!["AZRebalance".to_owned()],
        desired_capacity_type: None,
    }
}

fn decisions(c: &mut Criterion) {
    let thresholds = Thresholds {
        high: 10_000_000,
        low: 100_000,
        scale_out_capacity: 4,
        scale_in_capacity: 0,
    };
    let known = |value| Lag::Known {
        value,
        partial: false,
    };
    let cases = [
        ("scale_out", known(12_000_000), group(0)),
        ("hold_between_thresholds", known(5_000_000), group(0)),
        ("scale_in", known(40_000), group(4)),
        ("skip_unknown_lag", Lag::Unknown, group(4)),
    ];
    let mut bench = c.benchmark_group("decide");
    for (name, lag, group) in &cases {
        bench.bench_function(*name, |b| {
            b.iter(|| decide(black_box(*lag), black_box(group), black_box(&thresholds)))
        });
    }
    bench.finish();
}

criterion_group!(benches, decisions);
criterion_main!(benches);
