//! The disk's own fsync latency where the worker keeps its store: the floor
//! under any answer that waits for a durable commit. A webhook answered
//! after its batch's write-ahead log is fsynced cannot be faster than this,
//! so the paced loop's percentiles are read against it.

use crate::report::Figure;
use crate::stats::{Samples, ms};
use std::io::Write;
use std::time::{Duration, Instant};

/// Syncs measured (at [`RATE`], so about 2 s).
const SYNCS: usize = 1_000;
/// The paced loop's rate: the disk is as busy as it is there.
const RATE: u32 = 500;
/// Bytes written before each sync: about one small batch of deliveries in
/// the write-ahead log (two 4 KiB pages).
const WRITE: usize = 8 * 1024;

/// `fdatasync` after an 8 KiB append, at 500 a second, in `dir`.
pub async fn figures(s: &str, dir: &std::path::Path) -> anyhow::Result<Vec<Figure>> {
    let path = dir.join("disk-floor.bin");
    let samples = tokio::task::spawn_blocking(move || measure(&path)).await??;
    let pct = |p| samples.percentile(p).map(ms);
    let note = format!(
        "the disk alone: {SYNCS} fdatasync of an {} KiB append at {RATE}/s beside the store, before the worker starts",
        WRITE / 1024
    );
    Ok(vec![
        Figure::new(s, "disk fdatasync p50", pct(50.0), "ms").note(note),
        Figure::new(s, "disk fdatasync p99", pct(99.0), "ms"),
        Figure::new(s, "disk fdatasync p99.9", pct(99.9), "ms"),
    ])
}

fn measure(path: &std::path::Path) -> anyhow::Result<Samples> {
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(true)
        .write(true)
        .open(path)?;
    let block = vec![b'x'; WRITE];
    let mut samples = Samples::default();
    let period = Duration::from_secs(1) / RATE;
    let started = Instant::now();
    for i in 0..SYNCS {
        file.write_all(&block)?;
        let at = Instant::now();
        file.sync_data()?;
        samples.push(at.elapsed());
        let next = started + period * (i as u32 + 1);
        std::thread::sleep(next.saturating_duration_since(Instant::now()));
    }
    drop(file);
    std::fs::remove_file(path)?;
    Ok(samples)
}
