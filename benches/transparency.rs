//! The Merkle tree's costs, without Python: what keeping the tree adds to appending, building it
//! for an existing ledger against `verify()`, a checkpoint of a ledger whose tree is current, and
//! inclusion and consistency proofs. `cargo bench --bench transparency` prints one line per
//! figure (wall and CPU time); `N` sets the ledger's size (default 1,000,000).

use std::time::Instant;

use _core::classify::Ruleset;
use _core::event::{Event, EventKind};
use _core::ledger::{verify, Durability, Pending, Store};
use _core::transparency::{checkpoint, SigningKey};

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

/// This process's CPU time, in seconds.
fn cpu() -> f64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: a valid clock id and a pointer to a timespec we own.
    unsafe { libc::clock_gettime(libc::CLOCK_PROCESS_CPUTIME_ID, &mut ts) };
    ts.tv_sec as f64 + ts.tv_nsec as f64 * 1e-9
}

/// (wall s, CPU s) of `f`.
fn timed<T>(f: impl FnOnce() -> T) -> (f64, f64, T) {
    let (w, c) = (Instant::now(), cpu());
    let out = f();
    (w.elapsed().as_secs_f64(), cpu() - c, out)
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    v[v.len() / 2]
}

fn main() {
    let n: u64 = std::env::var("N")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_000_000);
    let rs = Ruleset::builtin_default();
    let pendings: Vec<Pending> = (0..n)
        .map(|i| {
            let e = call(i);
            let mut ev = String::new();
            e.write_canonical_json(&mut ev).unwrap();
            let mut cl = String::new();
            rs.classify(&e).write_canonical_json(&mut cl);
            Pending {
                id: e.id.to_string(),
                event_json: ev,
                classification_json: cl,
                ts_explicit: false,
            }
        })
        .collect();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("tree.db");
    let mut store = Store::open(Some(&path), Durability::Batch).unwrap();
    store
        .register_catalogue(rs.digest(), rs.name(), rs.catalogue())
        .unwrap();
    let (append_w, append_c, ()) = timed(|| {
        for chunk in pendings.chunks(8192) {
            store.append(chunk).unwrap();
        }
    });
    drop(pendings);
    println!("events: {n}");
    println!("append with tree: {append_w:.3} s wall, {append_c:.3} s cpu");

    // The tree's whole work (a leaf hash per record, the stored nodes) done apart: dropping
    // the nodes and building them again on a writable open also reads every record back,
    // which the writer never does, so this bounds what keeping the tree adds to appending.
    store
        .connection()
        .execute_batch("DELETE FROM merkle_nodes")
        .unwrap();
    drop(store);
    let (build_w, build_c, store) =
        timed(|| Store::open_existing(&path, Durability::Batch).unwrap());
    println!("build tree: {build_w:.3} s wall, {build_c:.3} s cpu");
    let (verify_w, verify_c, v) = timed(|| verify(&store, None).unwrap());
    assert!(v.ok, "{:?}", v.problem);
    println!("verify: {verify_w:.3} s wall, {verify_c:.3} s cpu");
    assert_eq!(store.tree_problem().unwrap(), None);

    let key = SigningKey::generate("bench.example/ledger").unwrap();
    let mut store = store;
    let mut cps = Vec::new();
    let (mut cp_w, mut cp_c) = (Vec::new(), Vec::new());
    for _ in 0..200 {
        let (w, c, cp) = timed(|| checkpoint::take(&mut store, &key).unwrap());
        cp_w.push(w);
        cp_c.push(c);
        cps.push(cp);
    }
    println!(
        "checkpoint: {:.3} ms wall, {:.3} ms cpu (median of 200)",
        median(cp_w) * 1e3,
        median(cp_c) * 1e3
    );
    let cp = cps.last().unwrap().clone();
    let mut x = 0x9e37_79b9_7f4a_7c15u64;
    let (mut pw, mut pc) = (Vec::new(), Vec::new());
    for _ in 0..2000 {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let index = x % n;
        let (w, c, path) = timed(|| store.inclusion_path(index, cp.size).unwrap());
        std::hint::black_box(path);
        pw.push(w);
        pc.push(c);
    }
    println!(
        "inclusion proof: {:.1} us wall, {:.1} us cpu (median of 2000)",
        median(pw) * 1e6,
        median(pc) * 1e6
    );
    let (mut cw, mut cc) = (Vec::new(), Vec::new());
    for _ in 0..500 {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let old = x % n + 1;
        let (w, c, path) = timed(|| store.consistency_path(old, cp.size).unwrap());
        std::hint::black_box(path);
        cw.push(w);
        cc.push(c);
    }
    println!(
        "consistency proof: {:.1} us wall, {:.1} us cpu (median of 500)",
        median(cw) * 1e6,
        median(cc) * 1e6
    );
}
