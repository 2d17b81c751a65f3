//! Adapter folders: what `savant train` writes for the `lora` and `adapter` strategies and what
//! `savant predict --adapter` reads back onto the base model.
//!
//! LoRA is written exactly as PEFT's `save_pretrained` writes a `LoraConfig` /
//! `TaskType.SEQ_CLS` model of `BertForSequenceClassification`, so `PeftModel.from_pretrained`
//! loads it:
//! - `adapter_config.json`: PEFT's fields (`peft_type: LORA`, `r`, `lora_alpha`,
//!   `target_modules`, `modules_to_save: ["classifier"]`, ...);
//! - `adapter_model.safetensors`: `base_model.model.bert.encoder.layer.N.<target>.lora_A.weight`
//!   `[r, in]` and `.lora_B.weight` `[out, r]`, and the classifier head, which PEFT saves from
//!   `modules_to_save` as `base_model.model.classifier.{weight,bias}`. (A PEFT export without its
//!   head is PEFT's most-reported bug; [`read_adapter`] refuses one.)
//!
//! Houlsby adapters have no PEFT format; Savant writes the same two files:
//! - `adapter_config.json`: `{"savant_adapter": "houlsby", "adapter_dim": 64, "non_linearity":
//!   "gelu", "base_model_name_or_path": ...}`;
//! - `adapter_model.safetensors` with HF-style names and PyTorch `[out, in]` weights:
//!   `bert.encoder.layer.N.attention.output.adapter.{down,up}.{weight,bias}` and
//!   `bert.encoder.layer.N.output.adapter.{down,up}.{weight,bias}` (applied to the output of the
//!   block's dense layer, before its residual LayerNorm: `h + up(gelu(down(h)))`), every trained
//!   LayerNorm (`bert.embeddings.LayerNorm`, `...attention.output.LayerNorm`,
//!   `...output.LayerNorm`) and `classifier.{weight,bias}`.

use std::io::{Read, Seek};

use burn::tensor::Device;
use serde_json::{json, Value};

use super::{lora_slot, new_classifier, Adapter, Lora, LoraConfig, LoraTarget, Strategy};
use crate::model::hf::{finish, push_linear, push_norm, serialize, transpose, Loader, Named};
use crate::model::{
    load_classifier, load_encoder, BertClassifier, BertConfig, Checkpoint, LoadNotes, ModelFiles, ModelFolder,
};
use crate::{Error, Result};

const PEFT_PREFIX: &str = "base_model.model.";

/// The two files of an adapter folder.
pub struct AdapterFiles {
    pub config_json: String,
    pub safetensors: Vec<u8>,
}

/// The adapter folder of a model trained with `strategy` (`lora` or `adapter`).
pub async fn write_adapter(model: &BertClassifier, strategy: &Strategy, base_model: &str) -> Result<AdapterFiles> {
    let mut named = Vec::new();
    let config = match strategy {
        Strategy::Lora(lora) => {
            for (i, layer) in model.bert.layers.iter().enumerate() {
                for target in LoraTarget::ALL {
                    let dense = dense_of(layer, target);
                    if let Some(l) = &dense.lora {
                        let base = format!("{PEFT_PREFIX}bert.encoder.layer.{i}.{}", target.hf_path());
                        // burn's a: [in, r] and b: [r, out] are written transposed, as nn.Linear's.
                        named.push(Named::LinearWeight(format!("{base}.lora_A.weight"), l.a.val()));
                        named.push(Named::LinearWeight(format!("{base}.lora_B.weight"), l.b.val()));
                    }
                }
            }
            push_linear(&mut named, &format!("{PEFT_PREFIX}classifier"), &model.classifier);
            peft_config(lora, base_model)
        }
        Strategy::Adapter { dim } => {
            push_norm(&mut named, "bert.embeddings.LayerNorm", &model.bert.embeddings.layer_norm);
            for (i, layer) in model.bert.layers.iter().enumerate() {
                let l = format!("bert.encoder.layer.{i}");
                for (block, adapter, norm) in [
                    ("attention.output", &layer.attention.adapter, &layer.attention.layer_norm),
                    ("output", &layer.feed_forward.adapter, &layer.feed_forward.layer_norm),
                ] {
                    let adapter = adapter.as_ref().ok_or_else(|| {
                        Error::invalid("model", None, format!("layer {i} has no adapter in its {block} block"))
                    })?;
                    push_linear(&mut named, &format!("{l}.{block}.adapter.down"), &adapter.down);
                    push_linear(&mut named, &format!("{l}.{block}.adapter.up"), &adapter.up);
                    push_norm(&mut named, &format!("{l}.{block}.LayerNorm"), norm);
                }
            }
            push_linear(&mut named, "classifier", &model.classifier);
            json!({
                "savant_adapter": "houlsby",
                "adapter_dim": dim,
                "non_linearity": "gelu",
                "placement": "after attention.output.dense and output.dense (after their dropout), before the residual LayerNorm: h + up(gelu(down(h)))",
                "base_model_name_or_path": base_model,
                "modules_to_save": ["classifier"],
            })
        }
        other => {
            return Err(Error::invalid(
                "model",
                None,
                format!(
                    "the {} strategy trains the whole model: it is saved as a model folder, not an adapter",
                    other.name()
                ),
            ))
        }
    };
    Ok(AdapterFiles {
        config_json: serde_json::to_string_pretty(&config).expect("JSON values serialise"),
        safetensors: serialize(named).await?,
    })
}

/// PEFT's `adapter_config.json` for a LoRA sequence classifier (PEFT 0.13+ field set).
fn peft_config(lora: &LoraConfig, base_model: &str) -> Value {
    let targets: Vec<&str> = lora
        .targets
        .iter()
        .map(|t| match t {
            LoraTarget::Query => "query",
            LoraTarget::Key => "key",
            LoraTarget::Value => "value",
            other => other.hf_path(),
        })
        .collect();
    json!({
        "alpha_pattern": {},
        "auto_mapping": null,
        "base_model_name_or_path": base_model,
        "bias": "none",
        "fan_in_fan_out": false,
        "inference_mode": true,
        "init_lora_weights": true,
        "layers_pattern": null,
        "layers_to_transform": null,
        "lora_alpha": lora.alpha,
        "lora_dropout": lora.dropout,
        "modules_to_save": ["classifier"],
        "peft_type": "LORA",
        "r": lora.r,
        "rank_pattern": {},
        "revision": null,
        "target_modules": targets,
        "task_type": "SEQ_CLS",
        "use_dora": false,
        "use_rslora": false,
    })
}

fn dense_of(layer: &crate::model::bert::Layer, target: LoraTarget) -> &crate::model::bert::Dense {
    match target {
        LoraTarget::Query => &layer.attention.query,
        LoraTarget::Key => &layer.attention.key,
        LoraTarget::Value => &layer.attention.value,
        LoraTarget::AttentionOutput => &layer.attention.output,
        LoraTarget::Intermediate => &layer.feed_forward.intermediate,
        LoraTarget::Output => &layer.feed_forward.output,
    }
}

/// A fine-tuned classifier to predict with, as `savant predict` and the page's predictor load
/// it: `base`'s own head, or — given an adapter folder from `savant train --mode lora|adapter`
/// (or a PEFT LoRA export) — the base model with the adapter on it. Returns the model and the
/// config with the fine-tuned labels (and how the head reads the encoder).
pub fn load_fine_tuned<F: ModelFiles, A: ModelFiles>(
    base: &F,
    base_config: &BertConfig,
    adapter: Option<&A>,
    device: &Device,
) -> Result<(BertClassifier, BertConfig, LoadNotes)> {
    let Some(files) = adapter else {
        let mut checkpoint = ModelFolder::checkpoint(base)?;
        let (model, notes) = load_classifier(base_config, &mut checkpoint, device)?;
        return Ok((model, base_config.clone(), notes));
    };
    let name = |f: &str| format!("{}/{f}", files.name());
    if base_config.int8 {
        return Err(Error::invalid(
            &format!("{}/config.json", base.name()),
            None,
            format!("the model is int8 (savant quantize), and an adapter goes on f32 weights: quantise the f32 base with its adapter instead (savant quantize --model BASE --adapter {})", files.name()),
        ));
    }
    let config_bytes = files.read("adapter_config.json")?.ok_or_else(|| {
        Error::invalid(
            &name("adapter_config.json"),
            None,
            "missing; --adapter wants a folder from savant train --mode lora|adapter",
        )
    })?;
    let strategy = read_adapter_config(&config_bytes, &name("adapter_config.json"))?;
    let labels_config = files.read("config.json")?.ok_or_else(|| {
        Error::invalid(&name("config.json"), None, "missing; it holds the fine-tuned labels (id2label)")
    })?;
    // The fine-tuned labels and what the head reads (`classifier_pooling`).
    let fine_tuned = BertConfig::from_json(&labels_config, &name("config.json"))?;
    let multi = fine_tuned.multi_label();
    let mut config = base_config.clone().with_labels(fine_tuned.labels).with_multi_label(multi);
    config.classifier_pooling = fine_tuned.classifier_pooling;
    let mut checkpoint = ModelFolder::checkpoint(base)?;
    // The base's notes (its unused pretraining heads) say nothing about the fine-tune.
    let (bert, _) = load_encoder(base_config, &mut checkpoint, device)?;
    let model = new_classifier(bert, &config, config.labels.len(), 0, device);
    let weights = files
        .weights("adapter_model.safetensors")?
        .ok_or_else(|| Error::invalid(&name("adapter_model.safetensors"), None, "missing"))?;
    let mut checkpoint = Checkpoint::open(weights, &name("adapter_model.safetensors"))?;
    let model = read_adapter(model, &config, &strategy, &mut checkpoint, device)?;
    Ok((model, config, LoadNotes::default()))
}

/// The strategy an `adapter_config.json` describes; `source` names the file in errors.
pub fn read_adapter_config(json: &[u8], source: &str) -> Result<Strategy> {
    let bad = |m: String| Error::invalid(source, None, m);
    let v: Value = serde_json::from_slice(json).map_err(|e| bad(format!("not valid JSON: {e}")))?;
    if v.get("savant_adapter").and_then(Value::as_str) == Some("houlsby") {
        let dim = v["adapter_dim"]
            .as_u64()
            .filter(|&d| d > 0)
            .ok_or_else(|| bad("adapter_dim must be a positive integer".into()))?;
        return Ok(Strategy::Adapter { dim: dim as usize });
    }
    match v.get("peft_type").and_then(Value::as_str) {
        Some("LORA") => {}
        Some(other) => {
            return Err(bad(format!("peft_type {other} is not supported (LORA and Savant's houlsby adapters are)")))
        }
        None => return Err(bad("neither peft_type nor savant_adapter is set: not an adapter config".into())),
    }
    for (key, unsupported) in [("use_dora", true), ("use_rslora", true), ("fan_in_fan_out", true)] {
        if v.get(key).and_then(Value::as_bool) == Some(unsupported) {
            return Err(bad(format!("{key}: true is not supported")));
        }
    }
    if v.get("bias").and_then(Value::as_str).is_some_and(|b| b != "none") {
        return Err(bad("only bias: \"none\" is supported".into()));
    }
    if v.get("rank_pattern").and_then(Value::as_object).is_some_and(|m| !m.is_empty())
        || v.get("alpha_pattern").and_then(Value::as_object).is_some_and(|m| !m.is_empty())
    {
        return Err(bad("per-layer rank_pattern / alpha_pattern are not supported".into()));
    }
    let r = v["r"].as_u64().filter(|&r| r > 0).ok_or_else(|| bad("r must be a positive integer".into()))? as usize;
    let alpha = match v.get("lora_alpha") {
        None | Some(Value::Null) => return Err(bad("lora_alpha is missing".into())),
        Some(a) => {
            a.as_f64().filter(|a| a.is_finite()).ok_or_else(|| bad(format!("lora_alpha must be a number, got {a}")))?
        }
    };
    let dropout = v.get("lora_dropout").and_then(Value::as_f64).unwrap_or(0.0);
    let names: Vec<String> = match &v["target_modules"] {
        Value::String(s) => vec![s.clone()],
        Value::Array(a) => a.iter().filter_map(|x| x.as_str().map(str::to_string)).collect(),
        _ => return Err(bad("target_modules must be a list of module names".into())),
    };
    let targets = names
        .iter()
        .map(|n| {
            LoraTarget::parse(n)
                .ok_or_else(|| bad(format!("target module '{n}' is not a BERT linear layer Savant knows")))
        })
        .collect::<Result<Vec<_>>>()?;
    Ok(Strategy::Lora(LoraConfig { r, alpha, dropout, targets }))
}

/// Puts an adapter folder's weights onto `model` (the base, with a classifier of the fine-tuned
/// label count whose values are replaced). Every missing, mis-shaped or unexpected tensor is
/// reported in one error, as for checkpoints.
pub fn read_adapter<R: Read + Seek>(
    model: BertClassifier,
    config: &BertConfig,
    strategy: &Strategy,
    checkpoint: &mut Checkpoint<R>,
    device: &Device,
) -> Result<BertClassifier> {
    let h = config.hidden_size;
    let labels = config.labels.len();
    let BertClassifier { mut bert, pooler, dropout, classifier: _, pooling } = model;
    let has_head = checkpoint.has(&format!("{PEFT_PREFIX}classifier.weight")) || checkpoint.has("classifier.weight");
    if !has_head {
        return Err(Error::invalid(
            checkpoint.source(),
            None,
            "the adapter has no classifier head (no 'classifier.weight' / 'base_model.model.classifier.weight'): it was saved without modules_to_save, so its fine-tuned head is lost",
        ));
    }
    if let Strategy::Lora(lora) = strategy {
        // A and B of every adapted layer: r × (in + out) weights each (in, out ≥ hidden).
        let per_layer = lora.targets.len() as u128 * lora.r as u128 * 2 * h as u128;
        checkpoint.check_holds(per_layer * bert.layers.len() as u128, "adapter_config.json (its r)")?;
    }
    let mut loader = Loader::new(checkpoint, device);
    let classifier = match strategy {
        Strategy::Lora(lora) => {
            for (i, layer) in bert.layers.iter_mut().enumerate() {
                for target in &lora.targets {
                    let base = format!("{PEFT_PREFIX}bert.encoder.layer.{i}.{}", target.hf_path());
                    let dense = lora_slot(layer, *target);
                    let [d_in, d_out] = dense.linear.weight.dims();
                    let a = loader.values(&format!("{base}.lora_A.weight"), &[lora.r, d_in]);
                    let b = loader.values(&format!("{base}.lora_B.weight"), &[d_out, lora.r]);
                    dense.lora = Some(Lora::from_values(
                        &transpose(&a, lora.r, d_in),
                        &transpose(&b, d_out, lora.r),
                        d_in,
                        d_out,
                        lora.r,
                        lora.alpha,
                        lora.dropout,
                        device,
                    ));
                }
            }
            loader.linear(&format!("{PEFT_PREFIX}classifier"), h, labels)
        }
        Strategy::Adapter { dim } => {
            let eps = config.layer_norm_eps;
            bert.embeddings.layer_norm = loader.layer_norm("bert.embeddings.LayerNorm", h, eps);
            for (i, layer) in bert.layers.iter_mut().enumerate() {
                let l = format!("bert.encoder.layer.{i}");
                let adapter = |loader: &mut Loader<'_, R>, block: &str| Adapter {
                    down: loader.linear(&format!("{l}.{block}.adapter.down"), h, *dim),
                    up: loader.linear(&format!("{l}.{block}.adapter.up"), *dim, h),
                };
                layer.attention.adapter = Some(adapter(&mut loader, "attention.output"));
                layer.attention.layer_norm = loader.layer_norm(&format!("{l}.attention.output.LayerNorm"), h, eps);
                layer.feed_forward.adapter = Some(adapter(&mut loader, "output"));
                layer.feed_forward.layer_norm = loader.layer_norm(&format!("{l}.output.LayerNorm"), h, eps);
            }
            loader.linear("classifier", h, labels)
        }
        other => {
            return Err(Error::invalid("adapter", None, format!("{} is not an adapter strategy", other.name())));
        }
    };
    finish(loader, &[])?;
    Ok(BertClassifier { bert, pooler, dropout, classifier, pooling })
}
