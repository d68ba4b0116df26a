//! Cost of a cached decision in the request filter (the question's key and one lookup in
//! the decision cache), and the cache's memory per decision at 100 000 decisions.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use cloud_auth::filter::decisions::{DecisionCache, Key};
use criterion::{black_box, criterion_group, criterion_main, Criterion};

fn question(i: usize) -> [String; 7] {
    [
        "2b5c9f3e8a7d4f0c9b1e6a3d5c7f9e1a".into(),
        "5b3c0b0cd7e44a4b8c40b630a4be5479".into(),
        "member\nreader".into(),
        format!("sip:user{i}@ims.example.net"),
        format!("sip:user{i}@ims.example.net"),
        "5b3c0b0cd7e44a4b8c40b630a4be5479".into(),
        "REGISTER".into(),
    ]
}

fn key(q: &[String; 7]) -> Key {
    let parts: Vec<&str> = q.iter().map(String::as_str).collect();
    Key::of(&parts)
}

fn bench(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .unwrap();
    let _guard = rt.enter();
    let n = 100_000;
    let cache = DecisionCache::new(2 * n, 300);
    for i in 0..n {
        let (_, epoch) = cache.get(&key(&question(i)));
        cache.insert(key(&question(i)), true, epoch);
    }
    eprintln!(
        "decision cache: {} decisions, {:.1} bytes each",
        cache.len(),
        cache.bytes_per_decision()
    );
    let q = question(4242);
    c.bench_function("filter/cached decision (key + lookup, 100k held)", |b| {
        b.iter(|| {
            let (hit, _) = cache.get(&key(black_box(&q)));
            assert_eq!(hit, Some(true));
        })
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);
