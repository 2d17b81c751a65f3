//! `savant split`: near-duplicates kept together, leaks found with --against.

use super::common::*;

#[test]
fn split_keeps_near_duplicates_together_and_against_finds_leaks() {
    let dir = tempfile::tempdir().unwrap();
    let mut csv = String::from("text,label\n");
    let base = "my credit report shows an account that is not mine and the bureau refuses to remove it";
    for i in 0..40 {
        csv += &format!("\"{base} {}\",a\n", ["", "!", " again", " please"][i % 4]);
        csv += &format!("\"unrelated complaint {i} about a mortgage escrow payment that was applied late\",b\n");
    }
    write(dir.path(), "data.csv", &csv);
    let o = savant(&["split", "data.csv", "--seed", "3", "-o", "s", "-q"], dir.path());
    assert!(o.status.success(), "{}", stderr(&o));
    let holding: Vec<usize> = ["train", "val", "test"]
        .iter()
        .map(|p| std::fs::read_to_string(dir.path().join(format!("s/{p}.csv"))).unwrap().matches("not mine").count())
        .collect();
    assert_eq!(holding.iter().filter(|&&n| n > 0).count(), 1, "near-duplicates straddle splits: {holding:?}");
    assert_eq!(holding.iter().sum::<usize>(), 40);

    write(dir.path(), "test.csv", &format!("text,label\n\"{base}\",a\n"));
    let o = savant(
        &["clean", "data.csv", "--against", "test.csv", "--dedup", "none", "-o", "c.csv", "--report", "r.json", "-q"],
        dir.path(),
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let r = read_report(&dir.path().join("r.json"));
    invariant(&r);
    assert_eq!(r["dropped"]["leak_against"], 20, "{r}");
    // --dedup none still keeps the file's own duplicates (the leakage check is separate).
    assert_eq!(r["rows_out"], 60, "{r}");
    assert_eq!(r["dropped"].as_object().unwrap().len(), 1, "{r}");
}

// Multi-label rows (`--label-sep`): every kept row in exactly one split, label sets kept as
// written, each label's rows spread by iterative stratification, counted in the report.
#[test]
fn split_with_label_sets_stratifies_each_label() {
    let dir = tempfile::tempdir().unwrap();
    let mut csv = String::from("text,categories\n");
    for i in 0..90 {
        let set = ["Copyleft|Permissive", "Permissive", "Copyleft", "Public Domain|Permissive", "Copyleft"][i % 5];
        csv += &format!("\"licence notice number {i} with its own words {}\",{set}\n", i * 7);
    }
    csv += "\"a notice without categories\",\n";
    write(dir.path(), "rules.csv", &csv);
    let args = ["split", "rules.csv", "--label", "categories", "--label-sep", "|", "--group-by", "none"];
    let o = savant(&[&args[..], &["--seed", "1", "-o", "s", "-q"]].concat(), dir.path());
    assert!(o.status.success(), "{}", stderr(&o));
    let r = read_report(&dir.path().join("s/split_report.json"));
    assert_eq!((r["rows_out"].as_u64(), r["dropped"]["missing_label"].as_u64()), (Some(90), Some(1)), "{r}");
    assert_eq!(r["rows_with_several_labels"], 36, "{r}");
    let rows: Vec<String> = ["train", "val", "test"]
        .iter()
        .flat_map(|p| {
            let text = std::fs::read_to_string(dir.path().join(format!("s/{p}.csv"))).unwrap();
            text.lines().skip(1).map(String::from).collect::<Vec<_>>()
        })
        .collect();
    assert_eq!(rows.len(), 90);
    assert_eq!(rows.iter().filter(|l| l.ends_with("Public Domain|Permissive")).count(), 18);
    // --allow-empty-labels: the row without categories is kept (no label applies) and placed.
    let o = savant(&[&args[..], &["--allow-empty-labels", "--seed", "1", "-o", "e", "-q"]].concat(), dir.path());
    assert!(o.status.success(), "{}", stderr(&o));
    let e = read_report(&dir.path().join("e/split_report.json"));
    assert_eq!((e["rows_out"].as_u64(), e["dropped"].get("missing_label")), (Some(91), None), "{e}");
    let kept: usize = ["train", "val", "test"]
        .iter()
        .map(|p| {
            let text = std::fs::read_to_string(dir.path().join(format!("e/{p}.csv"))).unwrap();
            text.lines().filter(|l| l.starts_with("a notice without categories")).count()
        })
        .sum();
    assert_eq!(kept, 1);
    for (label, n) in [("Copyleft", 54.0), ("Permissive", 54.0), ("Public Domain", 18.0)] {
        for (part, share) in [("train", 0.8), ("val", 0.1), ("test", 0.1)] {
            let got = r["splits"][part]["label_counts"][label].as_f64().unwrap_or(0.0);
            assert!((got - share * n).abs() <= 1.0, "{label} in {part}: {got} of {n}: {r}");
        }
    }
}
