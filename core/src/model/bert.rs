//! BERT, top to bottom: embeddings → N × (self-attention, feed-forward), post-LayerNorm → pooler
//! → heads. It computes what HF `BertModel` / `BertForSequenceClassification` compute, on any
//! device burn offers; weights come from [`super::hf`].

use burn::module::Module;
use burn::nn::{Embedding, LayerNorm, Linear};

use super::Dropout;
use burn::tensor::module::attention;
use burn::tensor::ops::AttentionModuleOptions;
use burn::tensor::{activation, Bool, Device, Int, Tensor, TensorData};

use super::config::{Activation, BertConfig, Pooling};
use super::int8::QuantLinear;
use super::precision;
use super::{Adapter, Lora};
use crate::tokenize::TokenBatch;
use std::sync::Arc;

/// A tokenised batch on a device.
#[derive(Debug, Clone)]
pub struct EncoderInput {
    pub input_ids: Tensor<2, Int>,
    pub token_type_ids: Tensor<2, Int>,
    /// 1.0 for real tokens, 0.0 for padding, `[batch, seq]`.
    pub attention_mask: Tensor<2>,
}

impl EncoderInput {
    pub fn new(batch: &TokenBatch, device: &Device) -> EncoderInput {
        let shape = [batch.batch_size, batch.seq_len];
        let ints = |v: &[i64]| Tensor::<2, Int>::from_data(TensorData::new(v.to_vec(), shape), device);
        let mask: Vec<f32> = batch.attention_mask.iter().map(|&m| m as f32).collect();
        EncoderInput {
            input_ids: ints(&batch.input_ids),
            token_type_ids: ints(&batch.token_type_ids),
            attention_mask: Tensor::from_data(TensorData::new(mask, shape), device),
        }
    }
}

/// Word + position + token-type embeddings, then LayerNorm and dropout.
#[derive(Module, Debug)]
pub struct Embeddings {
    pub word: Embedding,
    pub position: Embedding,
    pub token_type: Embedding,
    pub layer_norm: LayerNorm,
    pub dropout: Dropout,
}

impl Embeddings {
    pub fn forward(&self, input_ids: Tensor<2, Int>, token_type_ids: Tensor<2, Int>) -> Tensor<3> {
        let [_, seq_len] = input_ids.dims();
        let positions = Tensor::<1, Int>::arange(0..seq_len as i64, &input_ids.device()).unsqueeze::<2>();
        let x =
            self.word.forward(input_ids) + self.position.forward(positions) + self.token_type.forward(token_type_ids);
        self.dropout.forward(self.layer_norm.forward(x))
    }
}

/// Multi-head self-attention with its output projection and residual LayerNorm
/// (HF's `attention.self` + `attention.output`).
#[derive(Module, Debug)]
pub struct SelfAttention {
    pub query: Dense,
    pub key: Dense,
    pub value: Dense,
    pub output: Dense,
    /// A Houlsby adapter on the output projection, before the residual (adapter fine-tuning).
    pub adapter: Option<Adapter>,
    pub layer_norm: LayerNorm,
    pub probs_dropout: Dropout,
    pub output_dropout: Dropout,
    pub heads: usize,
}

impl SelfAttention {
    /// Padding keys get no attention, exactly as HF's extended attention mask (the float minimum
    /// added to their scores) does; padded query rows are computed too, as in HF.
    pub fn forward(&self, x: Tensor<3>, mask: &PaddingMask) -> Tensor<3> {
        self.forward_queries(x.clone(), x, mask)
    }

    /// The outputs at the positions of `queries` (rows of `x`, e.g. only the first token), which
    /// attend over all of `x`. Every step but attention works row by row, so these rows come out
    /// exactly as in the full forward pass.
    pub fn forward_queries(&self, queries: Tensor<3>, x: Tensor<3>, mask: &PaddingMask) -> Tensor<3> {
        let [batch, seq, hidden] = x.dims();
        let rows = queries.dims()[1];
        let head_size = hidden / self.heads;
        let (q, k, v) = (self.query.forward(queries.clone()), self.key.forward(x.clone()), self.value.forward(x));
        if let Some(keys) = &mask.keys {
            // Inference on the CPU: from the projections, over the real keys only.
            let context = super::cpu_fast::attention(q, k, v, keys, self.heads);
            return self.output_block(context, queries);
        }
        let split = |t: Tensor<3>, len: usize| t.reshape([batch, len, self.heads, head_size]).swap_dims(1, 2);
        let (q, k, v) = (split(q, rows), split(k, seq), split(v, seq));

        let context = if queries.device().is_autodiff() && self.probs_dropout.prob > 0.0 {
            // Training: attention dropout needs the probabilities, so spell the attention out.
            let scores =
                precision::matmul(q, k.swap_dims(2, 3)) * (1.0 / (head_size as f64).sqrt()) + mask.bias.clone();
            let probs = self.probs_dropout.forward(activation::softmax(scores, 3));
            precision::matmul(probs, v)
        } else {
            // Inference: the backend's fused attention (fewer passes over the scores).
            let padding = mask.padding.clone().expand([batch, self.heads, rows, seq]);
            attention(q, k, v, Some(padding), None, AttentionModuleOptions::default())
        };
        self.output_block(context.swap_dims(1, 2).reshape([batch, rows, hidden]), queries)
    }

    /// The output projection, dropout, the adapter if any, and the residual LayerNorm.
    fn output_block(&self, context: Tensor<3>, queries: Tensor<3>) -> Tensor<3> {
        let out = self.output_dropout.forward(self.output.forward(context));
        let out = match &self.adapter {
            Some(adapter) => adapter.forward(out),
            None => out,
        };
        self.layer_norm.forward(out + queries)
    }
}

/// A projection of the encoder: a linear layer, with a LoRA update beside it when LoRA
/// fine-tuning targets it, or its int8 form for inference on the CPU ([`Dense::quantized`]).
#[derive(Module, Debug)]
pub struct Dense {
    pub linear: Linear,
    pub lora: Option<Lora>,
    /// When set, `forward` runs this instead of `linear` (inference only: no gradient flows).
    #[module(skip)]
    pub int8: Option<Arc<QuantLinear>>,
}

impl Dense {
    pub fn new(linear: Linear) -> Dense {
        Dense { linear, lora: None, int8: None }
    }

    pub fn forward<const D: usize>(&self, x: Tensor<D>) -> Tensor<D> {
        if let Some(q) = &self.int8 {
            return int8_linear(q, x);
        }
        match &self.lora {
            Some(lora) => precision::linear(&self.linear, x.clone()) + lora.forward(x),
            None => precision::linear(&self.linear, x),
        }
    }

    /// The LoRA update folded into the weight, `W + (α/r)·A·B` (PEFT's `merge_and_unload`).
    pub fn merged(self) -> Dense {
        let Dense { linear, lora, int8 } = self;
        let Some(lora) = lora else { return Dense { linear, lora: None, int8 } };
        let delta = lora.a.val().matmul(lora.b.val()) * lora.scaling;
        let weight = linear.weight.map(|w| w + delta);
        Dense::new(Linear { weight, bias: linear.bias })
    }

    /// The layer (LoRA merged first) with int8 weights, one scale per output channel, for
    /// inference on the CPU; the f32 weights stay for anything else that reads them.
    pub fn quantized(self) -> Dense {
        if self.int8.is_some() {
            return self;
        }
        let dense = self.merged();
        let [d_in, d_out] = dense.linear.weight.dims();
        let values = |data: TensorData| data.convert::<f32>().try_into_vec::<f32>().expect("f32 after convert");
        let weight = values(dense.linear.weight.val().into_data());
        let bias = dense.linear.bias.as_ref().map(|b| values(b.val().into_data()));
        let q = QuantLinear::from_f32(&weight, d_in, d_out, bias.as_deref());
        Dense { int8: Some(Arc::new(q)), ..dense }
    }
}

/// `x · W + b` with int8 weights ([`QuantLinear`]): activations quantised per row.
fn int8_linear<const D: usize>(q: &QuantLinear, x: Tensor<D>) -> Tensor<D> {
    let device = x.device();
    let mut shape = x.dims();
    let rows = shape[..D - 1].iter().product();
    let data = x.into_data().convert::<f32>();
    let out = q.forward(data.as_slice::<f32>().expect("f32 after convert"), rows);
    shape[D - 1] = q.d_out;
    Tensor::from_data(TensorData::new(out, shape), &device)
}

/// Which keys are padding, in the two forms attention takes.
#[derive(Debug, Clone)]
pub struct PaddingMask {
    /// `[batch, 1, 1, seq]`: 0 for real tokens, the f32 minimum for padding (HF's form).
    pub bias: Tensor<4>,
    /// `[batch, 1, 1, seq]`: true for padding.
    pub padding: Tensor<4, Bool>,
    /// Each text's real keys, for the CPU attention of inference (`None` elsewhere).
    pub keys: Option<Arc<Vec<Vec<usize>>>>,
}

impl PaddingMask {
    pub fn new(attention_mask: &Tensor<2>) -> PaddingMask {
        let [batch, seq] = attention_mask.dims();
        let mask = attention_mask.clone().reshape([batch, 1, 1, seq]);
        let keys = super::cpu_fast::real_keys(attention_mask).map(Arc::new);
        PaddingMask { bias: (mask.clone().neg() + 1.0) * f32::MIN, padding: mask.equal_elem(0.0), keys }
    }
}

/// The position-wise feed-forward block (HF's `intermediate` + `output`).
#[derive(Module, Debug)]
pub struct FeedForward {
    pub intermediate: Dense,
    pub output: Dense,
    /// A Houlsby adapter on the output projection, before the residual (adapter fine-tuning).
    pub adapter: Option<Adapter>,
    pub layer_norm: LayerNorm,
    pub dropout: Dropout,
    #[module(skip)]
    pub activation: Activation,
}

impl FeedForward {
    pub fn forward(&self, x: Tensor<3>) -> Tensor<3> {
        let h = self.intermediate.forward(x.clone());
        let h = self.activation.apply(h);
        let out = self.dropout.forward(self.output.forward(h));
        let out = match &self.adapter {
            Some(adapter) => adapter.forward(out),
            None => out,
        };
        self.layer_norm.forward(out + x)
    }
}

/// One encoder layer (HF's `encoder.layer.N`).
#[derive(Module, Debug)]
pub struct Layer {
    pub attention: SelfAttention,
    pub feed_forward: FeedForward,
}

impl Layer {
    pub fn forward(&self, x: Tensor<3>, mask: &PaddingMask) -> Tensor<3> {
        self.feed_forward.forward(self.attention.forward(x, mask))
    }

    /// The output at the first position only, `[batch, 1, hidden]`: what a head that reads the
    /// first token needs from the last layer, for a fraction of the work.
    pub fn forward_first(&self, x: Tensor<3>, mask: &PaddingMask) -> Tensor<3> {
        let first = x.clone().narrow(1, 0, 1);
        self.feed_forward.forward(self.attention.forward_queries(first, x, mask))
    }
}

/// tanh(dense(first token)): BERT's pooled output, the input of its classification head.
#[derive(Module, Debug)]
pub struct Pooler {
    pub dense: Linear,
}

impl Pooler {
    /// `first`: the last hidden state of the first token, `[batch, hidden]`.
    pub fn forward(&self, first: Tensor<2>) -> Tensor<2> {
        super::activation::tanh(self.dense.forward(first))
    }
}

/// HF `BertModel`. The pooler is optional: sentence-transformers and MLM checkpoints may lack it.
#[derive(Module, Debug)]
pub struct BertModel {
    pub embeddings: Embeddings,
    pub layers: Vec<Layer>,
    pub pooler: Option<Pooler>,
}

impl BertModel {
    /// Last hidden states, `[batch, seq, hidden]`.
    pub fn forward(&self, input: &EncoderInput) -> Tensor<3> {
        let mask = PaddingMask::new(&input.attention_mask);
        let mut x = self.embeddings.forward(input.input_ids.clone(), input.token_type_ids.clone());
        for layer in &self.layers {
            x = layer.forward(x, &mask);
        }
        x
    }

    /// The last hidden state of the first token (`[CLS]`), `[batch, hidden]`, equal to
    /// `forward(..)[:, 0]`. The last layer runs its attention queries and feed-forward on that
    /// token alone: heads that read only it (the pooler, CLS pooling) skip most of that layer.
    pub fn forward_first(&self, input: &EncoderInput) -> Tensor<2> {
        let mask = PaddingMask::new(&input.attention_mask);
        let mut x = self.embeddings.forward(input.input_ids.clone(), input.token_type_ids.clone());
        let Some((last, rest)) = self.layers.split_last() else {
            let [batch, _, hidden] = x.dims();
            return x.narrow(1, 0, 1).reshape([batch, hidden]);
        };
        for layer in rest {
            x = layer.forward(x, &mask);
        }
        let first = last.forward_first(x, &mask);
        let [batch, _, hidden] = first.dims();
        first.reshape([batch, hidden])
    }

    /// Whether the projections run the int8 kernel ([`BertModel::quantized`], or an int8
    /// folder loaded on the CPU).
    pub fn runs_int8(&self) -> bool {
        self.layers.iter().any(|l| l.attention.query.int8.is_some())
    }

    /// The encoder with int8 projections (attention's query, key, value and output, the
    /// feed-forward's two): ONNX Runtime's dynamic quantisation, per output channel. Only on
    /// the CPU backend, for inference; the embeddings, LayerNorms and pooler stay f32.
    pub fn quantized(self) -> Result<BertModel, String> {
        let device = self.embeddings.word.weight.device();
        if !super::cpu_fast::on_flex(&device) || device.is_autodiff() {
            return Err(format!(
                "int8 inference runs on the CPU backend only, and this model is on {device:?}; use the cpu device"
            ));
        }
        let layers = self
            .layers
            .into_iter()
            .map(|mut l| {
                let a = &mut l.attention;
                for d in [&mut a.query, &mut a.key, &mut a.value, &mut a.output] {
                    *d = d.clone().quantized();
                }
                let f = &mut l.feed_forward;
                for d in [&mut f.intermediate, &mut f.output] {
                    *d = d.clone().quantized();
                }
                l
            })
            .collect();
        Ok(BertModel { layers, ..self })
    }

    /// Sentence vectors, `[batch, hidden]`, as sentence-transformers' `Pooling` computes them
    /// ([`pool`]); CLS pooling skips most of the last layer ([`BertModel::forward_first`]).
    pub fn sentence(&self, input: &EncoderInput, pooling: Pooling) -> Tensor<2> {
        match pooling {
            Pooling::Cls => self.forward_first(input),
            _ => pool(self.forward(input), input.attention_mask.clone(), pooling),
        }
    }
}

/// What a classification head reads: BERT's pooler, tanh(dense([CLS])) (HF's
/// `BertForSequenceClassification`), or a sentence vector pooled over the tokens as
/// sentence-transformers pools them — the vector a sentence encoder such as all-MiniLM-L6-v2 was
/// trained to produce (its pooler never was).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Head {
    Pooler,
    Pooled(Pooling),
}

impl Head {
    /// `pooler`, or the pooling's name (`mean`, `cls`, `max`, `mean_sqrt_len`).
    pub fn name(self) -> &'static str {
        match self {
            Head::Pooler => "pooler",
            Head::Pooled(p) => p.name(),
        }
    }

    pub fn parse(name: &str) -> Option<Head> {
        match name {
            "pooler" => Some(Head::Pooler),
            other => Pooling::parse(other).map(Head::Pooled),
        }
    }
}

/// A sequence classifier: head input → dropout → `classifier`. With [`Head::Pooler`] it is HF's
/// `BertForSequenceClassification` (and `pooler` is set); with [`Head::Pooled`] the linear layer
/// reads the pooled token vectors and there is no pooler.
#[derive(Module, Debug)]
pub struct BertClassifier {
    pub bert: BertModel,
    pub pooler: Option<Pooler>,
    pub dropout: Dropout,
    pub classifier: Linear,
    /// The pooling a pooled head reads (unused while `pooler` is set).
    #[module(skip)]
    pub pooling: Pooling,
}

impl BertClassifier {
    /// What the head reads.
    pub fn head(&self) -> Head {
        match self.pooler {
            Some(_) => Head::Pooler,
            None => Head::Pooled(self.pooling),
        }
    }

    /// The classifier with an int8 encoder ([`BertModel::quantized`]); the head stays f32.
    pub fn quantized(self) -> Result<BertClassifier, String> {
        Ok(BertClassifier { bert: self.bert.quantized()?, ..self })
    }

    /// The head's input, `[batch, hidden]`: the pooler's output or the pooled sentence vector.
    pub fn features(&self, input: &EncoderInput) -> Tensor<2> {
        match &self.pooler {
            Some(pooler) => pooler.forward(self.bert.forward_first(input)),
            None => self.bert.sentence(input, self.pooling),
        }
    }

    /// Logits, `[batch, labels]`.
    pub fn forward(&self, input: &EncoderInput) -> Tensor<2> {
        self.classifier.forward(self.dropout.forward(self.features(input)))
    }

    /// Logits of `docs` documents, `[docs, labels]`, from rows that are their windows (`doc`:
    /// each row's document): a document's head input is the mean of its windows' features.
    pub fn forward_documents(&self, input: &EncoderInput, doc: &[usize], docs: usize, device: &Device) -> Tensor<2> {
        let rows = doc.len();
        let means = Tensor::<2>::from_data(TensorData::new(crate::long::mean_matrix(doc, docs), [docs, rows]), device);
        let pooled = means.matmul(self.features(input));
        self.classifier.forward(self.dropout.forward(pooled))
    }
}

/// Sentence vectors from token vectors, as sentence-transformers' `Pooling` module computes them:
/// padding never counts.
pub fn pool(hidden: Tensor<3>, attention_mask: Tensor<2>, pooling: Pooling) -> Tensor<2> {
    let [batch, seq, size] = hidden.dims();
    let mask = attention_mask.reshape([batch, seq, 1]);
    match pooling {
        Pooling::Cls => hidden.narrow(1, 0, 1).reshape([batch, size]),
        Pooling::Mean | Pooling::MeanSqrtLen => {
            let sum = (hidden * mask.clone()).sum_dim(1).reshape([batch, size]);
            let count = mask.sum_dim(1).reshape([batch, 1]).clamp_min(1e-9);
            match pooling {
                Pooling::Mean => sum / count,
                _ => sum / count.sqrt(),
            }
        }
        Pooling::Max => {
            // Padding is set to -1e9 before the max, as sentence-transformers does.
            let masked = hidden + (mask.neg() + 1.0) * -1e9;
            masked.max_dim(1).reshape([batch, size])
        }
    }
}

/// Scales each row to unit L2 norm (sentence-transformers' `Normalize`, F.normalize eps 1e-12).
pub fn l2_normalize(x: Tensor<2>) -> Tensor<2> {
    let norm = x.clone().powf_scalar(2.0).sum_dim(1).sqrt().clamp_min(1e-12);
    x / norm
}

/// Checks that a batch fits the model: positions and token types within the tables.
pub fn check_batch(config: &BertConfig, batch: &TokenBatch) -> Result<(), String> {
    if batch.seq_len > config.max_position_embeddings {
        return Err(format!(
            "a text has {} tokens but the model has {} positions; set the max length to {} or less",
            batch.seq_len, config.max_position_embeddings, config.max_position_embeddings
        ));
    }
    if let Some(&id) = batch.input_ids.iter().find(|&&id| id < 0 || id as usize >= config.vocab_size) {
        return Err(format!(
            "the tokenizer produced id {id}, outside the model's vocabulary of {} (tokenizer and model do not match)",
            config.vocab_size
        ));
    }
    if let Some(&t) = batch.token_type_ids.iter().find(|&&t| t < 0 || t as usize >= config.type_vocab_size) {
        return Err(format!("token type {t} is outside the model's {} token types", config.type_vocab_size));
    }
    Ok(())
}
