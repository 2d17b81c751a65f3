//! Running a loaded model over token batches: logits and probabilities for a classifier, pooled
//! sentence vectors for an encoder. Reads go through `into_data_async`, which the browser's
//! WebGPU needs; natively the future is ready at once.

use burn::tensor::{DType, Device, Tensor};

use crate::long::{aggregate, window_counts, Aggregate, DocWindows, LongMode, LongText};
use crate::model::bert::check_batch;
use crate::model::{l2_normalize, BertClassifier, BertConfig, BertModel, EncoderInput, Pooling};
use crate::tokenize::{Encoded, TextTokenizer, TokenBatch};
use crate::{Error, Result};

/// Logits of one batch, row-major `[batch, labels]`.
pub async fn classify(
    model: &BertClassifier,
    config: &BertConfig,
    batch: &TokenBatch,
    device: &Device,
) -> Result<Vec<f32>> {
    check_batch(config, batch).map_err(|m| Error::invalid("input", None, m))?;
    let input = EncoderInput::new(batch, device);
    read(model.forward(&input)).await
}

/// What the head of `model` reads for one batch (the pooler's output or the pooled vectors),
/// row-major `[batch, hidden]`.
pub async fn head_features(
    model: &BertClassifier,
    config: &BertConfig,
    batch: &TokenBatch,
    device: &Device,
) -> Result<Vec<f32>> {
    check_batch(config, batch).map_err(|m| Error::invalid("input", None, m))?;
    read(model.features(&EncoderInput::new(batch, device))).await
}

/// Sentence vectors of one batch, row-major `[batch, hidden]`.
pub async fn embed(
    model: &BertModel,
    config: &BertConfig,
    batch: &TokenBatch,
    pooling: Pooling,
    normalize: bool,
    device: &Device,
) -> Result<Vec<f32>> {
    check_batch(config, batch).map_err(|m| Error::invalid("input", None, m))?;
    let input = EncoderInput::new(batch, device);
    let pooled = model.sentence(&input, pooling);
    read(if normalize { l2_normalize(pooled) } else { pooled }).await
}

/// Last hidden states and (when the model has a pooler) pooled output, for tests and tools.
pub async fn hidden_states(
    model: &BertModel,
    batch: &TokenBatch,
    device: &Device,
) -> Result<(Vec<f32>, Option<Vec<f32>>)> {
    let input = EncoderInput::new(batch, device);
    let hidden = model.forward(&input);
    let pooled = match &model.pooler {
        Some(p) => {
            let [rows, _, width] = hidden.dims();
            Some(read(p.forward(hidden.clone().narrow(1, 0, 1).reshape([rows, width]))).await?)
        }
        None => None,
    };
    Ok((read(hidden).await?, pooled))
}

async fn read<const D: usize>(t: Tensor<D>) -> Result<Vec<f32>> {
    let data =
        t.into_data_async().await.map_err(|e| Error::invalid("device", None, format!("reading results: {e:?}")))?;
    let data = if data.dtype() == DType::F32 { data } else { data.convert::<f32>() };
    data.try_into_vec::<f32>().map_err(|e| Error::invalid("device", None, format!("reading results: {e:?}")))
}

/// Element-wise logistic sigmoid of logits: a multi-label head's probabilities.
pub fn sigmoid(logits: &[f32]) -> Vec<f32> {
    logits.iter().map(|&x| (1.0 / (1.0 + (-(x as f64)).exp())) as f32).collect()
}

/// Row-wise softmax of `[rows, width]` logits, computed in f64 (what `torch.softmax` gives in f32
/// to within an ulp).
pub fn softmax_rows(logits: &[f32], width: usize) -> Vec<f32> {
    let mut out = Vec::with_capacity(logits.len());
    for row in logits.chunks(width) {
        let max = row.iter().fold(f32::NEG_INFINITY, |m, &v| m.max(v)) as f64;
        let exps: Vec<f64> = row.iter().map(|&v| (v as f64 - max).exp()).collect();
        let sum: f64 = exps.iter().sum();
        out.extend(exps.iter().map(|e| (e / sum) as f32));
    }
    out
}

/// Index of the largest value of each row (the first on ties, like `argmax`).
pub fn argmax_rows(values: &[f32], width: usize) -> Vec<usize> {
    values
        .chunks(width)
        .map(|row| row.iter().enumerate().fold(0, |best, (i, &v)| if v > row[best] { i } else { best }))
        .collect()
}

/// Outputs for a list of texts, in their order, `[texts, width]` row-major.
#[derive(Debug, Clone, PartialEq)]
pub struct TextOutputs {
    pub width: usize,
    /// One row per text (a windowed text's: its windows' rows aggregated).
    pub values: Vec<f32>,
    /// Texts cut to the max length, or past the windows allowed.
    pub truncated: usize,
    /// Texts with no content ("" or whitespace): run as `[CLS] [SEP]`, as HF does.
    pub empty: usize,
    /// Texts read in windows: each window's text, character span and output.
    pub windows: Option<WindowOutputs>,
}

/// The windows of texts read in windows ([`LongMode::Windows`]), in text order.
#[derive(Debug, Clone, PartialEq)]
pub struct WindowOutputs {
    /// The text of each window.
    pub doc: Vec<usize>,
    /// Character range of each window in its text.
    pub spans: Vec<(usize, usize)>,
    /// `[windows, width]` row-major.
    pub values: Vec<f32>,
}

impl WindowOutputs {
    /// Windows of each text.
    pub fn counts(&self, texts: usize) -> Vec<usize> {
        window_counts(&self.doc, texts)
    }
}

/// Groups texts of similar token length into batches of at most `batch_size`: padding is work
/// that changes no result, so sorting by length makes inference faster. Returns indices.
pub fn length_batches(encoded: &[Encoded], batch_size: usize) -> Vec<Vec<usize>> {
    let mut order: Vec<usize> = (0..encoded.len()).collect();
    order.sort_by_key(|&i| std::cmp::Reverse(encoded[i].ids.len()));
    order.chunks(batch_size.max(1)).map(<[usize]>::to_vec).collect()
}

/// Texts tokenised once and grouped by length into batches, longest first. Batches are
/// independent: run them in any order, on any number of workers, then [`TextBatches::gather`]
/// puts the outputs back in input order.
pub struct TextBatches {
    docs: DocWindows,
    windowed: bool,
    aggregate: Aggregate,
    batches: Vec<Vec<usize>>,
    pad_id: u32,
    empty: usize,
    /// Each windowed text's aggregated row L2-normalised ([`TextBatches::embeddings`]).
    normalize_texts: bool,
}

impl TextBatches {
    /// Each text cut at the tokenizer's max length.
    pub fn new(tokenizer: &TextTokenizer, texts: &[&str], batch_size: usize) -> Result<TextBatches> {
        TextBatches::long(tokenizer, texts, &LongText::TRUNCATE, Aggregate::MeanLogits, batch_size)
    }

    /// Each text read as `long` says; a windowed text's output is its windows' aggregated.
    pub fn long(
        tokenizer: &TextTokenizer,
        texts: &[&str],
        long: &LongText,
        aggregate: Aggregate,
        batch_size: usize,
    ) -> Result<TextBatches> {
        let docs = tokenizer.encode_docs(texts, long)?;
        let batches = length_batches(&docs.windows, batch_size);
        let empty = texts.iter().filter(|t| t.trim().is_empty()).count();
        let windowed = long.mode == LongMode::Windows;
        Ok(TextBatches {
            docs,
            windowed,
            aggregate,
            batches,
            pad_id: tokenizer.pad_id(),
            empty,
            normalize_texts: false,
        })
    }

    /// Texts to embed, read as `long` says: a windowed text's vector is the mean of its windows'
    /// vectors, L2-normalised after averaging when `normalize` (sentence-transformers' Normalize
    /// is the last module; a mean of unit vectors is not one). Returns the batches and whether
    /// the encoder normalises each row itself (its `normalize`: true unless windowed).
    pub fn embeddings(
        tokenizer: &TextTokenizer,
        texts: &[&str],
        long: &LongText,
        batch_size: usize,
        normalize: bool,
    ) -> Result<(TextBatches, bool)> {
        let mut batches = TextBatches::long(tokenizer, texts, long, Aggregate::MeanPool, batch_size)?;
        batches.normalize_texts = normalize && batches.windowed;
        let each = normalize && !batches.windowed;
        Ok((batches, each))
    }

    /// How many batches.
    pub fn len(&self) -> usize {
        self.batches.len()
    }

    pub fn is_empty(&self) -> bool {
        self.batches.is_empty()
    }

    /// Batch `i`, padded to its longest text.
    pub fn batch(&self, i: usize) -> TokenBatch {
        let items: Vec<&Encoded> = self.batches[i].iter().map(|&row| &self.docs.windows[row]).collect();
        TokenBatch::from_encoded(&items, self.pad_id)
    }

    /// Puts the outputs of every batch (`outputs[i]`: batch `i`, `[rows, width]` row-major) back
    /// in input order.
    pub fn gather(&self, width: usize, outputs: Vec<Vec<f32>>) -> TextOutputs {
        debug_assert_eq!(outputs.len(), self.batches.len());
        let mut values = vec![0.0; self.docs.windows.len() * width];
        for (rows, out) in self.batches.iter().zip(&outputs) {
            for (k, &row) in rows.iter().enumerate() {
                values[row * width..(row + 1) * width].copy_from_slice(&out[k * width..(k + 1) * width]);
            }
        }
        let (truncated, empty) = (self.docs.truncated, self.empty);
        if !self.windowed {
            return TextOutputs { width, values, truncated, empty, windows: None };
        }
        let docs = &self.docs;
        let mut texts = aggregate(&values, width, &docs.doc, docs.docs, self.aggregate);
        if self.normalize_texts {
            for row in texts.chunks_exact_mut(width) {
                // torch.nn.functional.normalize: x / max(‖x‖, 1e-12).
                let norm = row.iter().map(|v| v * v).sum::<f32>().sqrt().max(1e-12);
                row.iter_mut().for_each(|v| *v /= norm);
            }
        }
        TextOutputs {
            width,
            values: texts,
            truncated,
            empty,
            windows: Some(WindowOutputs { doc: docs.doc.clone(), spans: docs.spans.clone(), values }),
        }
    }
}

/// A loaded model and what to read from it for each text.
#[derive(Clone, Copy)]
pub enum TextModel<'a> {
    /// Logits, one per label.
    Classifier(&'a BertClassifier),
    /// Sentence vectors.
    Encoder { model: &'a BertModel, pooling: Pooling, normalize: bool },
}

impl TextModel<'_> {
    /// Values per text.
    pub fn width(&self, config: &BertConfig) -> usize {
        match self {
            TextModel::Classifier(_) => config.labels.len(),
            TextModel::Encoder { .. } => config.hidden_size,
        }
    }

    /// The outputs of one batch, `[rows, width]` row-major.
    pub async fn run(&self, config: &BertConfig, batch: &TokenBatch, device: &Device) -> Result<Vec<f32>> {
        match *self {
            TextModel::Classifier(model) => classify(model, config, batch, device).await,
            TextModel::Encoder { model, pooling, normalize } => {
                embed(model, config, batch, pooling, normalize, device).await
            }
        }
    }

    /// The outputs for `texts`, in order, one batch after another.
    pub async fn run_texts(
        &self,
        config: &BertConfig,
        tokenizer: &TextTokenizer,
        texts: &[&str],
        batch_size: usize,
        device: &Device,
    ) -> Result<TextOutputs> {
        self.run_batches(config, &TextBatches::new(tokenizer, texts, batch_size)?, device).await
    }

    /// The outputs for texts already cut into `batches`, in text order, one batch after another.
    pub async fn run_batches(
        &self,
        config: &BertConfig,
        batches: &TextBatches,
        device: &Device,
    ) -> Result<TextOutputs> {
        let mut outputs = Vec::with_capacity(batches.len());
        for i in 0..batches.len() {
            outputs.push(self.run(config, &batches.batch(i), device).await?);
        }
        Ok(batches.gather(self.width(config), outputs))
    }
}
