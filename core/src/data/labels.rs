//! Label sets (multi-label data): a cell holding several labels joined by a separator
//! (`Copyleft|Permissive`), or a JSON array of strings (`["Copyleft", "Permissive"]`, as JSONL
//! files hold them), read the same way by clean, split, train and eval.

/// The labels of `cell`: its parts split at `sep`, each trimmed, empty ones dropped, each once
/// in the order first seen. A cell that is a JSON array of strings is read as that array (a
/// label may then contain `sep`). An empty set: no label applies.
pub fn label_set(cell: &str, sep: &str) -> Vec<String> {
    let cell = cell.trim();
    let parts: Vec<String> = match cell.starts_with('[').then(|| serde_json::from_str::<Vec<String>>(cell)) {
        Some(Ok(array)) => array,
        _ if sep.is_empty() => vec![cell.to_string()],
        _ => cell.split(sep).map(str::to_string).collect(),
    };
    let mut set: Vec<String> = Vec::with_capacity(parts.len());
    for p in parts {
        let p = p.trim();
        if !p.is_empty() && !set.iter().any(|s| s == p) {
            set.push(p.to_string());
        }
    }
    set
}

/// A label set written back as one cell, joined by `sep`.
pub fn join_set(set: &[String], sep: &str) -> String {
    set.join(sep)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cells_become_sets_of_trimmed_distinct_labels() {
        assert_eq!(label_set(" Copyleft | Permissive|Copyleft||", "|"), ["Copyleft", "Permissive"]);
        assert_eq!(label_set("", "|"), Vec::<String>::new());
        assert_eq!(label_set(r#"["a|b", "c", "c"]"#, "|"), ["a|b", "c"]);
        assert_eq!(label_set("[not json", "|"), ["[not json"]);
        assert_eq!(join_set(&label_set("b|a", "|"), ";"), "b;a");
    }
}
