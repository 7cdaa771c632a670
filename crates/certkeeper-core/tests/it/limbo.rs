//! x509-limbo through the path engine, on a fixed subset that runs in seconds: every
//! native testcase and every 20th BetterTLS one. Every difference from the expected
//! result must be listed, with its reason, in the testkit's `limbo-exceptions.tsv`,
//! and every listed difference in the subset must still occur (so the file stays
//! true). The whole suite: `cargo run --release -p certkeeper-testkit --example limbo`.

use std::collections::BTreeMap;

use certkeeper_testkit::corpus;
use certkeeper_testkit::limbo::{Actual, Summary, load, run};

#[test]
fn limbo_subset_matches_expectations_except_the_listed_differences() {
    let exceptions_text = include_str!("../../../certkeeper-testkit/limbo-exceptions.tsv");
    let exceptions: BTreeMap<&str, &str> = exceptions_text
        .lines()
        .skip(1)
        .filter_map(|l| {
            let mut f = l.split('\t');
            Some((f.next()?, f.next()?))
        })
        .collect();
    let cases = load(&corpus("limbo/limbo.json"));
    assert!(cases.len() > 9000);
    let subset: Vec<_> = cases
        .iter()
        .enumerate()
        .filter(|(i, tc)| {
            !tc["id"].as_str().unwrap_or("").starts_with("bettertls::") || i % 20 == 0
        })
        .map(|(_, tc)| tc)
        .collect();
    let outcomes: Vec<_> = subset.iter().map(|tc| run(tc)).collect();
    let mut unexplained = Vec::new();
    for o in &outcomes {
        let verdict = o.verdict();
        if let Actual::Skipped(why) = &o.actual {
            assert!(!why.is_empty(), "{}: skipped without a reason", o.id);
            continue;
        }
        match (verdict, exceptions.get(o.id.as_str())) {
            ("pass", None) => {}
            ("pass", Some(_)) => {
                unexplained.push(format!("{}: listed as a difference but now passes", o.id))
            }
            (v, Some(listed)) if v == *listed => {}
            (v, _) => unexplained.push(format!("{}: {v} ({:?})", o.id, o.actual)),
        }
    }
    assert!(unexplained.is_empty(), "{}", unexplained.join("\n"));
    let s = Summary::of(&outcomes);
    // The subset's skips are the 10 CLIENT (email) cases, named in the runner.
    assert!(s.skip <= 10, "{s:?}");
    assert!(s.pass > 500, "{s:?}");
}
