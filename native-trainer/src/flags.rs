//! Core names options by field (`lora_targets`); on the command line they are flags
//! (`--lora-targets`). Core's messages are put in the CLI's words here, for every command.

/// `message` with each of `fields` written as its flag: a field with an underscore wherever it
/// stands as a word (no English word has one), any other where it stands as a name — at the
/// start, or after "option: ", ", ", " and " or "(", and before ":", " ", "," or ")".
/// `rename` maps a field to another flag.
pub fn message_as_flags(message: &str, fields: &[&str], rename: &[(&str, &str)]) -> String {
    let mut message = message.to_string();
    for &field in fields {
        let flag = match rename.iter().find(|(f, _)| *f == field) {
            Some((_, flag)) => flag.to_string(),
            None => format!("--{}", field.replace('_', "-")),
        };
        if field.contains('_') {
            message = replace_words(&message, field, &flag);
            continue;
        }
        for after in [":", " ", ",", ")"] {
            if let Some(rest) = message.strip_prefix(&format!("{field}{after}")) {
                message = format!("{flag}{after}{rest}");
            }
            for before in ["option: ", ", ", " and ", "("] {
                message = message.replace(&format!("{before}{field}{after}"), &format!("{before}{flag}{after}"));
            }
        }
    }
    message
}

/// Core's error in the CLI's words ([`message_as_flags`]).
pub fn as_flags(e: savant_core::Error, fields: &[&str], rename: &[(&str, &str)]) -> anyhow::Error {
    anyhow::anyhow!(message_as_flags(&e.to_string(), fields, rename))
}

/// Core's error in the CLI's words, for an options struct `A` whose fields clap made flags
/// (their ids are the field names); `rename` maps fields that are no flag of `A` (`parts`).
pub fn options_error<A: clap::Args>(e: savant_core::Error, rename: &[(&str, &str)]) -> anyhow::Error {
    let command = A::augment_args(clap::Command::new("options"));
    let flags: Vec<(String, String)> = command
        .get_arguments()
        .filter_map(|a| Some((a.get_id().to_string(), format!("--{}", a.get_long()?))))
        .chain(rename.iter().map(|(f, flag)| (f.to_string(), flag.to_string())))
        .collect();
    let fields: Vec<&str> = flags.iter().map(|(f, _)| f.as_str()).collect();
    let renames: Vec<(&str, &str)> = flags.iter().map(|(f, flag)| (f.as_str(), flag.as_str())).collect();
    anyhow::anyhow!(message_as_flags(&e.to_string(), &fields, &renames))
}

/// `text` with every whole-word `word` (not part of a longer identifier) replaced by `with`.
fn replace_words(text: &str, word: &str, with: &str) -> String {
    let ident = |c: char| c.is_alphanumeric() || c == '_' || c == '-';
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(i) = rest.find(word) {
        let before = rest[..i].chars().next_back();
        let after = rest[i + word.len()..].chars().next();
        out.push_str(&rest[..i]);
        if before.is_some_and(ident) || after.is_some_and(ident) {
            out.push_str(word);
        } else {
            out.push_str(with);
        }
        rest = &rest[i + word.len()..];
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_become_flags_where_they_are_names() {
        let fields = ["batch_size", "grad_accum", "mode", "lr", "parts"];
        let m = message_as_flags(
            "lower batch_size to 16 (with grad_accum 4 to keep the effective batch) or max_batch_size; mode: bad; the mode of lr (lr)",
            &fields,
            &[("parts", "--threads")],
        );
        assert_eq!(
            m,
            "lower --batch-size to 16 (with --grad-accum 4 to keep the effective batch) or max_batch_size; mode: bad; the mode of lr (--lr)"
        );
        assert_eq!(message_as_flags("mode: lora only", &fields, &[]), "--mode: lora only");
        assert_eq!(
            message_as_flags("invalid option: parts must be 1", &fields, &[("parts", "--threads")]),
            "invalid option: --threads must be 1"
        );
    }
}
