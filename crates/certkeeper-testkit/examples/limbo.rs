//! The whole x509-limbo suite through certkeeper's path engine:
//! `cargo run --release -p certkeeper-testkit --example limbo [-- OUT.json]`.
//! Prints pass / fail / skip beside the peers' published figures and writes every
//! testcase's result (default `bench/results/limbo.json`).

use std::collections::BTreeMap;
use std::time::Instant;

use certkeeper_testkit::corpora;
use certkeeper_testkit::limbo::{Actual, Outcome, Summary, load, run};

fn main() {
    let out = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "bench/results/limbo.json".into());
    let limbo = corpora().join("limbo");
    let cases = load(&limbo.join("limbo.json"));
    let start = Instant::now();
    let outcomes: Vec<Outcome> = cases.iter().map(run).collect();
    let elapsed = start.elapsed();

    let all = Summary::of(&outcomes);
    let native = Summary::of(outcomes.iter().filter(|o| !o.id.starts_with("bettertls::")));
    let better = Summary::of(outcomes.iter().filter(|o| o.id.starts_with("bettertls::")));
    println!(
        "x509-limbo: {} testcases in {:.2} s",
        outcomes.len(),
        elapsed.as_secs_f64()
    );
    println!("| harness | subset | pass | unexpected failure | unexpected success | skip |");
    println!("|---|---|---|---|---|---|");
    for (subset, s) in [
        ("all", all),
        ("limbo-native", native),
        ("bettertls", better),
    ] {
        println!(
            "| certkeeper | {subset} | {} | {} | {} | {} |",
            s.pass, s.unexpected_failure, s.unexpected_success, s.skip
        );
    }
    if let Ok(peers) = std::fs::read_to_string(limbo.join("peer-results-summary.tsv")) {
        for line in peers.lines().skip(1) {
            let f: Vec<&str> = line.split('\t').collect();
            if f.len() >= 7 && f[1] == "all" {
                println!(
                    "| {} | all | {} | {} | {} | {} |",
                    f[0], f[3], f[4], f[5], f[6]
                );
            }
        }
    }
    let mut skips: BTreeMap<String, usize> = BTreeMap::new();
    for o in &outcomes {
        if let Actual::Skipped(why) = &o.actual {
            *skips.entry(why.clone()).or_default() += 1;
        }
    }
    for (why, n) in &skips {
        println!("skipped {n}: {why}");
    }
    let rows: Vec<serde_json::Value> = outcomes
        .iter()
        .map(|o| {
            let (actual, context) = match &o.actual {
                Actual::Success => ("SUCCESS", None),
                Actual::Failure(why) => ("FAILURE", Some(why.clone())),
                Actual::Skipped(why) => ("SKIPPED", Some(why.clone())),
            };
            serde_json::json!({"id": o.id, "expected_result": o.expected, "actual_result": actual,
                "verdict": o.verdict(), "context": context})
        })
        .collect();
    if let Some(dir) = std::path::Path::new(&out).parent() {
        let _ = std::fs::create_dir_all(dir);
    }
    let doc = serde_json::json!({"harness": "certkeeper", "elapsed_seconds": elapsed.as_secs_f64(), "results": rows});
    std::fs::write(&out, serde_json::to_string_pretty(&doc).expect("JSON")).expect("write results");
    println!("wrote {out}");
}
