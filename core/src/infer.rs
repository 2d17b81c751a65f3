//! Running a loaded model over token batches: logits and probabilities for a classifier, pooled
//! sentence vectors for an encoder. Reads go through `into_data_async`, which the browser's
//! WebGPU needs; natively the future is ready at once.

use burn::tensor::{DType, Device, Tensor};

use crate::model::bert::check_batch;
use crate::model::{l2_normalize, pool, BertClassifier, BertConfig, BertModel, EncoderInput, Pooling};
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
    let pooled = match pooling {
        Pooling::Cls => model.forward_first(&input),
        _ => pool(model.forward(&input), input.attention_mask, pooling),
    };
    read(if normalize { l2_normalize(pooled) } else { pooled }).await
}

/// Last hidden states and (when the model has a pooler) pooled output, for tests and tools.
pub async fn hidden_states(model: &BertModel, batch: &TokenBatch, device: &Device) -> Result<(Vec<f32>, Option<Vec<f32>>)> {
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
    let data = t.into_data_async().await.map_err(|e| Error::invalid("device", None, format!("reading results: {e:?}")))?;
    let data = if data.dtype() == DType::F32 { data } else { data.convert::<f32>() };
    data.try_into_vec::<f32>().map_err(|e| Error::invalid("device", None, format!("reading results: {e:?}")))
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
    pub values: Vec<f32>,
    /// Texts cut to the max length.
    pub truncated: usize,
    /// Texts with no content ("" or whitespace): run as `[CLS] [SEP]`, as HF does.
    pub empty: usize,
}

/// Groups texts of similar token length into batches of at most `batch_size`: padding is work
/// that changes no result, so sorting by length makes inference faster. Returns indices.
pub fn length_batches(encoded: &[Encoded], batch_size: usize) -> Vec<Vec<usize>> {
    let mut order: Vec<usize> = (0..encoded.len()).collect();
    order.sort_by_key(|&i| std::cmp::Reverse(encoded[i].ids.len()));
    order.chunks(batch_size.max(1)).map(<[usize]>::to_vec).collect()
}

fn scatter(out: &mut [f32], width: usize, rows: &[usize], values: &[f32]) {
    for (k, &row) in rows.iter().enumerate() {
        out[row * width..(row + 1) * width].copy_from_slice(&values[k * width..(k + 1) * width]);
    }
}

fn count_empty(texts: &[&str]) -> usize {
    texts.iter().filter(|t| t.trim().is_empty()).count()
}

/// Classifier logits for `texts`, in order.
pub async fn classify_texts(
    model: &BertClassifier,
    config: &BertConfig,
    tokenizer: &TextTokenizer,
    texts: &[&str],
    batch_size: usize,
    device: &Device,
) -> Result<TextOutputs> {
    let encoded = tokenizer.encode_each(texts)?;
    let width = config.labels.len();
    let mut values = vec![0.0; texts.len() * width];
    for rows in length_batches(&encoded, batch_size) {
        let items: Vec<&Encoded> = rows.iter().map(|&i| &encoded[i]).collect();
        let batch = TokenBatch::from_encoded(&items, tokenizer.pad_id());
        let logits = classify(model, config, &batch, device).await?;
        scatter(&mut values, width, &rows, &logits);
    }
    let truncated = encoded.iter().filter(|e| e.truncated).count();
    Ok(TextOutputs { width, values, truncated, empty: count_empty(texts) })
}

/// Sentence vectors for `texts`, in order.
#[allow(clippy::too_many_arguments)]
pub async fn embed_texts(
    model: &BertModel,
    config: &BertConfig,
    tokenizer: &TextTokenizer,
    texts: &[&str],
    batch_size: usize,
    pooling: Pooling,
    normalize: bool,
    device: &Device,
) -> Result<TextOutputs> {
    let encoded = tokenizer.encode_each(texts)?;
    let width = config.hidden_size;
    let mut values = vec![0.0; texts.len() * width];
    for rows in length_batches(&encoded, batch_size) {
        let items: Vec<&Encoded> = rows.iter().map(|&i| &encoded[i]).collect();
        let batch = TokenBatch::from_encoded(&items, tokenizer.pad_id());
        let vectors = embed(model, config, &batch, pooling, normalize, device).await?;
        scatter(&mut values, width, &rows, &vectors);
    }
    let truncated = encoded.iter().filter(|e| e.truncated).count();
    Ok(TextOutputs { width, values, truncated, empty: count_empty(texts) })
}
