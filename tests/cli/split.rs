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
