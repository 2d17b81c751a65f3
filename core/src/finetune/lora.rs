//! Which linear layers LoRA updates (the layer itself is [`crate::model::Lora`]).

/// The linear layers LoRA can target, by the names PEFT's `target_modules` uses for BERT.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum LoraTarget {
    Query,
    Key,
    Value,
    /// `attention.output.dense`
    AttentionOutput,
    /// `intermediate.dense`
    Intermediate,
    /// `output.dense` (the feed-forward's)
    Output,
}

impl LoraTarget {
    pub const ALL: [LoraTarget; 6] = [
        LoraTarget::Query,
        LoraTarget::Key,
        LoraTarget::Value,
        LoraTarget::AttentionOutput,
        LoraTarget::Intermediate,
        LoraTarget::Output,
    ];

    /// The module path inside `encoder.layer.N`, as HF and PEFT name it.
    pub fn hf_path(self) -> &'static str {
        match self {
            LoraTarget::Query => "attention.self.query",
            LoraTarget::Key => "attention.self.key",
            LoraTarget::Value => "attention.self.value",
            LoraTarget::AttentionOutput => "attention.output.dense",
            LoraTarget::Intermediate => "intermediate.dense",
            LoraTarget::Output => "output.dense",
        }
    }

    /// Parses a `--lora-targets` / PEFT `target_modules` name: `query`, `key`, `value` (or
    /// `attention.self.query`…), `attention.output.dense`, `intermediate.dense`, `output.dense`.
    pub fn parse(name: &str) -> Option<LoraTarget> {
        let name = name.trim();
        LoraTarget::ALL.into_iter().find(|t| {
            let path = t.hf_path();
            name == path || path.strip_prefix("attention.self.") == Some(name)
        })
    }
}
