//! The Hugging Face `config.json` of a BERT model, and sentence-transformers' pooling config.
//!
//! Unknown keys are kept and written back on save, so a config survives a round trip through
//! Savant the way `transformers` would write it.

use serde_json::{Map, Value};

use crate::{Error, Result};

/// `quantization_config.quant_method` of Savant's int8 folders (`savant quantize`): per output
/// channel symmetric int8 weights for the encoder's projections, activations quantised per row
/// when they arrive. Version [`INT8_VERSION`] of that layout.
pub const INT8_METHOD: &str = "savant-int8";
pub const INT8_VERSION: u64 = 1;

/// `model_type`s whose checkpoints are BERT: same modules, same key names.
pub const SUPPORTED_MODEL_TYPES: &[&str] = &["bert"];

/// The feed-forward activation (`hidden_act`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Activation {
    /// The exact, erf-based GELU (HF `gelu`).
    Gelu,
    /// The tanh approximation (HF `gelu_new`, `gelu_pytorch_tanh`, `gelu_fast`).
    GeluTanh,
    Relu,
}

impl Activation {
    fn parse(name: &str) -> Option<Activation> {
        match name {
            "gelu" => Some(Activation::Gelu),
            "gelu_new" | "gelu_pytorch_tanh" | "gelu_fast" => Some(Activation::GeluTanh),
            "relu" => Some(Activation::Relu),
            _ => None,
        }
    }
}

/// HF's `problem_type` of a multi-label classifier.
pub const MULTI_LABEL: &str = "multi_label_classification";

/// What Savant reads from `config.json`. Field names follow HF's `BertConfig`.
#[derive(Debug, Clone, PartialEq)]
pub struct BertConfig {
    pub vocab_size: usize,
    pub hidden_size: usize,
    pub num_hidden_layers: usize,
    pub num_attention_heads: usize,
    pub intermediate_size: usize,
    pub hidden_act: Activation,
    pub hidden_dropout_prob: f64,
    pub attention_probs_dropout_prob: f64,
    /// `classifier_dropout`; HF falls back to `hidden_dropout_prob` when it is null.
    pub classifier_dropout: f64,
    pub max_position_embeddings: usize,
    pub type_vocab_size: usize,
    pub layer_norm_eps: f64,
    /// Standard deviation of fresh weights (a new classification head), HF default 0.02.
    pub initializer_range: f64,
    pub pad_token_id: u32,
    /// Class names in id order (`id2label`). HF's default when absent is `LABEL_0`, `LABEL_1`.
    pub labels: Vec<String>,
    /// `classifier_pooling`, Savant's key (transformers keeps and ignores it): the sentence
    /// pooling a pooled classification head reads; `None` (absent, or `"pooler"`): HF's pooler.
    pub classifier_pooling: Option<Pooling>,
    /// The encoder's projections are stored in int8 (`quantization_config` with `quant_method`
    /// [`INT8_METHOD`], written by `savant quantize`): inference only.
    pub int8: bool,
    /// The whole file as read, so that keys Savant does not use are written back unchanged.
    raw: Map<String, Value>,
}

impl BertConfig {
    /// Parses `config.json`; `source` names the file in errors.
    pub fn from_json(bytes: &[u8], source: &str) -> Result<BertConfig> {
        let value: Value = serde_json::from_slice(bytes)
            .map_err(|e| Error::invalid(source, Some(e.line() as u64), format!("not valid JSON: {e}")))?;
        let Value::Object(raw) = value else {
            return Err(Error::invalid(source, None, "expected a JSON object"));
        };
        let bad = |message: String| Error::invalid(source, None, message);

        match raw.get("model_type").and_then(Value::as_str) {
            Some(t) if SUPPORTED_MODEL_TYPES.contains(&t) => {}
            Some(t) => {
                return Err(bad(format!(
                    "model_type '{t}' is not supported; Savant runs BERT checkpoints (model_type: {})",
                    SUPPORTED_MODEL_TYPES.join(", ")
                )))
            }
            None => return Err(bad(format!("no 'model_type'; expected one of: {}", SUPPORTED_MODEL_TYPES.join(", ")))),
        }
        if let Some(kind) = raw.get("position_embedding_type").and_then(Value::as_str) {
            if kind != "absolute" {
                return Err(bad(format!("position_embedding_type '{kind}' is not supported; only 'absolute'")));
            }
        }

        let size = |key: &str, default: Option<usize>| -> Result<usize> {
            match raw.get(key) {
                None | Some(Value::Null) => default.ok_or_else(|| bad(format!("missing '{key}'"))),
                Some(v) => match v.as_u64() {
                    Some(n) if (1..=MAX_SIZE).contains(&n) => Ok(n as usize),
                    _ => Err(bad(format!("'{key}' is {v}; expected a whole number from 1 to {MAX_SIZE}"))),
                },
            }
        };
        let prob = |key: &str, default: f64| -> Result<f64> {
            match raw.get(key) {
                None | Some(Value::Null) => Ok(default),
                Some(v) => match v.as_f64() {
                    Some(p) if (0.0..1.0).contains(&p) => Ok(p),
                    _ => Err(bad(format!("'{key}' is {v}; expected a probability in [0, 1)"))),
                },
            }
        };

        let hidden_size = size("hidden_size", None)?;
        let num_attention_heads = size("num_attention_heads", None)?;
        if hidden_size % num_attention_heads != 0 {
            return Err(bad(format!(
                "hidden_size {hidden_size} is not a multiple of num_attention_heads {num_attention_heads}"
            )));
        }
        let hidden_act = match raw.get("hidden_act") {
            None => Activation::Gelu,
            Some(Value::String(name)) => Activation::parse(name).ok_or_else(|| {
                bad(format!("hidden_act '{name}' is not supported; expected gelu, gelu_new, gelu_pytorch_tanh, gelu_fast or relu"))
            })?,
            Some(v) => return Err(bad(format!("hidden_act is {v}; expected a name such as \"gelu\""))),
        };
        let layer_norm_eps = match raw.get("layer_norm_eps") {
            None => 1e-12,
            Some(v) => match v.as_f64() {
                Some(e) if e > 0.0 && e < 1.0 => e,
                _ => return Err(bad(format!("layer_norm_eps is {v}; expected a small positive number"))),
            },
        };
        let pad_token_id = match raw.get("pad_token_id") {
            None | Some(Value::Null) => 0,
            Some(v) => v
                .as_u64()
                .and_then(|n| u32::try_from(n).ok())
                .ok_or_else(|| bad(format!("pad_token_id is {v}; expected a token id")))?,
        };
        let hidden_dropout_prob = prob("hidden_dropout_prob", 0.1)?;
        let vocab_size = size("vocab_size", None)?;
        if pad_token_id as usize >= vocab_size {
            return Err(bad(format!(
                "pad_token_id {pad_token_id} is outside the vocabulary (vocab_size {vocab_size})"
            )));
        }

        let int8 = read_quantization(&raw, source)?;

        Ok(BertConfig {
            vocab_size,
            hidden_size,
            num_hidden_layers: size("num_hidden_layers", None)?,
            num_attention_heads,
            intermediate_size: size("intermediate_size", None)?,
            hidden_act,
            hidden_dropout_prob,
            attention_probs_dropout_prob: prob("attention_probs_dropout_prob", 0.1)?,
            classifier_dropout: prob("classifier_dropout", hidden_dropout_prob)?,
            max_position_embeddings: size("max_position_embeddings", Some(512))?,
            type_vocab_size: size("type_vocab_size", Some(2))?,
            layer_norm_eps,
            initializer_range: raw
                .get("initializer_range")
                .and_then(Value::as_f64)
                .filter(|v| *v > 0.0)
                .unwrap_or(0.02),
            pad_token_id,
            labels: read_labels(&raw, source)?,
            classifier_pooling: match raw.get("classifier_pooling") {
                None | Some(Value::Null) => None,
                Some(Value::String(p)) if p == "pooler" => None,
                Some(v) => Some(v.as_str().and_then(Pooling::parse).ok_or_else(|| {
                    bad(format!("classifier_pooling is {v}; expected \"pooler\", \"mean\", \"cls\", \"max\" or \"mean_sqrt_len\""))
                })?),
            },
            int8,
            raw,
        })
    }

    /// Attention head width.
    /// A lower bound on the weights a checkpoint of this config holds: the word and position
    /// embeddings and each layer's attention and feed-forward matrices (biases, norms and heads
    /// left out), in u128 so absurd sizes cannot overflow.
    pub fn min_weights(&self) -> u128 {
        let (h, i) = (self.hidden_size as u128, self.intermediate_size as u128);
        let embeddings = (self.vocab_size as u128 + self.max_position_embeddings as u128) * h;
        embeddings + self.num_hidden_layers as u128 * (4 * h * h + 2 * h * i)
    }

    pub fn head_size(&self) -> usize {
        self.hidden_size / self.num_attention_heads
    }

    /// Replaces the class names (a fine-tuned head), as `id2label`/`label2id` on save.
    pub fn with_labels(mut self, labels: Vec<String>) -> BertConfig {
        self.labels = labels;
        self
    }

    /// Whether the head is a multi-label one (`problem_type: "multi_label_classification"`,
    /// HF's marker for sigmoid + binary cross-entropy).
    pub fn multi_label(&self) -> bool {
        self.raw.get("problem_type").and_then(Value::as_str) == Some(MULTI_LABEL)
    }

    /// Marks the head multi-label or not, as `problem_type` on save.
    pub fn with_multi_label(mut self, multi: bool) -> BertConfig {
        match multi {
            true => _ = self.raw.insert("problem_type".into(), Value::String(MULTI_LABEL.into())),
            false if self.multi_label() => _ = self.raw.remove("problem_type"),
            false => {}
        }
        self
    }

    /// Marks the projections int8 or not, as `quantization_config` on save.
    pub fn with_int8(mut self, int8: bool) -> BertConfig {
        self.int8 = int8;
        match int8 {
            true => _ = self.raw.insert("quantization_config".into(), int8_header()),
            false => _ = self.raw.remove("quantization_config"),
        }
        self
    }

    /// `config.json` as HF writes it: the original keys, with `id2label`, `label2id` and
    /// `architectures` set for what is being saved.
    pub fn to_json(&self, architecture: &str) -> Vec<u8> {
        let mut raw = self.raw.clone();
        raw.insert("architectures".into(), Value::Array(vec![Value::String(architecture.into())]));
        let id2label: Map<String, Value> =
            self.labels.iter().enumerate().map(|(i, l)| (i.to_string(), Value::String(l.clone()))).collect();
        let label2id: Map<String, Value> =
            self.labels.iter().enumerate().map(|(i, l)| (l.clone(), Value::from(i))).collect();
        raw.insert("id2label".into(), Value::Object(id2label));
        raw.insert("label2id".into(), Value::Object(label2id));
        match self.classifier_pooling {
            Some(p) => raw.insert("classifier_pooling".into(), Value::String(p.name().into())),
            None => raw.remove("classifier_pooling"),
        };
        let mut out = serde_json::to_vec_pretty(&Value::Object(raw)).expect("a JSON map always serialises");
        out.push(b'\n');
        out
    }
}

/// `quantization_config` of an int8 folder. transformers refuses the unknown `quant_method`
/// rather than load int8 tensors as floats.
fn int8_header() -> Value {
    serde_json::json!({
        "quant_method": INT8_METHOD,
        "version": INT8_VERSION,
        "bits": 8,
        "weights": "int8 [out, in] per output channel, symmetric: w = weight * weight_scale[out]",
        "activations": "quantised per row when they arrive, symmetric",
        "modules": ["attention.self.query", "attention.self.key", "attention.self.value", "attention.output.dense", "intermediate.dense", "output.dense"],
    })
}

/// Whether `quantization_config` says Savant's int8; any other quantisation is refused by name.
fn read_quantization(raw: &Map<String, Value>, source: &str) -> Result<bool> {
    let Some(q) = raw.get("quantization_config").filter(|v| !v.is_null()) else { return Ok(false) };
    let bad = |m: String| Error::invalid(source, None, m);
    let method = q.get("quant_method").and_then(Value::as_str).ok_or_else(|| {
        bad(format!("quantization_config has no quant_method ({q}); Savant reads its own int8 folders (quant_method \"{INT8_METHOD}\", written by savant quantize)"))
    })?;
    if method != INT8_METHOD {
        return Err(bad(format!(
            "quantization_config.quant_method is \"{method}\": Savant cannot run that quantisation; it reads its own int8 folders (\"{INT8_METHOD}\", written by savant quantize); use the unquantised model"
        )));
    }
    match q.get("version").and_then(Value::as_u64) {
        Some(INT8_VERSION) => Ok(true),
        _ => Err(bad(format!(
            "quantization_config's version is {}: this Savant reads {INT8_METHOD} version {INT8_VERSION}; quantise the f32 model again with this savant",
            q.get("version").map_or("missing".to_string(), Value::to_string)
        ))),
    }
}

/// Sizes above this are a corrupt or hostile config, not a model: refuse before allocating.
pub const MAX_SIZE: u64 = 1 << 24;

fn read_labels(raw: &Map<String, Value>, source: &str) -> Result<Vec<String>> {
    let Some(Value::Object(map)) = raw.get("id2label") else {
        let n = match raw.get("num_labels").and_then(Value::as_u64) {
            Some(n) if (1..=1 << 16).contains(&n) => n as usize,
            _ => 2,
        };
        return Ok((0..n).map(|i| format!("LABEL_{i}")).collect());
    };
    let mut labels = vec![None; map.len()];
    for (key, value) in map {
        let id = key.parse::<usize>().ok().filter(|&i| i < map.len()).ok_or_else(|| {
            Error::invalid(source, None, format!("id2label key '{key}' is not an id from 0 to {}", map.len() - 1))
        })?;
        let name = value.as_str().ok_or_else(|| {
            Error::invalid(source, None, format!("id2label[{key}] is {value}; expected a label name"))
        })?;
        labels[id] = Some(name.to_string());
    }
    let labels: Vec<String> = labels.into_iter().map(|l| l.expect("every id in 0..n was set once")).collect();
    let mut seen = std::collections::HashSet::new();
    if let Some(dup) = labels.iter().find(|l| !seen.insert(l.as_str())) {
        return Err(Error::invalid(source, None, format!("id2label names '{dup}' twice; label names must be unique")));
    }
    Ok(labels)
}

/// How token vectors become one sentence vector (sentence-transformers' `1_Pooling/config.json`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pooling {
    Mean,
    Cls,
    Max,
    MeanSqrtLen,
}

impl Pooling {
    /// Reads `1_Pooling/config.json`; exactly one mode must be on.
    pub fn from_json(bytes: &[u8], source: &str) -> Result<Pooling> {
        let value: Value = serde_json::from_slice(bytes)
            .map_err(|e| Error::invalid(source, Some(e.line() as u64), format!("not valid JSON: {e}")))?;
        let on = |key: &str| value.get(key).and_then(Value::as_bool).unwrap_or(false);
        let modes = [
            ("pooling_mode_mean_tokens", Pooling::Mean),
            ("pooling_mode_cls_token", Pooling::Cls),
            ("pooling_mode_max_tokens", Pooling::Max),
            ("pooling_mode_mean_sqrt_len_tokens", Pooling::MeanSqrtLen),
        ];
        let chosen: Vec<_> = modes.iter().filter(|(key, _)| on(key)).collect();
        match chosen.as_slice() {
            [(_, mode)] => Ok(*mode),
            [] => Err(Error::invalid(source, None, "no pooling mode is enabled; expected one of pooling_mode_mean_tokens, pooling_mode_cls_token, pooling_mode_max_tokens, pooling_mode_mean_sqrt_len_tokens")),
            _ => Err(Error::invalid(source, None, "more than one pooling mode is enabled; Savant supports exactly one")),
        }
    }

    /// A name of [`Pooling::name`].
    pub fn parse(name: &str) -> Option<Pooling> {
        [Pooling::Mean, Pooling::Cls, Pooling::Max, Pooling::MeanSqrtLen].into_iter().find(|p| p.name() == name)
    }

    /// sentence-transformers' `1_Pooling/config.json` for `dimension`-wide token vectors.
    pub fn to_json(self, dimension: usize) -> Vec<u8> {
        let on = |p: Pooling| self == p;
        let value = serde_json::json!({
            "word_embedding_dimension": dimension,
            "pooling_mode_cls_token": on(Pooling::Cls),
            "pooling_mode_mean_tokens": on(Pooling::Mean),
            "pooling_mode_max_tokens": on(Pooling::Max),
            "pooling_mode_mean_sqrt_len_tokens": on(Pooling::MeanSqrtLen),
            "pooling_mode_weightedmean_tokens": false,
            "pooling_mode_lasttoken": false,
            "include_prompt": true,
        });
        serde_json::to_vec_pretty(&value).expect("JSON values serialise")
    }

    pub fn name(self) -> &'static str {
        match self {
            Pooling::Mean => "mean",
            Pooling::Cls => "cls",
            Pooling::Max => "max",
            Pooling::MeanSqrtLen => "mean_sqrt_len",
        }
    }
}
