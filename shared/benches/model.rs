//! Validate, lay out and render: the default design and one with 32 cascaded replicas.

use criterion::{Criterion, criterion_group, criterion_main};
use m1studio_shared::{Draft, configure};
use std::hint::black_box;

fn model(c: &mut Criterion) {
    let default = Draft::starter();
    let large = Draft {
        num_cascaded_replicas: Some("32".into()),
        ..Draft::starter()
    };
    c.bench_function("configure default design", |b| {
        b.iter(|| configure(black_box(&default)))
    });
    c.bench_function("configure 32 cascaded replicas", |b| {
        b.iter(|| configure(black_box(&large)))
    });
    c.bench_function("link encode+decode default design", |b| {
        b.iter(|| {
            m1studio_shared::link::decode(&m1studio_shared::link::encode(black_box(&default)))
        })
    });
}

criterion_group!(benches, model);
criterion_main!(benches);
