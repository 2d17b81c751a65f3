//! Masked-language-model pretraining: the masking rule's statistics and invariants, the MLM
//! head against transformers' `BertForMaskedLM` (`tests/fixtures/model/make_mlm.py`), HF keys on
//! save, and training through the one step (the loss falls; parts weigh by masked tokens).

mod common;

use std::io::Cursor;
use std::path::PathBuf;

use burn::tensor::Tensor;
use common::device;
use savant_core::data::rng::SplitMix64;
use savant_core::model::{BertConfig, Checkpoint, EncoderInput};
use savant_core::pretrain::{load_masked_lm, masked_lm_to_safetensors, BertForMaskedLm, MaskedBatch, Masking};
use savant_core::tokenize::{TextTokenizer, TokenBatch};
use savant_core::train::{LinearSchedule, OptimConfig, Parts, Trainer};

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/model").join(name)
}

/// One step, its parts computed here.
fn step<M: savant_core::train::Objective>(
    trainer: &mut savant_core::train::Trainer<M>,
    parts: &[M::Batch],
) -> Tensor<1> {
    pollster::block_on(trainer.step(parts, Parts::Here)).expect("a step")
}

fn read(dir: &str, file: &str) -> Vec<u8> {
    std::fs::read(fixture(dir).join(file)).unwrap()
}

fn config(dir: &str) -> BertConfig {
    BertConfig::from_json(&read(dir, "config.json"), "config.json").unwrap()
}

fn tokenizer(dir: &str) -> TextTokenizer {
    TextTokenizer::from_tokenizer_json(&read(dir, "tokenizer.json"), "tokenizer.json", 0).unwrap()
}

fn load(dir: &str, device: &burn::tensor::Device) -> (BertForMaskedLm, bool) {
    load_with(config(dir), dir, device)
}

fn load_with(config: BertConfig, dir: &str, device: &burn::tensor::Device) -> (BertForMaskedLm, bool) {
    let mut ckpt = Checkpoint::open(Cursor::new(read(dir, "model.safetensors")), "model.safetensors").unwrap();
    let (model, _notes, fresh) = load_masked_lm(&config, &mut ckpt, 7, device).unwrap();
    (model, fresh)
}

/// tiny-mlm without dropout: runs that must agree draw no masks.
fn load_without_dropout(device: &burn::tensor::Device) -> BertForMaskedLm {
    let mut c = config("tiny-mlm");
    c.hidden_dropout_prob = 0.0;
    c.attention_probs_dropout_prob = 0.0;
    load_with(c, "tiny-mlm", device).0
}

const TEXTS: [&str; 4] = [
    "the bank charged a late fee twice",
    "patient took the pill daily and slept better",
    "the contract clause shall be binding",
    "my refund for the disputed payment",
];

#[test]
fn token_masking_chooses_about_mlm_prob_of_ordinary_tokens_and_splits_80_10_10() {
    let tok = tokenizer("tiny-mlm");
    let masking = Masking::new(&tok, 0.15, false).unwrap();
    let encoded = tok.encode_each(&TEXTS).unwrap();
    let refs: Vec<_> = encoded.iter().collect();
    let mut rng = SplitMix64::new(3);
    let (mut eligible, mut chosen, mut as_mask, mut kept) = (0usize, 0usize, 0usize, 0usize);
    let mask_id = tok.token_id("[MASK]").unwrap() as i64;
    let special: Vec<i64> =
        ["[CLS]", "[SEP]", "[PAD]", "[UNK]", "[MASK]"].iter().map(|t| tok.token_id(t).unwrap() as i64).collect();
    for _ in 0..2000 {
        let batch = masking.mask(&refs, &mut rng);
        let original = TokenBatch::from_encoded(&refs, tok.pad_id());
        eligible += original.input_ids.iter().filter(|id| !special.contains(id)).count();
        assert!(!batch.positions.is_empty());
        for (&p, &target) in batch.positions.iter().zip(&batch.targets) {
            assert_eq!(original.input_ids[p], target as i64, "targets are the original ids");
            assert!(!special.contains(&(target as i64)), "a special token was chosen");
            chosen += 1;
            match batch.tokens.input_ids[p] {
                id if id == mask_id => as_mask += 1,
                id if id == target as i64 => kept += 1,
                _ => {}
            }
        }
        // Everything not chosen is untouched.
        for (i, (&a, &b)) in original.input_ids.iter().zip(&batch.tokens.input_ids).enumerate() {
            if !batch.positions.contains(&i) {
                assert_eq!(a, b);
            }
        }
    }
    let rate = chosen as f64 / eligible as f64;
    assert!((rate - 0.15).abs() < 0.01, "chose {rate:.4} of the tokens");
    let mask_share = as_mask as f64 / chosen as f64;
    assert!((mask_share - 0.8).abs() < 0.02, "[MASK] share {mask_share:.4}");
    // Kept: 10%, plus the random draws that hit the original id (1 in 148).
    let kept_share = kept as f64 / chosen as f64;
    assert!((kept_share - 0.1).abs() < 0.015, "kept share {kept_share:.4}");
    // Same seed, same masks.
    let a = masking.mask(&refs, &mut SplitMix64::new(9));
    let b = masking.mask(&refs, &mut SplitMix64::new(9));
    assert_eq!((a.positions, a.tokens.input_ids), (b.positions, b.tokens.input_ids));
}

#[test]
fn whole_word_masking_chooses_whole_words_and_round_len_times_prob_tokens() {
    let tok = tokenizer("tiny-mlm");
    let masking = Masking::new(&tok, 0.3, true).unwrap();
    // "charging", "checks", "reported" split into a word and a ## piece.
    let text = "charging checks reported the loan fee charges";
    let encoded = tok.encode_each(&[text]).unwrap();
    let ids = &encoded[0].ids;
    let pieces: Vec<String> = ids.iter().map(|&id| tok.id_to_token(id).unwrap()).collect();
    assert!(pieces.iter().filter(|p| p.starts_with("##")).count() >= 3, "{pieces:?}");
    let wanted = (ids.len() as f64 * 0.3).round_ties_even() as usize;
    for seed in 0..200 {
        let batch = masking.mask(&[&encoded[0]], &mut SplitMix64::new(seed));
        assert!(
            batch.positions.len() <= wanted && batch.positions.len() + 2 >= wanted,
            "{seed}: {:?}",
            batch.positions
        );
        for (c, piece) in pieces.iter().enumerate() {
            if piece.starts_with("##") {
                // A ## piece is chosen exactly when the token before it (its word) is.
                assert_eq!(batch.positions.contains(&c), batch.positions.contains(&(c - 1)), "{seed}: {pieces:?}");
            }
        }
    }
}

#[test]
fn masking_refuses_a_bad_probability_and_a_vocabulary_without_mask() {
    let tok = tokenizer("tiny-mlm");
    let e = Masking::new(&tok, 1.5, false).unwrap_err().to_string();
    assert!(e.contains("mlm_prob") && e.contains("1.5"), "{e}");
}

#[derive(serde::Deserialize)]
struct Expected {
    safetensors_keys: Vec<String>,
    attention_mask: Vec<Vec<i64>>,
    masked_input_ids: Vec<Vec<i64>>,
    labels: Vec<Vec<i64>>,
    logits_at_labels: Vec<Vec<f32>>,
    loss: f32,
}

fn expected() -> Expected {
    serde_json::from_slice(&std::fs::read(fixture("mlm_expected.json")).unwrap()).unwrap()
}

/// The fixture's masked batch, as Savant's [`MaskedBatch`].
fn fixture_batch(e: &Expected) -> MaskedBatch {
    let (rows, seq) = (e.masked_input_ids.len(), e.masked_input_ids[0].len());
    let mut positions = Vec::new();
    let mut targets = Vec::new();
    for (r, labels) in e.labels.iter().enumerate() {
        for (c, &l) in labels.iter().enumerate() {
            if l != -100 {
                positions.push(r * seq + c);
                targets.push(l as usize);
            }
        }
    }
    let tokens = TokenBatch {
        batch_size: rows,
        seq_len: seq,
        input_ids: e.masked_input_ids.concat(),
        token_type_ids: vec![0; rows * seq],
        attention_mask: e.attention_mask.concat(),
        lengths: e.attention_mask.iter().map(|m| m.iter().filter(|&&x| x == 1).count()).collect(),
        truncated: 0,
    };
    MaskedBatch { tokens, positions, targets }
}

fn values<const D: usize>(t: Tensor<D>) -> Vec<f32> {
    t.into_data().convert::<f32>().try_into_vec::<f32>().unwrap()
}

#[test]
fn masked_lm_logits_and_loss_match_transformers() {
    let e = expected();
    let (model, fresh) = load("tiny-mlm", &device());
    assert!(!fresh, "tiny-mlm has its cls.predictions head");
    let batch = fixture_batch(&e);
    let input = EncoderInput::new(&batch.tokens, &device());
    let logits = values(model.forward_at(&input, &batch.positions));
    let want = e.logits_at_labels.concat();
    assert_eq!(logits.len(), want.len());
    let worst = logits.iter().zip(&want).map(|(a, b)| (a - b).abs()).fold(0.0, f32::max);
    assert!(worst < 1e-4, "logits differ from transformers by {worst}");
    let loss = values(savant_core::train::Objective::loss(&model, &batch, &(), &device()))[0];
    assert!((loss - e.loss).abs() < 1e-5, "loss {loss}, transformers {}", e.loss);
}

#[test]
fn a_saved_masked_lm_has_transformers_keys_and_reads_back_the_same() {
    let e = expected();
    let (model, _) = load("tiny-mlm", &device());
    let bytes = pollster::block_on(masked_lm_to_safetensors(&model)).unwrap();
    let mut ckpt = Checkpoint::open(Cursor::new(bytes), "saved").unwrap();
    let mut keys = ckpt.names();
    keys.sort();
    let mut want = e.safetensors_keys.clone();
    want.sort();
    assert_eq!(keys, want, "the keys transformers saves");
    let (again, notes, fresh) = load_masked_lm(&config("tiny-mlm"), &mut ckpt, 7, &device()).unwrap();
    assert!(!fresh && notes.ignored.is_empty());
    let batch = fixture_batch(&e);
    let input = EncoderInput::new(&batch.tokens, &device());
    assert_eq!(values(model.forward_at(&input, &batch.positions)), values(again.forward_at(&input, &batch.positions)));
}

#[test]
fn an_encoder_without_a_head_gets_a_fresh_one() {
    let (model, fresh) = load("tiny-base", &device());
    assert!(fresh);
    let bias = values(model.head.bias.val());
    assert!(bias.iter().all(|&b| b == 0.0));
    assert!(model.bert.pooler.is_some(), "the encoder's pooler is kept for a later fine-tune");
}

fn masked_batches(tok: &TextTokenizer, seed: u64) -> (MaskedBatch, [MaskedBatch; 2]) {
    let masking = Masking::new(tok, 0.3, false).unwrap();
    let encoded = tok.encode_each(&TEXTS).unwrap();
    let refs: Vec<_> = encoded.iter().collect();
    let whole = masking.mask(&refs, &mut SplitMix64::new(seed));
    let a = masking.mask(&refs[..1], &mut SplitMix64::new(seed + 1));
    let b = masking.mask(&refs[1..], &mut SplitMix64::new(seed + 2));
    (whole, [a, b])
}

#[test]
fn mlm_training_lowers_the_loss_through_the_one_step() {
    let tok = tokenizer("tiny-mlm");
    let ad = device().autodiff();
    let model = load_without_dropout(&ad);
    let config = OptimConfig { lr: 3e-3, ..OptimConfig::default() };
    let mut trainer = Trainer::new(model, config, LinearSchedule::new(3e-3, 0.0, 1000), (), &ad);
    let (batch, _) = masked_batches(&tok, 1);
    let first = values(trainer.loss(&batch))[0];
    for _ in 0..25 {
        step(&mut trainer, std::slice::from_ref(&batch));
    }
    let last = values(trainer.loss(&batch))[0];
    assert!(last.is_finite() && last < 0.5 * first, "MLM loss {first} → {last}");
}

#[test]
fn parts_weigh_by_masked_tokens_like_one_batch() {
    // A step over two parts with different numbers of masked tokens takes the mean over all of
    // them, as one batch would (HF's MLM loss), not the mean of the parts' means.
    let tok = tokenizer("tiny-mlm");
    let ad = device().autodiff();
    let (_, [a, b]) = masked_batches(&tok, 4);
    assert_ne!(a.targets.len(), b.targets.len());
    let joined = join(&a, &b);
    let mut trainer =
        Trainer::new(load_without_dropout(&ad), OptimConfig::default(), LinearSchedule::new(1e-3, 0.0, 10), (), &ad);
    let whole = values(trainer.loss(&joined))[0];
    let (loss_a, loss_b) = (values(trainer.loss(&a))[0], values(trainer.loss(&b))[0]);
    let stepped = values(step(&mut trainer, &[a, b]))[0];
    assert!((stepped - whole).abs() < 1e-5, "the step's loss {stepped}, the batch's {whole}");
    let mean_of_means = (loss_a + loss_b) / 2.0;
    assert!((mean_of_means - whole).abs() > 1e-3, "the test cannot tell the weightings apart");
}

/// Two masked batches as one (padded to the longer).
fn join(a: &MaskedBatch, b: &MaskedBatch) -> MaskedBatch {
    let seq = a.tokens.seq_len.max(b.tokens.seq_len);
    let mut tokens = TokenBatch {
        batch_size: a.tokens.batch_size + b.tokens.batch_size,
        seq_len: seq,
        input_ids: Vec::new(),
        token_type_ids: Vec::new(),
        attention_mask: Vec::new(),
        lengths: [a.tokens.lengths.clone(), b.tokens.lengths.clone()].concat(),
        truncated: 0,
    };
    let mut positions = Vec::new();
    let mut row0 = 0;
    for part in [a, b] {
        let t = &part.tokens;
        for r in 0..t.batch_size {
            let pad = seq - t.seq_len;
            let row = r * t.seq_len..(r + 1) * t.seq_len;
            tokens.input_ids.extend(&t.input_ids[row.clone()]);
            tokens.input_ids.extend(std::iter::repeat_n(0, pad));
            tokens.token_type_ids.extend(&t.token_type_ids[row.clone()]);
            tokens.token_type_ids.extend(std::iter::repeat_n(0, pad));
            tokens.attention_mask.extend(&t.attention_mask[row]);
            tokens.attention_mask.extend(std::iter::repeat_n(0, pad));
        }
        positions.extend(part.positions.iter().map(|p| (row0 + p / t.seq_len) * seq + p % t.seq_len));
        row0 += t.batch_size;
    }
    MaskedBatch { tokens, positions, targets: [a.targets.clone(), b.targets.clone()].concat() }
}

/// Rows in memory, the same every pass.
struct Rows(Vec<Option<&'static str>>, usize);

impl savant_core::pretrain::corpus::DocumentSource for Rows {
    type Error = savant_core::Error;
    fn next_row(&mut self) -> Result<savant_core::pretrain::corpus::SourceRow, savant_core::Error> {
        use savant_core::pretrain::corpus::SourceRow;
        let row = self.0.get(self.1).copied();
        self.1 += 1;
        Ok(match row {
            None => SourceRow::End,
            Some(None) => SourceRow::Malformed,
            Some(Some(t)) => SourceRow::Fields(vec![t.to_string()]),
        })
    }
    fn rewind(&mut self) -> Result<(), savant_core::Error> {
        self.1 = 0;
        Ok(())
    }
}

// The corpus the CLI streams from its shards and the page can stream from picked files: the
// first documents held out, long ones cut into windows that keep every token, bad and empty rows
// counted once, every window of a pass served (shuffled) before the next pass, which skips the
// held-out documents again.
#[test]
fn the_corpus_holds_out_windows_counts_what_it_leaves_and_serves_every_window_each_pass() {
    use savant_core::pretrain::corpus::Corpus;
    let mut tok = tokenizer("tiny-mlm");
    tok.set_max_len(None).unwrap();
    let masking = Masking::new(&tok, 0.15, false).unwrap();
    let rows = vec![Some(TEXTS[0]), None, Some("  "), Some(TEXTS[1]), Some(TEXTS[2]), Some(TEXTS[3])];
    let mut corpus = Corpus::new(Rows(rows, 0), tok.clone(), 6, masking, 3, 7);
    let held = corpus.take_held_out(1).unwrap();
    let windows_of = |text: &str| tok.encode_each(&[text]).unwrap()[0].ids.len().saturating_sub(2).div_ceil(4);
    assert_eq!(held.len(), windows_of(TEXTS[0]), "the first document, cut into windows of 4 text tokens");
    let trained: usize = TEXTS[1..].iter().map(|t| windows_of(t)).sum();
    let mut first: Vec<Vec<u32>> = (0..trained).map(|_| corpus.next_window().unwrap().ids).collect();
    assert!(first.iter().all(|w| w.len() <= 6));
    assert_eq!((corpus.passes, corpus.documents, corpus.windows), (1, 3, trained as u64));
    assert_eq!(corpus.skipped.get("malformed"), Some(&1));
    assert_eq!(corpus.skipped.get("empty_text"), Some(&1));
    let mut second: Vec<Vec<u32>> = (0..trained).map(|_| corpus.next_window().unwrap().ids).collect();
    assert_eq!(corpus.passes, 2);
    assert_eq!(corpus.skipped.get("malformed"), Some(&1), "counted on the first pass only");
    first.sort();
    second.sort();
    assert_eq!(first, second, "each pass serves the same windows, never the held-out ones");

    let mut all_held =
        Corpus::new(Rows(vec![Some(TEXTS[0])], 0), tok.clone(), 6, Masking::new(&tok, 0.15, false).unwrap(), 3, 7);
    all_held.take_held_out(5).unwrap();
    let err = all_held.next_window().unwrap_err().to_string();
    assert!(err.contains("no document left to train on (1 held out"), "{err}");
}

// The page's corpus source: a table in memory, its text column row by row, the same rows each
// pass; a table without the column is refused by name.
#[test]
fn a_table_in_memory_is_a_corpus_source_pass_after_pass() {
    use savant_core::data::Format;
    use savant_core::pretrain::corpus::{DocumentSource, SourceRow, TableRows};
    let csv = b"id,text\n1,the bank\n2,\n3,a fee\n".to_vec();
    let mut rows = TableRows::new(csv.clone(), Format::Csv, "corpus.csv", &["text"]).unwrap();
    let pass = |rows: &mut TableRows| {
        let mut out = Vec::new();
        loop {
            match rows.next_row().unwrap() {
                SourceRow::Fields(mut f) => out.push(f.remove(0)),
                SourceRow::Malformed => out.push("<malformed>".into()),
                SourceRow::End => return out,
            }
        }
    };
    let first = pass(&mut rows);
    assert_eq!(first, ["the bank", "", "a fee"]);
    rows.rewind().unwrap();
    assert_eq!(pass(&mut rows), first);
    let err = TableRows::new(csv, Format::Csv, "corpus.csv", &["body"]).err().unwrap().to_string();
    assert!(err.contains("corpus.csv") && err.contains("body"), "{err}");
}
