//! Intake handler throughput on the embedded store: fresh intents (a conditional create and
//! an announce each) and duplicates (a create that finds the old item), through the same
//! `intake::events::handle` the `intake-events` Lambda runs. Prints requests per second; run with
//! `cargo bench --bench intake_throughput`.

use batch_orchestrator::embedded::{Embedded, EmbeddedOptions};
use serde_json::json;
use std::time::Instant;

const N: usize = 2_000;

fn payload(i: usize) -> serde_json::Value {
    json!({
        "intentId": format!("bench-{i}"),
        "userId": "bench-user",
        "images": [
            "uploads/bench-user/2026-11-28/a.png",
            "uploads/bench-user/2026-11-28/b.png",
            "uploads/bench-user/2026-11-28/c.png"
        ]
    })
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let app = Embedded::open(EmbeddedOptions::new(dir.path()))?;

    let start = Instant::now();
    for i in 0..N {
        let answer = app.intake(payload(i)).await;
        anyhow::ensure!(
            answer["statusCode"] == 202 && answer["cached"] == false,
            "fresh intake failed: {answer}"
        );
    }
    let fresh = start.elapsed();

    let start = Instant::now();
    for i in 0..N {
        let answer = app.intake(payload(i)).await;
        anyhow::ensure!(
            answer["statusCode"] == 202 && answer["cached"] == true,
            "duplicate intake failed: {answer}"
        );
    }
    let dup = start.elapsed();

    let start = Instant::now();
    for i in 0..N {
        let mut bad = payload(i);
        bad["images"] = json!(["../etc/passwd"]);
        let answer = app.intake(bad).await;
        anyhow::ensure!(
            answer["statusCode"] == 400,
            "bad intake not refused: {answer}"
        );
    }
    let rejected = start.elapsed();

    let rate = |d: std::time::Duration| N as f64 / d.as_secs_f64();
    println!("intake throughput, embedded SQLite store, {N} requests each, one task:");
    println!(
        "  fresh intents : {:>8.0} req/s  ({:.1} us each)",
        rate(fresh),
        fresh.as_micros() as f64 / N as f64
    );
    println!(
        "  duplicates    : {:>8.0} req/s  ({:.1} us each)",
        rate(dup),
        dup.as_micros() as f64 / N as f64
    );
    println!(
        "  rejected (400): {:>8.0} req/s  ({:.1} us each)",
        rate(rejected),
        rejected.as_micros() as f64 / N as f64
    );
    Ok(())
}
