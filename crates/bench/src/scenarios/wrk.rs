//! The closed loop driven by `wrk` (the distribution's package), for
//! throughput figures the in-process generator cannot reach: reqwest,
//! signing and building each body cost the generator's one core more per
//! request than the worker spends on it, so past a few thousand requests a
//! second the figure was the generator's.
//!
//! The bodies are built and signed before the run (a `webhookTimestamp`
//! stays inside the worker's 60 s replay window for a short run), and the
//! Lua script cycles through them giving every request its own
//! `Linear-Delivery` (the dedupe key; the signature covers only the body),
//! a random UUID v4 as Linear sends (a sequential id would land every
//! insert on the last page of the store's unique index, which Linear's ids
//! do not),
//! so every request is a distinct delivery the worker must commit.

use anyhow::Context as _;
use secrecy::SecretString;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

/// What one `wrk` run reports.
#[derive(Debug)]
pub struct WrkRun {
    /// Requests answered (any status).
    pub requests: u64,
    /// Answered with a status other than 2xx/3xx.
    pub bad_status: u64,
    /// Connect, read, write and timeout errors.
    pub socket_errors: u64,
    pub elapsed: Duration,
    pub p50: Duration,
    pub p99: Duration,
    pub p999: Duration,
    /// [`ClosedLoop::once`]: from the first send to the answer of the last
    /// body (none if not every body was answered).
    pub once: Option<Duration>,
}

impl WrkRun {
    pub fn ok(&self) -> u64 {
        self.requests.saturating_sub(self.bad_status)
    }
}

/// Whether `wrk` can be run.
pub fn available() -> bool {
    Command::new("wrk")
        .arg("--version")
        .output()
        .is_ok_and(|o| !o.stdout.is_empty() || !o.stderr.is_empty())
}

/// The Lua script: loads `bodies.tsv` (signature, tab, body per line),
/// formats each request with a fresh delivery id, and prints one
/// machine-readable line at the end.
const SCRIPT: &str = r#"
local sigs, bodies, n, i = {}, {}, 0, 0
local file = os.getenv("CYRUS_WRK_BODIES")
for line in io.lines(file) do
  local tab = string.find(line, "\t", 1, true)
  n = n + 1
  sigs[n] = string.sub(line, 1, tab - 1)
  bodies[n] = string.sub(line, tab + 1)
end
local random, format = math.random, string.format
math.randomseed(tonumber(os.getenv("CYRUS_WRK_SEED")))
-- A UUID v4 from 16-bit draws (LuaJIT formats 32-bit values as signed).
local function uuid4()
  return format("%04x%04x-%04x-4%03x-%04x-%04x%04x%04x",
    random(0, 65535), random(0, 65535), random(0, 65535), random(0, 4095),
    random(32768, 49151), random(0, 65535), random(0, 65535), random(0, 65535))
end
local path, event = os.getenv("CYRUS_WRK_PATH"), os.getenv("CYRUS_WRK_EVENT")
-- Once: every body is sent once, in order; then the last body again under
-- the delivery id it was first sent with (answered "duplicate", not
-- counted) until the last first send is answered, when the thread stops.
-- The span from the first send to that answer is measured with the
-- monotonic clock (Lua has none finer than a second).
local once = os.getenv("CYRUS_WRK_ONCE") == "1"
local ffi = require("ffi")
ffi.cdef[[
typedef struct { long tv_sec; long tv_nsec; } cyrus_timespec;
int clock_gettime(int clock, cyrus_timespec *at);
]]
local at = ffi.new("cyrus_timespec")
local function now_us()
  ffi.C.clock_gettime(1, at)
  return tonumber(at.tv_sec) * 1000000 + math.floor(tonumber(at.tv_nsec) / 1000)
end
first_us, last_us, answered = 0, 0, 0
local last_id, checked = nil, false
request = function()
  -- wrk calls this once before the run to check what it builds, and
  -- sends nothing of that call: it must not use up a body.
  if not checked then
    checked = true
    return wrk.format("POST", path, {["Linear-Event"] = event}, bodies[1])
  end
  i = i + 1
  if i == 1 then first_us = now_us() end
  local k, id
  if once and i > n then
    k, id = n, last_id
  else
    k, id = once and i or (i % n) + 1, uuid4()
    if k == n then last_id = id end
  end
  return wrk.format("POST", path, {
    ["Content-Type"] = "application/json",
    ["Linear-Signature"] = sigs[k],
    ["Linear-Delivery"] = id,
    ["Linear-Event"] = event,
  }, bodies[k])
end
if once then
  response = function(status, headers, body)
    if not string.find(body, "duplicate", 1, true) then
      answered = answered + 1
      if answered == n then
        last_us = now_us()
        wrk.thread:stop()
      end
    end
  end
end
local threads = {}
setup = function(thread) table.insert(threads, thread) end
done = function(summary, latency, requests)
  local e = summary.errors
  local t = threads[1]
  io.write(string.format("CYRUS-WRK %d %d %d %d %d %d %d %d %d\n",
    summary.requests, e.status, e.connect + e.read + e.write + e.timeout,
    summary.duration, latency:percentile(50), latency:percentile(99),
    latency:percentile(99.9), t:get("answered"), t:get("last_us") - t:get("first_us")))
end
"#;

/// `wrk -t1 -c<connections> -d<duration>` pinned to `cpu` against the
/// webhook `url` with `bodies` (each signed with `secret`).
pub struct ClosedLoop<'a> {
    pub url: &'a str,
    pub secret: &'a SecretString,
    /// The `Linear-Event` header.
    pub event: &'a str,
    pub bodies: &'a [Vec<u8>],
    pub connections: usize,
    pub duration: Duration,
    pub cpu: usize,
    /// Every body sent once (see the script); the run ends when the last
    /// is answered, or at `duration`.
    pub once: bool,
}

impl ClosedLoop<'_> {
    /// Runs it, with its files in `dir`.
    pub fn run(&self, dir: &Path) -> anyhow::Result<WrkRun> {
        let ClosedLoop {
            url,
            secret,
            event,
            bodies,
            connections,
            duration,
            cpu,
            once,
        } = *self;
        let mut tsv = Vec::with_capacity(bodies.iter().map(|b| b.len() + 80).sum());
        for body in bodies {
            anyhow::ensure!(
                !body.contains(&b'\n') && !body.contains(&b'\t'),
                "a wrk body must be one line without tabs"
            );
            tsv.extend_from_slice(cyrus_linear::webhook::verify::sign(body, secret).as_bytes());
            tsv.push(b'\t');
            tsv.extend_from_slice(body);
            tsv.push(b'\n');
        }
        let bodies_path = dir.join("wrk-bodies.tsv");
        std::fs::write(&bodies_path, tsv)?;
        let script = dir.join("wrk-cyrus.lua");
        std::fs::write(&script, SCRIPT)?;
        // `wrk` takes the origin; the script names the path.
        let after_scheme = url.find("://").map_or(0, |i| i + 3);
        let (base, path) = url.split_at(
            url[after_scheme..]
                .find('/')
                .map_or(url.len(), |i| after_scheme + i),
        );
        let path = if path.is_empty() { "/" } else { path };
        let out = Command::new("taskset")
            .arg("-c")
            .arg(cpu.to_string())
            .arg("wrk")
            .args(["-t1", &format!("-c{connections}")])
            .arg(format!("-d{}s", duration.as_secs().max(1)))
            .arg("--timeout")
            .arg("10s")
            .arg("-s")
            .arg(&script)
            .arg(base)
            .env("CYRUS_WRK_BODIES", &bodies_path)
            .env(
                "CYRUS_WRK_SEED",
                (uuid::Uuid::new_v4().as_u128() as u32).to_string(),
            )
            .env("CYRUS_WRK_EVENT", event)
            .env("CYRUS_WRK_PATH", path)
            .env("CYRUS_WRK_ONCE", if once { "1" } else { "0" })
            .output()
            .context("running `taskset … wrk` (install the distribution's wrk package)")?;
        let stdout = String::from_utf8_lossy(&out.stdout);
        let line = stdout
            .lines()
            .find(|l| l.starts_with("CYRUS-WRK "))
            .with_context(|| {
                format!(
                    "wrk printed no summary line (exit {}):\n{stdout}\n{}",
                    out.status,
                    String::from_utf8_lossy(&out.stderr)
                )
            })?;
        let n: Vec<u64> = line
            .split_whitespace()
            .skip(1)
            .map(|v| v.parse().unwrap_or_default())
            .collect();
        anyhow::ensure!(n.len() == 9, "unexpected wrk summary {line:?}");
        Ok(WrkRun {
            requests: n[0],
            bad_status: n[1],
            socket_errors: n[2],
            elapsed: Duration::from_micros(n[3]),
            p50: Duration::from_micros(n[4]),
            p99: Duration::from_micros(n[5]),
            p999: Duration::from_micros(n[6]),
            once: (once && n[7] as usize == bodies.len()).then(|| Duration::from_micros(n[8])),
        })
    }
}
