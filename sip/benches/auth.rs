//! Authentication hot paths: Digest verification (MD5, SHA-256), Milenage vector
//! generation, nonce issue + check.
#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use criterion::{black_box, criterion_group, criterion_main, Criterion};
use ims_sip::auth::digest::{response, Algorithm, Credentials, Ha1, QopAuth};
use ims_sip::auth::{AuthVector, Milenage, Nonces, Sqn};

fn credentials(algorithm: Algorithm) -> (Credentials, Ha1) {
    let ha1 = Ha1::compute(algorithm, "alice@ims.example", "ims.example", b"secret");
    let nonce = "dcd98b7102dd2f0e8b11d0f600bfb0c093";
    let uri = "sip:ims.example";
    let qop = QopAuth {
        nc: "00000001",
        cnonce: "0a4f113b",
    };
    let rsp = response(algorithm, &ha1, "REGISTER", uri, nonce, Some(qop)).unwrap();
    let value = format!(
        "Digest username=\"alice@ims.example\", realm=\"ims.example\", nonce=\"{nonce}\", \
         uri=\"{uri}\", response=\"{rsp}\", algorithm={algorithm}, qop=auth, nc=00000001, \
         cnonce=\"0a4f113b\""
    );
    (Credentials::parse(&value).unwrap(), ha1)
}

fn digest(c: &mut Criterion) {
    for (name, algorithm) in [
        ("digest_md5_verify", Algorithm::Md5),
        ("digest_sha256_verify", Algorithm::Sha256),
    ] {
        let (creds, ha1) = credentials(algorithm);
        c.bench_function(name, |b| {
            b.iter(|| black_box(&creds).verify(black_box(&ha1), "REGISTER"))
        });
    }
}

fn milenage(c: &mut Criterion) {
    let k = [0x46u8; 16];
    let op = [0xcdu8; 16];
    let m = Milenage::with_op(&k, &op);
    let sqn = Sqn::new(0x20).unwrap();
    c.bench_function("milenage_vector", |b| {
        b.iter(|| AuthVector::generate(black_box(&m), [0x80, 0], sqn, black_box([7u8; 16])))
    });
}

fn nonce(c: &mut Criterion) {
    let nonces = Nonces::new([9u8; 32], 30, 100_000);
    let mut now = 1_700_000_000u64;
    c.bench_function("nonce_issue_check_use", |b| {
        b.iter(|| {
            now += 1;
            let n = nonces.issue(now);
            let checked = nonces.check(&n, 16, now);
            checked.map(|c| nonces.record_use(&c, Some(1)))
        })
    });
}

criterion_group!(benches, digest, milenage, nonce);
criterion_main!(benches);
