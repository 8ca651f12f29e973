//! Criterion benches of the per-request hot path: parsing a response head and
//! classifying it, and folding a sample into the collector (windowed histogram,
//! outcome counts, gap bitmap, version tracking).

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use zdt_check::load::response::{parse_head, ReadSpec};
use zdt_check::load::Outcome;
use zdt_check::stats::{Collector, RequestKindInfo, Sample};

fn parse_and_classify(c: &mut Criterion) {
    let raw = b"HTTP/1.1 200 OK\r\nServer: nginx/1.22.1\r\nDate: Sat, 21 Nov 2026 23:00:00 GMT\r\nContent-Type: text/plain\r\nContent-Length: 11\r\nConnection: keep-alive\r\nX-App-Version: v2\r\n\r\nversion=v2\n";
    let spec = ReadSpec {
        version_header: Some("x-app-version".into()),
        keep_body: false,
        want_echo: false,
        head_request: false,
    };
    let mut g = c.benchmark_group("response");
    g.throughput(Throughput::Elements(1));
    g.bench_function("parse_head+classify", |b| {
        b.iter(|| {
            let (n, reply, _) = parse_head(black_box(raw), &spec).unwrap().unwrap();
            black_box((n, Outcome::from_status(reply.status), reply.version(raw)))
        })
    });
    g.finish();
}

fn record_sample(c: &mut Criterion) {
    let mut g = c.benchmark_group("collector");
    g.throughput(Throughput::Elements(1));
    for kinds in [0u8, 3] {
        let name = if kinds == 0 { "add" } else { "add, 3-kind mix" };
        g.bench_function(name, |b| {
            let mut col = Collector::new(100_000_000, 1_000_000);
            if kinds > 0 {
                col.track_kinds(
                    (0..kinds)
                        .map(|k| RequestKindInfo {
                            name: format!("k{k}"),
                            method: "GET".into(),
                            path: "/".into(),
                            weight: 1,
                            body_bytes: 0,
                            upload_ms: None,
                            keep_alive: true,
                            echo: false,
                            protocol: "h1".into(),
                        })
                        .collect(),
                );
            }
            let mut t: u64 = 0;
            b.iter(|| {
                // 20 µs apart: a 50k req/s stream, crossing windows as it goes.
                t += 20_000;
                col.add(black_box(&Sample {
                    scheduled_ns: t,
                    sent_ns: t + 1_000,
                    done_ns: t + 250_000 + (t % 7_000),
                    outcome: Outcome::Ok,
                    version: (t / 1_000_000_000 % 2) as u16,
                    cut: zdt_check::load::Cut::NONE,
                    kind: if kinds == 0 {
                        0
                    } else {
                        (t / 20_000 % 3) as u8
                    },
                    conn: (t / 20_000 % 64) as u32 + 1,
                    conn_opened_ns: 0,
                }))
            })
        });
    }
    g.finish();
}

criterion_group!(benches, parse_and_classify, record_sample);
criterion_main!(benches);
