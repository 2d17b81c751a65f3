//! Fine-tuning strategies: which parameters of a [`BertClassifier`] train, and which modules are
//! inserted. A strategy only reshapes the model; every strategy then goes through the one
//! training step of [`crate::train`].

pub mod lora;
pub mod peft;
pub mod quantize;

use burn::module::{Module, ModuleVisitor, Param};
use burn::nn::Linear;
use burn::tensor::{Device, Tensor};

pub use crate::model::{Adapter, Lora};
pub use lora::LoraTarget;

use crate::data::rng::SplitMix64;
use crate::model::bert::Dense;
use crate::model::BertClassifier;
use crate::{Error, Result};

/// LoRA settings, with PEFT's `LoraConfig` defaults except the rank and alpha, which follow the
/// common BERT recipe (r 8, α 16).
#[derive(Debug, Clone, PartialEq)]
pub struct LoraConfig {
    pub r: usize,
    pub alpha: f64,
    pub dropout: f64,
    pub targets: Vec<LoraTarget>,
}

impl Default for LoraConfig {
    fn default() -> Self {
        LoraConfig { r: 8, alpha: 16.0, dropout: 0.1, targets: vec![LoraTarget::Query, LoraTarget::Value] }
    }
}

/// What trains.
#[derive(Debug, Clone, PartialEq)]
pub enum Strategy {
    /// Every parameter.
    Full,
    /// Embeddings and the bottom `frozen_layers` layers frozen; `None` freezes the whole encoder
    /// and the pooler: only the classifier trains.
    Partial { frozen_layers: Option<usize> },
    /// Houlsby adapters of bottleneck `dim` in every layer; adapters, LayerNorms and the
    /// classifier train.
    Adapter { dim: usize },
    /// LoRA updates on the targeted linears; they and the classifier train (PEFT's
    /// `modules_to_save` for sequence classification).
    Lora(LoraConfig),
}

impl Strategy {
    pub fn name(&self) -> &'static str {
        match self {
            Strategy::Full => "full",
            Strategy::Partial { .. } => "partial",
            Strategy::Adapter { .. } => "adapter",
            Strategy::Lora(_) => "lora",
        }
    }
}

/// Reshapes `model` for `strategy`: freezes what must not train and inserts fresh adapters or
/// LoRA updates (drawn from `seed`) on `device`.
pub fn prepare(model: BertClassifier, strategy: &Strategy, seed: u64, device: &Device) -> Result<BertClassifier> {
    let BertClassifier { bert, pooler, dropout, classifier, pooling } = model;
    let layers = bert.layers.len();
    let hidden = bert.embeddings.layer_norm.gamma.dims()[0];
    let mut rng = SplitMix64::new(seed ^ 0x5eed_f1e7);
    let mut bert = bert;
    let mut pooler = pooler;
    match strategy {
        Strategy::Full => {}
        Strategy::Partial { frozen_layers } => {
            let k = frozen_layers.unwrap_or(layers);
            if k > layers {
                return Err(Error::invalid(
                    "freeze_layers",
                    None,
                    format!("{k} layers cannot be frozen: the model has {layers}"),
                ));
            }
            bert.embeddings = bert.embeddings.no_grad();
            bert.layers =
                bert.layers.into_iter().enumerate().map(|(i, l)| if i < k { l.no_grad() } else { l }).collect();
            if frozen_layers.is_none() {
                pooler = pooler.map(|p| p.no_grad());
            }
        }
        Strategy::Adapter { dim } => {
            if *dim == 0 {
                return Err(Error::invalid("adapter_dim", None, "the adapter dimension must be at least 1"));
            }
            let e = bert.embeddings;
            bert.embeddings = crate::model::bert::Embeddings {
                word: e.word.no_grad(),
                position: e.position.no_grad(),
                token_type: e.token_type.no_grad(),
                layer_norm: e.layer_norm,
                dropout: e.dropout,
            };
            bert.layers = bert
                .layers
                .into_iter()
                .map(|mut layer| {
                    // Every linear layer freezes; LayerNorms keep training.
                    let a = &mut layer.attention;
                    a.query = a.query.clone().no_grad();
                    a.key = a.key.clone().no_grad();
                    a.value = a.value.clone().no_grad();
                    a.output = a.output.clone().no_grad();
                    a.adapter = Some(Adapter::init(hidden, *dim, &mut rng, device));
                    let f = &mut layer.feed_forward;
                    f.intermediate = f.intermediate.clone().no_grad();
                    f.output = f.output.clone().no_grad();
                    f.adapter = Some(Adapter::init(hidden, *dim, &mut rng, device));
                    layer
                })
                .collect();
            pooler = pooler.map(|p| p.no_grad());
        }
        Strategy::Lora(config) => {
            if config.r == 0 || config.targets.is_empty() {
                return Err(Error::invalid("lora_r", None, "LoRA needs a rank of at least 1 and at least one target"));
            }
            bert = bert.no_grad();
            pooler = pooler.map(|p| p.no_grad());
            for layer in &mut bert.layers {
                for target in &config.targets {
                    let dense = lora_slot(layer, *target);
                    let [d_in, d_out] = dense.linear.weight.dims();
                    dense.lora =
                        Some(Lora::init(d_in, d_out, config.r, config.alpha, config.dropout, &mut rng, device));
                }
            }
        }
    }
    Ok(BertClassifier { bert, pooler, dropout, classifier, pooling })
}

/// The linear layer of `layer` that a LoRA target names.
pub fn lora_slot(layer: &mut crate::model::bert::Layer, target: LoraTarget) -> &mut Dense {
    match target {
        LoraTarget::Query => &mut layer.attention.query,
        LoraTarget::Key => &mut layer.attention.key,
        LoraTarget::Value => &mut layer.attention.value,
        LoraTarget::AttentionOutput => &mut layer.attention.output,
        LoraTarget::Intermediate => &mut layer.feed_forward.intermediate,
        LoraTarget::Output => &mut layer.feed_forward.output,
    }
}

/// Trainable and total parameter counts (what PEFT's `print_trainable_parameters` prints).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ParamCount {
    pub trainable: usize,
    pub total: usize,
}

impl ParamCount {
    pub fn of<M: Module>(model: &M) -> ParamCount {
        struct Counter(ParamCount);
        impl ModuleVisitor for Counter {
            fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
                let n = param.shape().num_elements();
                self.0.total += n;
                if param.val().is_require_grad() {
                    self.0.trainable += n;
                }
            }
        }
        let mut counter = Counter(ParamCount { trainable: 0, total: 0 });
        model.visit(&mut counter);
        counter.0
    }

    /// `trainable params: 147,456 || all params: 22,860,552 || trainable%: 0.6450`, as PEFT
    /// prints it.
    pub fn summary(&self) -> String {
        let pct = if self.total == 0 { 0.0 } else { 100.0 * self.trainable as f64 / self.total as f64 };
        format!(
            "trainable params: {} || all params: {} || trainable%: {pct:.4}",
            thousands(self.trainable),
            thousands(self.total)
        )
    }
}

fn thousands(n: usize) -> String {
    let s = n.to_string();
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// A sequence classifier over `bert` with a fresh head for `labels` classes, initialised as HF
/// initialises `BertForSequenceClassification`'s (weights N(0, `initializer_range`), zero bias).
/// The head reads what `config.classifier_pooling` says: the pooled token vectors (the
/// encoder's pooler is dropped), or the pooler (kept; a checkpoint without one gets a fresh one).
pub fn new_classifier(
    bert: crate::model::BertModel,
    config: &crate::model::BertConfig,
    labels: usize,
    seed: u64,
    device: &Device,
) -> BertClassifier {
    let h = config.hidden_size;
    let std = config.initializer_range;
    let mut rng = SplitMix64::new(seed ^ 0x4ead_c1a5);
    let mut fresh = |d_in: usize, d_out: usize| fresh_linear(d_in, d_out, std, &mut rng, device);
    let mut bert = bert;
    let old = bert.pooler.take();
    let pooler = match config.classifier_pooling {
        Some(_) => None,
        None => Some(old.unwrap_or_else(|| crate::model::bert::Pooler { dense: fresh(h, h) })),
    };
    let classifier = fresh(h, labels);
    BertClassifier {
        bert,
        pooler,
        dropout: crate::model::Dropout::new(config.classifier_dropout),
        classifier,
        pooling: config.classifier_pooling.unwrap_or(crate::model::Pooling::Mean),
    }
}

/// `model` with its classifier set to `weights` (`[labels, hidden]`, PyTorch's layout) and
/// `bias`: the same parameters (ids, trainability), new values — a probe-initialised head.
pub fn with_head(model: BertClassifier, weights: &[f32], bias: &[f32]) -> BertClassifier {
    let [hidden, labels] = model.classifier.weight.dims();
    let weights = crate::model::hf::transpose(weights, labels, hidden);
    let set = |old: Tensor<2>| {
        let t = Tensor::from_data(burn::tensor::TensorData::new(weights.clone(), [hidden, labels]), &old.device());
        if old.is_require_grad() {
            t.require_grad()
        } else {
            t
        }
    };
    let set_bias = |old: Tensor<1>| {
        let t = Tensor::from_data(burn::tensor::TensorData::new(bias.to_vec(), [labels]), &old.device());
        if old.is_require_grad() {
            t.require_grad()
        } else {
            t
        }
    };
    let BertClassifier { bert, pooler, dropout, classifier, pooling } = model;
    let classifier = Linear { weight: classifier.weight.map(set), bias: classifier.bias.map(|b| b.map(set_bias)) };
    BertClassifier { bert, pooler, dropout, classifier, pooling }
}

/// A linear layer as HF initialises a new one: weights N(0, `std`) drawn from `rng`, zero bias.
pub(crate) fn fresh_linear(d_in: usize, d_out: usize, std: f64, rng: &mut SplitMix64, device: &Device) -> Linear {
    let w: Vec<f32> = (0..d_in * d_out).map(|_| (normal(rng) * std) as f32).collect();
    crate::model::adapter::linear(&w, &vec![0.0; d_out], d_in, d_out, device)
}

/// A standard normal draw (Box–Muller).
fn normal(rng: &mut SplitMix64) -> f64 {
    let u1 = ((rng.next_u64() >> 11) as f64 + 1.0) / (1u64 << 53) as f64;
    let u2 = (rng.next_u64() >> 11) as f64 / (1u64 << 53) as f64;
    (-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos()
}

/// Every LoRA update folded into its linear layer: the plain fine-tuned model, which HF loads as
/// a `BertForSequenceClassification` (PEFT's `merge_and_unload`). Houlsby adapters are layers of
/// their own and cannot be folded: an error says so.
pub fn merge(model: BertClassifier) -> Result<BertClassifier> {
    let BertClassifier { mut bert, pooler, dropout, classifier, pooling } = model;
    if bert.layers.iter().any(|l| l.attention.adapter.is_some() || l.feed_forward.adapter.is_some()) {
        return Err(Error::invalid(
            "adapter",
            None,
            "Houlsby adapters add layers of their own and cannot be merged into the base weights; predict with the base model and the adapter folder",
        ));
    }
    bert.layers = bert
        .layers
        .into_iter()
        .map(|mut layer| {
            let a = layer.attention;
            layer.attention = crate::model::bert::SelfAttention {
                query: a.query.merged(),
                key: a.key.merged(),
                value: a.value.merged(),
                output: a.output.merged(),
                ..a
            };
            let f = layer.feed_forward;
            layer.feed_forward = crate::model::bert::FeedForward {
                intermediate: f.intermediate.merged(),
                output: f.output.merged(),
                ..f
            };
            layer
        })
        .collect();
    Ok(BertClassifier { bert, pooler, dropout, classifier, pooling })
}
