//! Core names options by field (`lora_targets`); on the command line they are flags
//! (`--lora-targets`). Core's messages are put in the CLI's words here, for every command.

/// `e`'s message with each of `fields` (where it stands as a name: after "option: ", ", ",
/// " and " or "(", before ":", " " or ",") written as its flag; `rename` maps a field to another flag.
pub fn as_flags(e: savant_core::Error, fields: &[&str], rename: &[(&str, &str)]) -> anyhow::Error {
    let mut message = e.to_string();
    for &field in fields {
        let flag = match rename.iter().find(|(f, _)| *f == field) {
            Some((_, flag)) => flag.to_string(),
            None => format!("--{}", field.replace('_', "-")),
        };
        for before in ["option: ", ", ", " and ", "("] {
            for after in [":", " ", ","] {
                message = message.replace(&format!("{before}{field}{after}"), &format!("{before}{flag}{after}"));
            }
        }
    }
    anyhow::anyhow!(message)
}
