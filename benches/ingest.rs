//! Writer-side throughput of the core, without Python: classify, encode, chain and commit
//! events into a file ledger. `cargo bench --bench ingest` prints events/s per phase, with the
//! CPU time beside the wall time (the store append: the calling thread's; end to end: the
//! process's, i.e. the caller's and both writer threads').

use std::sync::Arc;
use std::time::Instant;

use _core::classify::Ruleset;
use _core::event::{Event, EventKind};
use _core::ledger::{Durability, Store};
use _core::meter::Recorder;
use parking_lot::Mutex;

fn call(i: u64) -> Event {
    let mut e = Event::new(EventKind::ModelCall);
    e.provider = Some("openai".into());
    e.model = Some("gpt-5".into());
    e.api = Some("chat.completions".into());
    e.venue = Some("azure".into());
    e.session_id = Some("0193a3c4-7d2e-7b1a-9c4f-2e8d1a6b3c5f".into());
    e.agent = Some("bench".into());
    e.input_tokens = Some(i);
    e.output_tokens = Some(42);
    e.finish().unwrap()
}

/// CPU time of `clock` (a `libc::CLOCK_*_CPUTIME_ID`) in seconds.
fn cpu(clock: libc::clockid_t) -> f64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: a valid clock id and a pointer to a timespec the call fills.
    unsafe { libc::clock_gettime(clock, &mut ts) };
    ts.tv_sec as f64 + ts.tv_nsec as f64 * 1e-9
}

/// CPU seconds used so far by each thread of this process named `statemeter-*` (the writer
/// threads), from /proc (Linux); empty elsewhere.
fn writer_threads_cpu() -> Vec<(String, f64)> {
    let mut out = Vec::new();
    let Ok(tasks) = std::fs::read_dir("/proc/self/task") else {
        return out;
    };
    // SAFETY: sysconf has no preconditions.
    let tick = unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as f64;
    for task in tasks.flatten() {
        let comm = std::fs::read_to_string(task.path().join("comm")).unwrap_or_default();
        let stat = std::fs::read_to_string(task.path().join("stat")).unwrap_or_default();
        let name = comm.trim();
        if !name.starts_with("statemeter-") {
            continue;
        }
        // Fields after the command's closing parenthesis: state is field 3, utime 14, stime 15.
        let Some((_, rest)) = stat.rsplit_once(')') else {
            continue;
        };
        let f: Vec<&str> = rest.split_whitespace().collect();
        let ticks: f64 = f[11].parse::<f64>().unwrap_or(0.0) + f[12].parse::<f64>().unwrap_or(0.0);
        out.push((name.to_string(), ticks / tick));
    }
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out
}

fn main() {
    let n: u64 = std::env::var("N")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_000_000);
    let rs = Ruleset::builtin_default();
    let events: Vec<Event> = (0..n).map(call).collect();

    let t = Instant::now();
    for e in &events {
        std::hint::black_box(rs.classify(e));
    }
    let classify = t.elapsed().as_secs_f64();

    let t = Instant::now();
    let mut buf = String::new();
    for e in &events {
        buf.clear();
        e.write_canonical_json(&mut buf).unwrap();
    }
    let encode = t.elapsed().as_secs_f64();

    let dir = tempfile::tempdir().unwrap();
    let mut store = Store::open(Some(&dir.path().join("append.db")), Durability::Batch).unwrap();
    let pendings: Vec<_> = events
        .iter()
        .map(|e| {
            let mut ev = String::new();
            e.write_canonical_json(&mut ev).unwrap();
            let mut cl = String::new();
            rs.classify(e).write_canonical_json(&mut cl);
            _core::ledger::Pending {
                id: e.id.to_string(),
                event_json: ev,
                classification_json: cl,
                ts_explicit: false,
            }
        })
        .collect();
    let (t, c) = (Instant::now(), cpu(libc::CLOCK_THREAD_CPUTIME_ID));
    for chunk in pendings.chunks(8192) {
        store.append(chunk).unwrap();
    }
    let append = t.elapsed().as_secs_f64();
    let append_cpu = cpu(libc::CLOCK_THREAD_CPUTIME_ID) - c;

    let store = Store::open(Some(&dir.path().join("ingest.db")), Durability::Batch).unwrap();
    let rec = Recorder::new(Arc::new(Mutex::new(store)), rs, Durability::Batch, 16_384).unwrap();
    let (t, c) = (Instant::now(), cpu(libc::CLOCK_PROCESS_CPUTIME_ID));
    for e in events {
        let r = rec.wrap(e);
        if let Err(back) = rec.try_push(r).unwrap() {
            rec.push_blocking(back).unwrap();
        }
    }
    rec.flush().unwrap();
    let total = t.elapsed().as_secs_f64();
    let total_cpu = cpu(libc::CLOCK_PROCESS_CPUTIME_ID) - c;
    let threads = writer_threads_cpu();
    drop(rec);
    let nf = n as f64;
    println!("events: {n}");
    println!("classify: {:.0} ns/event", classify / nf * 1e9);
    println!("encode event JSON: {:.0} ns/event", encode / nf * 1e9);
    println!(
        "store append (record, chain, SQLite insert+commit): {:.0} ns/event ({:.0} ns CPU)",
        append / nf * 1e9,
        append_cpu / nf * 1e9
    );
    println!(
        "end to end (push, classify, encode, chain, commit): {:.0} events/s ({:.0} ns/event, {:.0} ns CPU in all threads)",
        nf / total,
        total / nf * 1e9,
        total_cpu / nf * 1e9
    );
    for (name, secs) in threads {
        println!(
            "end to end, thread {name}: {:.0} ns CPU/event",
            secs / nf * 1e9
        );
    }
}
