//! Hugging Face safetensors ⇄ [`BertModel`] / [`BertClassifier`], with HF's key names.
//!
//! Loading reads one tensor at a time from a `Read + Seek` source (a file natively, bytes in the
//! browser), so peak memory is the model plus its largest tensor. Every problem — missing,
//! unexpected, mis-shaped, unsupported dtype — is collected and reported in one error.

use std::collections::BTreeSet;
use std::io::{Read, Seek, SeekFrom};

use burn::module::Param;
use burn::nn::{Embedding, LayerNorm, LayerNormConfig, Linear};

use super::Dropout;
use burn::tensor::{DType, Device, Tensor, TensorData};
use safetensors::tensor::{Dtype, Metadata, TensorInfo};

use std::sync::Arc;

use super::bert::{BertClassifier, BertModel, Dense, Embeddings, FeedForward, Layer, Pooler, SelfAttention};
use super::config::{BertConfig, Pooling};
use super::int8::QuantLinear;
use crate::{Error, Result};

/// Headers larger than this are refused before allocating (HF's own limit is 100 MB).
pub const MAX_HEADER_BYTES: u64 = 100 << 20;

/// Keys of BERT checkpoints that no Savant model uses and HF also ignores on load.
const IGNORED: &[&str] = &["embeddings.position_ids", "bert.embeddings.position_ids"];

/// An opened safetensors file: its validated header, tensors read on demand.
pub struct Checkpoint<R> {
    reader: R,
    source: String,
    metadata: Metadata,
    data_start: u64,
}

impl<R: Read + Seek> Checkpoint<R> {
    /// Reads and checks the header against the file's real size; `source` names it in errors.
    pub fn open(mut reader: R, source: &str) -> Result<Checkpoint<R>> {
        let io = |e: std::io::Error| Error::invalid(source, None, format!("cannot read: {e}"));
        let bad = |message: String| Error::invalid(source, None, message);
        let len = reader.seek(SeekFrom::End(0)).map_err(io)?;
        reader.seek(SeekFrom::Start(0)).map_err(io)?;
        if len < 8 {
            return Err(bad(format!(
                "the file is {len} bytes; a safetensors file starts with an 8-byte header length"
            )));
        }
        let mut n = [0u8; 8];
        reader.read_exact(&mut n).map_err(io)?;
        let n = u64::from_le_bytes(n);
        if n > len - 8 || n > MAX_HEADER_BYTES {
            return Err(bad(format!(
                "the header length field says {n} bytes but the file has {} bytes after it (limit {MAX_HEADER_BYTES}); the file is truncated or not safetensors",
                len - 8
            )));
        }
        let mut header = vec![0u8; n as usize];
        reader.read_exact(&mut header).map_err(io)?;
        let metadata: Metadata = serde_json::from_slice(&header).map_err(|e| {
            // safetensors' own message names no tensor: find the one that is wrong.
            let named = explain_header(&header, len - 8 - n).unwrap_or_else(|| e.to_string());
            bad(format!("the safetensors header is invalid: {named}"))
        })?;
        let data_start = 8 + n;
        let need = metadata.data_len() as u64;
        if data_start + need != len {
            return Err(bad(format!(
                "the header describes {need} bytes of tensor data but the file has {} after the header; the file is truncated or corrupt",
                len - data_start
            )));
        }
        Ok(Checkpoint { reader, source: source.to_string(), metadata, data_start })
    }

    pub fn source(&self) -> &str {
        &self.source
    }

    /// Refuses to build a model of `elements` weights (a lower bound, from a config) that this
    /// file could not hold at 2 bytes or more each: sizes in a config are checked against the
    /// weights' real size before anything of that size is allocated, so an absurd config.json is
    /// an error, not an out-of-memory.
    pub(crate) fn check_holds(&self, elements: u128, what: &str) -> Result<()> {
        let have = self.metadata.data_len() as u128;
        if elements.saturating_mul(2) > have {
            return Err(Error::invalid(
                &self.source,
                None,
                format!(
                    "{what} describes at least {elements} weights, more than the {have} bytes of this file can hold: they belong to different models"
                ),
            ));
        }
        Ok(())
    }

    /// Tensor names in file order.
    pub fn names(&self) -> Vec<String> {
        self.metadata.offset_keys()
    }

    pub fn info(&self, name: &str) -> Option<&TensorInfo> {
        self.metadata.info(name)
    }

    pub fn has(&self, name: &str) -> bool {
        self.metadata.info(name).is_some()
    }

    /// An int8 tensor's values (`savant quantize`'s weights); any other dtype is an error.
    pub fn read_i8(&mut self, name: &str) -> Result<Vec<i8>> {
        let (dtype, len) = self.seek_to(name)?;
        if dtype != Dtype::I8 {
            return Err(Error::invalid(
                &self.source,
                None,
                format!("tensor '{name}' is {dtype:?}; an int8 model's projection weights are I8"),
            ));
        }
        let mut values = vec![0i8; len];
        self.reader.read_exact(bytemuck::cast_slice_mut(&mut values)).map_err(|e| self.read_error(name, e))?;
        Ok(values)
    }

    /// Positions the reader at tensor `name`'s bytes: its dtype and byte length.
    fn seek_to(&mut self, name: &str) -> Result<(Dtype, usize)> {
        let info = self
            .metadata
            .info(name)
            .ok_or_else(|| Error::invalid(&self.source, None, format!("no tensor '{name}'")))?;
        let ((start, end), dtype) = (info.data_offsets, info.dtype);
        self.reader.seek(SeekFrom::Start(self.data_start + start as u64)).map_err(|e| self.read_error(name, e))?;
        Ok((dtype, end - start))
    }

    fn read_error(&self, name: &str, e: std::io::Error) -> Error {
        Error::invalid(&self.source, None, format!("cannot read tensor '{name}': {e}"))
    }

    /// A tensor as f32 values, converted from f16/bf16/f64 when stored so.
    pub fn read_f32(&mut self, name: &str) -> Result<Vec<f32>> {
        let (dtype, len) = self.seek_to(name)?;
        if dtype == Dtype::F32 {
            // Straight into the f32 buffer: no second copy of the largest tensors (the word
            // embeddings are half of MiniLM). safetensors and all our targets are little-endian.
            let mut values = vec![0f32; len / 4];
            self.reader.read_exact(bytemuck::cast_slice_mut(&mut values)).map_err(|e| self.read_error(name, e))?;
            return Ok(values);
        }
        let mut bytes = vec![0u8; len];
        self.reader.read_exact(&mut bytes).map_err(|e| self.read_error(name, e))?;
        Ok(match dtype {
            Dtype::F16 => bytes.chunks_exact(2).map(|c| half::f16::from_le_bytes([c[0], c[1]]).to_f32()).collect(),
            Dtype::BF16 => bytes.chunks_exact(2).map(|c| half::bf16::from_le_bytes([c[0], c[1]]).to_f32()).collect(),
            Dtype::F64 => {
                bytes.chunks_exact(8).map(|c| f64::from_le_bytes(c.try_into().expect("8 bytes")) as f32).collect()
            }
            other => {
                return Err(Error::invalid(
                    &self.source,
                    None,
                    format!("tensor '{name}' is {other:?}; a weight must be F32, F16, BF16 or F64"),
                ))
            }
        })
    }
}

/// The first tensor of a header that safetensors refuses, and why: offsets backwards or past the
/// data, or a span that is not its shape times its dtype's size. `None` when none is found.
fn explain_header(header: &[u8], data_len: u64) -> Option<String> {
    let value: serde_json::Value = serde_json::from_slice(header).ok()?;
    for (name, t) in value.as_object()?.iter().filter(|(k, _)| *k != "__metadata__") {
        let numbers = |key: &str| -> std::result::Result<Vec<u64>, String> {
            let raw = t.get(key).cloned().unwrap_or_default();
            raw.as_array()
                .and_then(|a| a.iter().map(|v| v.as_u64()).collect::<Option<Vec<u64>>>())
                .ok_or(format!("tensor '{name}': {key} {raw} must be a list of non-negative whole numbers"))
        };
        let (offsets, shape) = match (numbers("data_offsets"), numbers("shape")) {
            (Ok(o), Ok(s)) => (o, s),
            (Err(e), _) | (_, Err(e)) => return Some(e),
        };
        let size = match t.get("dtype")?.as_str()? {
            "F64" | "I64" | "U64" => 8,
            "F32" | "I32" | "U32" => 4,
            "F16" | "BF16" | "I16" | "U16" => 2,
            "BOOL" | "U8" | "I8" | "F8_E5M2" | "F8_E4M3" | "F8_E8M0" => 1,
            "F4" | "F6_E2M3" | "F6_E3M2" => continue, // sub-byte: safetensors checks these
            other => return Some(format!("tensor '{name}': dtype '{other}' is not a safetensors dtype")),
        };
        let [start, end] = offsets[..] else {
            return Some(format!("tensor '{name}': data_offsets must be two numbers"));
        };
        if end < start || end > data_len {
            return Some(format!(
                "tensor '{name}': data_offsets [{start}, {end}] lie outside the {data_len} bytes of data"
            ));
        }
        let need = shape.iter().try_fold(size, |acc: u64, &d| acc.checked_mul(d));
        if need != Some(end - start) {
            return Some(format!(
                "tensor '{name}': shape {shape:?} of {} needs {} bytes, its data_offsets span {}",
                t["dtype"].as_str().unwrap_or("?"),
                need.map_or("more than 2^64".into(), |n| n.to_string()),
                end - start
            ));
        }
    }
    None
}

/// What a load left aside, for the user (HF prints the same as warnings).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct LoadNotes {
    pub ignored: Vec<String>,
    /// How the load changed what the folder holds (int8 weights run as f32 off the CPU).
    pub messages: Vec<String>,
}

/// Builds modules from named tensors, collecting every problem instead of stopping at the first.
pub(crate) struct Loader<'a, R> {
    pub(crate) checkpoint: &'a mut Checkpoint<R>,
    device: Device,
    used: BTreeSet<String>,
    pub(crate) problems: Vec<String>,
    /// int8 projections were read as f32 weights: this device has no int8 kernel.
    dequantized: bool,
}

impl<'a, R: Read + Seek> Loader<'a, R> {
    pub(crate) fn new(checkpoint: &'a mut Checkpoint<R>, device: &Device) -> Loader<'a, R> {
        Loader { checkpoint, device: device.clone(), used: BTreeSet::new(), problems: Vec::new(), dequantized: false }
    }

    /// The tensor `name` of `shape` (PyTorch layout); zeros stand in for a bad one so the walk
    /// goes on and reports everything.
    pub(crate) fn values(&mut self, name: &str, shape: &[usize]) -> Vec<f32> {
        let numel = shape.iter().product::<usize>();
        let Some(info) = self.checkpoint.info(name) else {
            self.problems.push(format!("missing: {name} (expected shape {shape:?})"));
            return vec![0.0; numel];
        };
        self.used.insert(name.to_string());
        if info.shape != shape {
            self.problems.push(format!("wrong shape: {name} is {:?} in the file, expected {shape:?}", info.shape));
            return vec![0.0; numel];
        }
        match self.checkpoint.read_f32(name) {
            // A NaN or infinite weight poisons every output it touches: refused, not run.
            Ok(v) if v.iter().any(|x| !x.is_finite()) => {
                let bad = v.iter().filter(|x| !x.is_finite()).count();
                self.problems.push(format!("not finite: {name} holds {bad} NaN or infinite value(s)"));
                vec![0.0; numel]
            }
            Ok(v) => v,
            Err(e) => {
                self.problems.push(e.to_string());
                vec![0.0; numel]
            }
        }
    }

    /// A tensor that is another one's twin (a tied decoder): checked for its shape and counted
    /// as read when the file has it, fine when it does not.
    pub(crate) fn tie(&mut self, name: &str, shape: &[usize]) {
        let Some(info) = self.checkpoint.info(name) else { return };
        if info.shape != shape {
            self.problems.push(format!("wrong shape: {name} is {:?} in the file, expected {shape:?}", info.shape));
        }
        self.used.insert(name.to_string());
    }

    pub(crate) fn tensor<const D: usize>(&mut self, name: &str, shape: [usize; D]) -> Tensor<D> {
        let values = self.values(name, &shape);
        Tensor::from_data(TensorData::new(values, shape), &self.device)
    }

    /// PyTorch stores `[out, in]`; burn's Linear holds `[in, out]`.
    pub(crate) fn linear(&mut self, name: &str, d_in: usize, d_out: usize) -> Linear {
        let w = self.values(&format!("{name}.weight"), &[d_out, d_in]);
        let weight = Tensor::from_data(TensorData::new(transpose(&w, d_out, d_in), [d_in, d_out]), &self.device);
        let bias = self.tensor(&format!("{name}.bias"), [d_out]);
        Linear { weight: Param::from_tensor(weight), bias: Some(Param::from_tensor(bias)) }
    }

    /// A projection of the encoder: f32 as [`Loader::linear`], or — in an int8 folder
    /// (`int8`: config.json says so) — `name.weight` I8 `[out, in]` with `name.weight_scale`
    /// `[out]`, run by the int8 kernel on the CPU and as the f32 weights they stand for elsewhere.
    pub(crate) fn dense(&mut self, name: &str, d_in: usize, d_out: usize, int8: bool) -> Dense {
        let weight_name = format!("{name}.weight");
        let stored_int8 = self.checkpoint.info(&weight_name).is_some_and(|i| i.dtype == Dtype::I8);
        if !int8 || !stored_int8 {
            if int8 != stored_int8 && self.checkpoint.has(&weight_name) {
                let why = match int8 {
                    true => "F32 in the file, but config.json's quantization_config says the projections are int8",
                    false => "I8 in the file, but config.json has no quantization_config (savant-int8)",
                };
                self.problems.push(format!("wrong dtype: {weight_name} is {why}"));
                self.used.insert(weight_name);
                return Dense::new(self.zeros(d_in, d_out));
            }
            return Dense::new(self.linear(name, d_in, d_out));
        }
        let info = self.checkpoint.info(&weight_name).expect("checked above");
        self.used.insert(weight_name.clone());
        if info.shape != [d_out, d_in] {
            let shape = info.shape.clone();
            self.problems
                .push(format!("wrong shape: {weight_name} is {shape:?} in the file, expected [{d_out}, {d_in}]"));
            return Dense::new(self.zeros(d_in, d_out));
        }
        let weight = match self.checkpoint.read_i8(&weight_name) {
            Ok(w) => w,
            Err(e) => {
                self.problems.push(e.to_string());
                return Dense::new(self.zeros(d_in, d_out));
            }
        };
        let scale = self.values(&format!("{name}.weight_scale"), &[d_out]);
        let bias = self.values(&format!("{name}.bias"), &[d_out]);
        let q = match QuantLinear::from_parts(d_in, d_out, weight, scale, Some(bias)) {
            Ok(q) => q,
            Err(e) => {
                self.problems.push(format!("{weight_name}: {e}"));
                return Dense::new(self.zeros(d_in, d_out));
            }
        };
        let weight = Tensor::from_data(TensorData::new(q.dequantized(), [d_in, d_out]), &self.device);
        let bias = Tensor::from_data(TensorData::new(q.bias.clone().expect("given"), [d_out]), &self.device);
        let linear = Linear { weight: Param::from_tensor(weight), bias: Some(Param::from_tensor(bias)) };
        let cpu_inference = super::cpu_fast::on_flex(&self.device) && !self.device.is_autodiff();
        self.dequantized |= !cpu_inference;
        Dense { linear, lora: None, int8: cpu_inference.then(|| Arc::new(q)) }
    }

    /// A zero layer standing in for a bad one, so the walk goes on and reports everything.
    fn zeros(&self, d_in: usize, d_out: usize) -> Linear {
        let weight = Tensor::zeros([d_in, d_out], &self.device);
        Linear {
            weight: Param::from_tensor(weight),
            bias: Some(Param::from_tensor(Tensor::zeros([d_out], &self.device))),
        }
    }

    /// LayerNorm weights are `weight`/`bias`, or `gamma`/`beta` in old TF-converted checkpoints.
    pub(crate) fn layer_norm(&mut self, name: &str, size: usize, eps: f64) -> LayerNorm {
        let legacy = !self.checkpoint.has(&format!("{name}.weight")) && self.checkpoint.has(&format!("{name}.gamma"));
        let (w, b) = if legacy { ("gamma", "beta") } else { ("weight", "bias") };
        let mut norm = LayerNormConfig::new(size).with_epsilon(eps).init(&self.device);
        norm.gamma = Param::from_tensor(self.tensor(&format!("{name}.{w}"), [size]));
        norm.beta = Some(Param::from_tensor(self.tensor(&format!("{name}.{b}"), [size])));
        norm
    }

    pub(crate) fn embedding(&mut self, name: &str, rows: usize, size: usize) -> Embedding {
        Embedding { weight: Param::from_tensor(self.tensor(&format!("{name}.weight"), [rows, size])) }
    }
}

pub(crate) fn transpose(values: &[f32], rows: usize, cols: usize) -> Vec<f32> {
    let mut out = vec![0.0; values.len()];
    for r in 0..rows {
        for c in 0..cols {
            out[c * rows + r] = values[r * cols + c];
        }
    }
    out
}

/// The encoder's key prefix in this checkpoint: `bert.` for task models, none for `BertModel`.
pub(crate) fn encoder_prefix<R: Read + Seek>(checkpoint: &Checkpoint<R>) -> &'static str {
    if checkpoint.has("bert.embeddings.word_embeddings.weight") {
        "bert."
    } else {
        ""
    }
}

pub(crate) fn load_encoder_parts<R: Read + Seek>(
    loader: &mut Loader<'_, R>,
    config: &BertConfig,
    prefix: &str,
    with_pooler: bool,
) -> BertModel {
    let (h, eps) = (config.hidden_size, config.layer_norm_eps);
    let dropout = Dropout::new;
    let q = config.int8;
    let e = format!("{prefix}embeddings");
    let embeddings = Embeddings {
        word: loader.embedding(&format!("{e}.word_embeddings"), config.vocab_size, h),
        position: loader.embedding(&format!("{e}.position_embeddings"), config.max_position_embeddings, h),
        token_type: loader.embedding(&format!("{e}.token_type_embeddings"), config.type_vocab_size, h),
        layer_norm: loader.layer_norm(&format!("{e}.LayerNorm"), h, eps),
        dropout: dropout(config.hidden_dropout_prob),
    };
    let layers = (0..config.num_hidden_layers)
        .map(|i| {
            let l = format!("{prefix}encoder.layer.{i}");
            Layer {
                attention: SelfAttention {
                    query: loader.dense(&format!("{l}.attention.self.query"), h, h, q),
                    key: loader.dense(&format!("{l}.attention.self.key"), h, h, q),
                    value: loader.dense(&format!("{l}.attention.self.value"), h, h, q),
                    output: loader.dense(&format!("{l}.attention.output.dense"), h, h, q),
                    adapter: None,
                    layer_norm: loader.layer_norm(&format!("{l}.attention.output.LayerNorm"), h, eps),
                    probs_dropout: dropout(config.attention_probs_dropout_prob),
                    output_dropout: dropout(config.hidden_dropout_prob),
                    heads: config.num_attention_heads,
                },
                feed_forward: FeedForward {
                    intermediate: loader.dense(&format!("{l}.intermediate.dense"), h, config.intermediate_size, q),
                    output: loader.dense(&format!("{l}.output.dense"), config.intermediate_size, h, q),
                    adapter: None,
                    layer_norm: loader.layer_norm(&format!("{l}.output.LayerNorm"), h, eps),
                    dropout: dropout(config.hidden_dropout_prob),
                    activation: config.hidden_act,
                },
            }
        })
        .collect();
    let pooler = with_pooler.then(|| Pooler { dense: loader.linear(&format!("{prefix}pooler.dense"), h, h) });
    BertModel { embeddings, layers, pooler }
}

/// Ends a load: unknown tensors are errors, except other BERT heads and buffers HF ignores too.
pub(crate) fn finish<R: Read + Seek>(loader: Loader<'_, R>, ignorable_heads: &[&str]) -> Result<LoadNotes> {
    let Loader { checkpoint, mut problems, used, dequantized, device } = loader;
    let mut notes = LoadNotes::default();
    if dequantized {
        notes.messages.push(format!(
            "{}: the int8 projections run as the f32 weights they stand for on {device:?}: the int8 kernel is the CPU's (use the cpu device for its speed)",
            checkpoint.source()
        ));
    }
    for name in checkpoint.names() {
        if used.contains(&name) || IGNORED.contains(&name.as_str()) {
            continue;
        }
        if ignorable_heads.iter().any(|p| name.starts_with(p)) {
            notes.ignored.push(name);
        } else {
            let info = checkpoint.info(&name).expect("listed by the header");
            problems.push(format!("unexpected: {name} ({:?} {:?})", info.dtype, info.shape));
        }
    }
    if problems.is_empty() {
        Ok(notes)
    } else {
        Err(Error::invalid(
            checkpoint.source(),
            None,
            format!(
                "the weights do not match config.json ({} problem{}):\n  {}",
                problems.len(),
                if problems.len() == 1 { "" } else { "s" },
                problems.join("\n  ")
            ),
        ))
    }
}

/// Loads the encoder of any BERT checkpoint (`BertModel`, or the `bert.` part of a task model;
/// its heads are left aside and noted). The pooler is loaded when the file has one.
pub fn load_encoder<R: Read + Seek>(
    config: &BertConfig,
    checkpoint: &mut Checkpoint<R>,
    device: &Device,
) -> Result<(BertModel, LoadNotes)> {
    refuse_int8_training(config, device, checkpoint.source())?;
    checkpoint.check_holds(config.min_weights(), "config.json")?;
    let prefix = encoder_prefix(checkpoint);
    let with_pooler = checkpoint.has(&format!("{prefix}pooler.dense.weight"));
    let mut loader = Loader::new(checkpoint, device);
    let model = load_encoder_parts(&mut loader, config, prefix, with_pooler);
    let notes = finish(loader, &["cls.", "classifier.", "qa_outputs."])?;
    Ok((model, notes))
}

/// Loads a `BertForSequenceClassification` checkpoint: encoder, pooler and `classifier`, one
/// output per label of `config.json`. A config with `classifier_pooling` describes a pooled head:
/// no pooler is read (one in the file is left aside and noted).
pub fn load_classifier<R: Read + Seek>(
    config: &BertConfig,
    checkpoint: &mut Checkpoint<R>,
    device: &Device,
) -> Result<(BertClassifier, LoadNotes)> {
    if !checkpoint.has("classifier.weight") {
        return Err(Error::invalid(
            checkpoint.source(),
            None,
            "the checkpoint has no classification head (no 'classifier.weight'): it is an encoder such as BertModel; use `savant embed`, or fine-tune a head with `savant train`",
        ));
    }
    refuse_int8_training(config, device, checkpoint.source())?;
    checkpoint.check_holds(config.min_weights(), "config.json")?;
    let prefix = encoder_prefix(checkpoint);
    let h = config.hidden_size;
    let mut loader = Loader::new(checkpoint, device);
    let bert = load_encoder_parts(&mut loader, config, prefix, false);
    let pooler = match config.classifier_pooling {
        None => Some(Pooler { dense: loader.linear(&format!("{prefix}pooler.dense"), h, h) }),
        Some(_) => None,
    };
    let classifier = loader.linear("classifier", h, config.labels.len());
    let pooler_key = format!("{prefix}pooler.");
    let ignorable: &[&str] = if pooler.is_none() { &["cls.", pooler_key.as_str()] } else { &["cls."] };
    let notes = finish(loader, ignorable)?;
    let dropout = Dropout::new(config.classifier_dropout);
    let pooling = config.classifier_pooling.unwrap_or(Pooling::Mean);
    Ok((BertClassifier { bert, pooler, dropout, classifier, pooling }, notes))
}

/// An int8 folder (`savant quantize`) is for inference: training (an autodiff device) needs the
/// f32 weights it was made from.
pub(crate) fn refuse_int8_training(config: &BertConfig, device: &Device, source: &str) -> Result<()> {
    if config.int8 && device.is_autodiff() {
        return Err(Error::invalid(
            source,
            None,
            "the model is int8 (savant quantize): it predicts and embeds but cannot be trained; fine-tune the f32 model it was quantised from",
        ));
    }
    Ok(())
}

/// A parameter on its way out, named as HF names it.
pub(crate) enum Named {
    Vector(String, Tensor<1>),
    Matrix(String, Tensor<2>),
    /// A burn `[in, out]` weight, written as PyTorch's `[out, in]`.
    LinearWeight(String, Tensor<2>),
    /// An int8 projection: `name.weight` I8 `[out, in]`, `name.weight_scale` and `name.bias` F32.
    Int8(String, Arc<QuantLinear>),
}

/// A projection: int8 when it has been quantised, else its linear layer.
pub(crate) fn push_dense(out: &mut Vec<Named>, name: &str, dense: &Dense) {
    match &dense.int8 {
        Some(q) => out.push(Named::Int8(name.to_string(), q.clone())),
        None => push_linear(out, name, &dense.linear),
    }
}

pub(crate) fn push_linear(out: &mut Vec<Named>, name: &str, linear: &Linear) {
    out.push(Named::LinearWeight(format!("{name}.weight"), linear.weight.val()));
    if let Some(bias) = &linear.bias {
        out.push(Named::Vector(format!("{name}.bias"), bias.val()));
    }
}

pub(crate) fn push_norm(out: &mut Vec<Named>, name: &str, norm: &LayerNorm) {
    out.push(Named::Vector(format!("{name}.weight"), norm.gamma.val()));
    if let Some(beta) = &norm.beta {
        out.push(Named::Vector(format!("{name}.bias"), beta.val()));
    }
}

pub(crate) fn encoder_names(out: &mut Vec<Named>, model: &BertModel, prefix: &str) {
    let e = format!("{prefix}embeddings");
    let emb = &model.embeddings;
    out.push(Named::Matrix(format!("{e}.word_embeddings.weight"), emb.word.weight.val()));
    out.push(Named::Matrix(format!("{e}.position_embeddings.weight"), emb.position.weight.val()));
    out.push(Named::Matrix(format!("{e}.token_type_embeddings.weight"), emb.token_type.weight.val()));
    push_norm(out, &format!("{e}.LayerNorm"), &emb.layer_norm);
    for (i, layer) in model.layers.iter().enumerate() {
        let l = format!("{prefix}encoder.layer.{i}");
        let a = &layer.attention;
        push_dense(out, &format!("{l}.attention.self.query"), &a.query);
        push_dense(out, &format!("{l}.attention.self.key"), &a.key);
        push_dense(out, &format!("{l}.attention.self.value"), &a.value);
        push_dense(out, &format!("{l}.attention.output.dense"), &a.output);
        push_norm(out, &format!("{l}.attention.output.LayerNorm"), &a.layer_norm);
        let f = &layer.feed_forward;
        push_dense(out, &format!("{l}.intermediate.dense"), &f.intermediate);
        push_dense(out, &format!("{l}.output.dense"), &f.output);
        push_norm(out, &format!("{l}.output.LayerNorm"), &f.layer_norm);
    }
    if let Some(pooler) = &model.pooler {
        push_linear(out, &format!("{prefix}pooler.dense"), &pooler.dense);
    }
}

/// `model.safetensors` bytes of a `BertModel`, HF key names, f32.
pub async fn encoder_to_safetensors(model: &BertModel) -> Result<Vec<u8>> {
    let mut named = Vec::new();
    encoder_names(&mut named, model, "");
    serialize(named).await
}

/// `model.safetensors` bytes of a `BertForSequenceClassification`, HF key names, f32.
pub async fn classifier_to_safetensors(model: &BertClassifier) -> Result<Vec<u8>> {
    let mut named = Vec::new();
    encoder_names(&mut named, &model.bert, "bert.");
    if let Some(pooler) = &model.pooler {
        push_linear(&mut named, "bert.pooler.dense", &pooler.dense);
    }
    push_linear(&mut named, "classifier", &model.classifier);
    serialize(named).await
}

/// Reads every tensor back (asynchronously: the browser cannot block on the GPU) and writes
/// the safetensors file.
pub(crate) async fn serialize(named: Vec<Named>) -> Result<Vec<u8>> {
    let read_err = |name: &str, e: String| Error::invalid("model", None, format!("cannot read back '{name}': {e}"));
    let mut tensors: Vec<(String, Dtype, Vec<usize>, Vec<u8>)> = Vec::with_capacity(named.len());
    let f32_bytes = |values: &[f32]| -> Vec<u8> { values.iter().flat_map(|v| v.to_le_bytes()).collect() };
    for item in named {
        let (name, data, transpose_2d) = match item {
            Named::Vector(n, t) => (n, t.into_data_async().await, false),
            Named::Matrix(n, t) => (n, t.into_data_async().await, false),
            Named::LinearWeight(n, t) => (n, t.into_data_async().await, true),
            Named::Int8(n, q) => {
                let weight = bytemuck::cast_slice::<i8, u8>(&q.weight).to_vec();
                tensors.push((format!("{n}.weight"), Dtype::I8, vec![q.d_out, q.d_in], weight));
                tensors.push((format!("{n}.weight_scale"), Dtype::F32, vec![q.d_out], f32_bytes(&q.scale)));
                if let Some(b) = &q.bias {
                    tensors.push((format!("{n}.bias"), Dtype::F32, vec![q.d_out], f32_bytes(b)));
                }
                continue;
            }
        };
        let data = data.map_err(|e| read_err(&name, format!("{e:?}")))?;
        let mut shape = data.shape().to_vec();
        let values: Vec<f32> = if data.dtype() == DType::F32 {
            data.try_into_vec::<f32>()
        } else {
            data.convert::<f32>().try_into_vec::<f32>()
        }
        .map_err(|e| read_err(&name, format!("{e:?}")))?;
        let values = if transpose_2d {
            let (rows, cols) = (shape[0], shape[1]);
            shape = vec![cols, rows];
            transpose(&values, rows, cols)
        } else {
            values
        };
        tensors.push((name, Dtype::F32, shape, f32_bytes(&values)));
    }
    let views = tensors
        .iter()
        .map(|(name, dtype, shape, bytes)| {
            safetensors::tensor::TensorView::new(*dtype, shape.clone(), bytes).map(|v| (name.clone(), v))
        })
        .collect::<std::result::Result<Vec<_>, _>>()
        .map_err(|e| Error::invalid("model", None, format!("cannot lay out safetensors: {e}")))?;
    let mut metadata = std::collections::HashMap::new();
    metadata.insert("format".to_string(), "pt".to_string());
    safetensors::tensor::serialize(views, Some(metadata))
        .map_err(|e| Error::invalid("model", None, format!("cannot write safetensors: {e}")))
}
