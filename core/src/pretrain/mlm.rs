//! HF `BertForMaskedLM`: the encoder, then `cls.predictions`: dense → activation → LayerNorm →
//! a decoder that shares the word-embedding matrix (`tie_word_embeddings`), plus a bias.

use std::io::{Read, Seek};

use burn::module::{Module, Param};
use burn::nn::{LayerNorm, LayerNormConfig, Linear};
use burn::tensor::{Device, Int, Tensor, TensorData};

use super::masking::MaskedBatch;
use crate::data::rng::SplitMix64;
use crate::model::hf::{encoder_names, encoder_prefix, finish, load_encoder_parts, push_linear, push_norm, serialize};
use crate::model::hf::{Loader, Named};
use crate::model::precision;
use crate::model::{Activation, BertConfig, BertModel, Checkpoint, EncoderInput, LoadNotes};
use crate::train::{cross_entropy, read_scalar, Objective};
use crate::Result;

/// `cls.predictions`: the prediction head over the vocabulary.
#[derive(Module, Debug)]
pub struct MlmHead {
    /// `transform.dense`.
    pub dense: Linear,
    /// `transform.LayerNorm`.
    pub layer_norm: LayerNorm,
    /// `cls.predictions.bias`, one per vocabulary entry.
    pub bias: Param<Tensor<1>>,
    #[module(skip)]
    pub activation: Activation,
}

/// The encoder and its MLM head. The pooler, when the encoder has one, is kept (and saved)
/// untouched: the objective does not use it, and a later `savant train` does.
#[derive(Module, Debug)]
pub struct BertForMaskedLm {
    pub bert: BertModel,
    pub head: MlmHead,
}

impl BertForMaskedLm {
    /// Vocabulary logits at `positions` (flat `row · seq_len + column` indices into the batch),
    /// `[positions, vocab]`. Only those rows go through the head: the decoder is most of an MLM
    /// step's work otherwise (vocab 30,522 × hidden for every token).
    pub fn forward_at(&self, input: &EncoderInput, positions: &[usize]) -> Tensor<2> {
        let hidden = self.bert.forward(input);
        let [batch, seq, size] = hidden.dims();
        let device = hidden.device();
        let rows: Vec<i64> = positions.iter().map(|&p| p as i64).collect();
        let rows = Tensor::<1, Int>::from_data(TensorData::new(rows, [positions.len()]), &device);
        let picked = hidden.reshape([batch * seq, size]).select(0, rows);
        let h = self.head.activation.apply(precision::linear(&self.head.dense, picked));
        let h = self.head.layer_norm.forward(h);
        let vocab = self.head.bias.dims()[0];
        // Tied decoder: logits = h · Eᵀ + b, E the word embeddings.
        let embeddings = self.bert.embeddings.word.weight.val();
        precision::matmul(h, embeddings.transpose()) + self.head.bias.val().reshape([1, vocab])
    }
}

impl Objective for BertForMaskedLm {
    type Batch = MaskedBatch;
    type LossOptions = ();

    fn items(batch: &MaskedBatch) -> usize {
        batch.targets.len()
    }

    /// Mean cross-entropy over the masked tokens: HF's MLM loss (`labels` -100 elsewhere).
    fn loss(&self, batch: &MaskedBatch, _: &(), device: &Device) -> Tensor<1> {
        let input = EncoderInput::new(&batch.tokens, device);
        let logits = self.forward_at(&input, &batch.positions);
        cross_entropy(logits, &batch.targets, None, device)
    }
}

/// exp(mean cross-entropy over every predicted token of `batches`), dropout off: the held-out
/// perplexity. NaN when no batch predicts anything.
pub async fn perplexity(model: &BertForMaskedLm, batches: &[MaskedBatch], device: &Device) -> Result<f64> {
    let model = model.valid();
    let (mut total, mut count) = (0.0f64, 0usize);
    for batch in batches.iter().filter(|b| !b.targets.is_empty()) {
        let loss = model.loss(batch, &(), device);
        total += read_scalar(loss).await? * batch.targets.len() as f64;
        count += batch.targets.len();
    }
    Ok(if count == 0 { f64::NAN } else { (total / count as f64).exp() })
}

/// Loads a masked-LM checkpoint: any BERT encoder (`BertModel`, or the `bert.` part of a task
/// model) and its `cls.predictions` head. A checkpoint without that head (sentence-transformers'
/// MiniLM, a classifier) gets a fresh one initialised as HF initialises it (dense N(0,
/// `initializer_range`), LayerNorm 1/0, bias 0) from `seed`; the returned flag says so.
pub fn load_masked_lm<R: Read + Seek>(
    config: &BertConfig,
    checkpoint: &mut Checkpoint<R>,
    seed: u64,
    device: &Device,
) -> Result<(BertForMaskedLm, LoadNotes, bool)> {
    crate::model::hf::refuse_int8_training(config, device, checkpoint.source())?;
    checkpoint.check_holds(config.min_weights(), "config.json")?;
    let prefix = encoder_prefix(checkpoint);
    let with_pooler = checkpoint.has(&format!("{prefix}pooler.dense.weight"));
    let has_head = checkpoint.has("cls.predictions.transform.dense.weight");
    let (h, vocab) = (config.hidden_size, config.vocab_size);
    let mut loader = Loader::new(checkpoint, device);
    let bert = load_encoder_parts(&mut loader, config, prefix, with_pooler);
    let head = if has_head {
        // The decoder is the word-embedding matrix, and its bias is `cls.predictions.bias`:
        // transformers stores each once, under either name; a second copy is read as a tie.
        let (bias_name, twin) = if loader.checkpoint.has("cls.predictions.bias") {
            ("cls.predictions.bias", "cls.predictions.decoder.bias")
        } else {
            ("cls.predictions.decoder.bias", "cls.predictions.bias")
        };
        let bias = loader.tensor(bias_name, [vocab]);
        loader.tie(twin, &[vocab]);
        loader.tie("cls.predictions.decoder.weight", &[vocab, h]);
        MlmHead {
            dense: loader.linear("cls.predictions.transform.dense", h, h),
            layer_norm: loader.layer_norm("cls.predictions.transform.LayerNorm", h, config.layer_norm_eps),
            bias: Param::from_tensor(bias),
            activation: config.hidden_act,
        }
    } else {
        fresh_head(config, seed, device)
    };
    let notes = finish(loader, &["classifier.", "qa_outputs.", "cls.seq_relationship."])?;
    Ok((BertForMaskedLm { bert, head }, notes, !has_head))
}

fn fresh_head(config: &BertConfig, seed: u64, device: &Device) -> MlmHead {
    let h = config.hidden_size;
    let mut rng = SplitMix64::new(seed ^ 0x0b1f_ed11);
    MlmHead {
        dense: crate::finetune::fresh_linear(h, h, config.initializer_range, &mut rng, device),
        layer_norm: LayerNormConfig::new(h).with_epsilon(config.layer_norm_eps).init(device),
        bias: Param::from_tensor(Tensor::zeros([config.vocab_size], device)),
        activation: config.hidden_act,
    }
}

/// `model.safetensors` bytes of a `BertForMaskedLM` as transformers saves one: `bert.*` (the
/// pooler too when there is one) and `cls.predictions.*`, the tied decoder left out as HF
/// leaves it out (it ties it back on load).
pub async fn masked_lm_to_safetensors(model: &BertForMaskedLm) -> Result<Vec<u8>> {
    let mut named = Vec::new();
    encoder_names(&mut named, &model.bert, "bert.");
    push_linear(&mut named, "cls.predictions.transform.dense", &model.head.dense);
    push_norm(&mut named, "cls.predictions.transform.LayerNorm", &model.head.layer_norm);
    named.push(Named::Vector("cls.predictions.bias".into(), model.head.bias.val()));
    serialize(named).await
}

/// The files of an HF `BertForMaskedLM` folder: `config.json`, `model.safetensors` (HF keys) and
/// the tokenizer files of the `base` folder, named relative to the folder.
pub async fn masked_lm_files<F: crate::model::ModelFiles>(
    model: &BertForMaskedLm,
    config: &BertConfig,
    base: &F,
) -> Result<Vec<(String, Vec<u8>)>> {
    let mut files = vec![
        ("model.safetensors".to_string(), masked_lm_to_safetensors(model).await?),
        ("config.json".to_string(), config.to_json("BertForMaskedLM")),
    ];
    for name in crate::train::setup::TOKENIZER_FILES {
        if let Some(bytes) = base.read(name)? {
            files.push((name.to_string(), bytes));
        }
    }
    Ok(files)
}
