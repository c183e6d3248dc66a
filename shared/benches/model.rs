//! Validate, lay out and render: the default design and one with 32 cascaded replicas; and read
//! a config.yml written by tpaexec configure.

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
    // TPA's own file for Patroni with HAProxy and 3 cascaded replicas: 13 instances.
    let tpa = include_str!("../tests/fixtures/tpa/legacy-aws-patroni-haproxy-c3.yml");
    c.bench_function("read TPA's config.yml (13 instances)", |b| {
        b.iter(|| m1studio_shared::config::read(black_box(tpa)))
    });
    c.bench_function("link encode+decode default design", |b| {
        b.iter(|| {
            m1studio_shared::link::decode(&m1studio_shared::link::encode(black_box(&default)))
        })
    });
}

criterion_group!(benches, model);
criterion_main!(benches);
