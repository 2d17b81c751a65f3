//! Fine-tuning strategies through the one training step, on the tiny random BERT of the model
//! fixtures: each strategy lowers the loss and changes exactly the parameters it should; fresh
//! LoRA (B = 0) and adapters (up = 0) leave the logits unchanged; adapter folders read back give
//! the same logits.

use std::collections::BTreeMap;
use std::io::Cursor;
use std::path::PathBuf;

use burn::module::{Module, ModuleVisitor, Param};
mod common;

use burn::tensor::{Device, Tensor};
use common::device;
use savant_core::finetune::peft::{read_adapter, read_adapter_config, write_adapter};
use savant_core::finetune::{prepare, LoraConfig, LoraTarget, ParamCount, Strategy};
use savant_core::infer::classify;
use savant_core::model::{load_classifier, BertClassifier, BertConfig, Checkpoint, EncoderInput};
use savant_core::tokenize::{TextTokenizer, TokenBatch};
use savant_core::train::{cross_entropy, LabelledBatch, LinearSchedule, OptimConfig, Parts, Trainer};

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

fn on_cpu() -> bool {
    device() == Device::flex()
}

struct Tiny {
    config: BertConfig,
    tokenizer: TextTokenizer,
}

fn tiny() -> Tiny {
    let dir = fixture("tiny-cls");
    let config = BertConfig::from_json(&std::fs::read(dir.join("config.json")).unwrap(), "config.json").unwrap();
    let tokenizer = TextTokenizer::from_tokenizer_json(
        &std::fs::read(dir.join("tokenizer.json")).unwrap(),
        "tokenizer.json",
        config.pad_token_id,
    )
    .unwrap();
    Tiny { config, tokenizer }
}

fn load(t: &Tiny, device: &Device) -> BertClassifier {
    let bytes = std::fs::read(fixture("tiny-cls").join("model.safetensors")).unwrap();
    let mut ckpt = Checkpoint::open(Cursor::new(bytes), "model.safetensors").unwrap();
    load_classifier(&t.config, &mut ckpt, device).unwrap().0
}

/// A small separable task: the class is which of two words the text contains.
fn task(t: &Tiny) -> LabelledBatch {
    let words = [("billing charge fee", 0usize), ("fraud stolen card", 1), ("other question", 2)];
    let mut texts = Vec::new();
    let mut labels = Vec::new();
    for i in 0..12 {
        let (w, l) = words[i % 3];
        texts.push(format!("{w} {}", ["the", "a", "my", "this"][i % 4]));
        labels.push(l);
    }
    let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
    LabelledBatch { tokens: t.tokenizer.encode_batch(&refs).unwrap(), labels, doc: Vec::new(), targets: Vec::new() }
}

/// Every float parameter by its module path.
fn snapshot(model: &BertClassifier) -> BTreeMap<String, Vec<f32>> {
    struct Snap {
        path: Vec<String>,
        out: BTreeMap<String, Vec<f32>>,
    }
    impl ModuleVisitor for Snap {
        fn enter_module(&mut self, name: &str, _container: &str) {
            self.path.push(name.to_string());
        }
        fn exit_module(&mut self, _name: &str, _container: &str) {
            self.path.pop();
        }
        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
            let values = param.val().into_data().convert::<f32>().try_to_vec::<f32>().unwrap();
            self.out.insert(self.path.join("."), values);
        }
    }
    let mut s = Snap { path: Vec::new(), out: BTreeMap::new() };
    model.visit(&mut s);
    s.out
}

fn logits(model: &BertClassifier, t: &Tiny, batch: &TokenBatch) -> Vec<f32> {
    pollster::block_on(classify(model, &t.config, batch, &device())).unwrap()
}

fn max_diff(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).map(|(x, y)| (x - y).abs()).fold(0.0, f32::max)
}

fn lora() -> Strategy {
    Strategy::Lora(LoraConfig { r: 4, alpha: 8.0, dropout: 0.0, targets: vec![LoraTarget::Query, LoraTarget::Value] })
}

/// The loss without dropout (the model as evaluated), so that before/after compare weights only.
fn eval_loss(trainer: &Trainer, batch: &LabelledBatch) -> f64 {
    let model = trainer.eval_model();
    let input = EncoderInput::new(&batch.tokens, &device());
    let loss = cross_entropy(model.forward(&input), &batch.labels, None, &device());
    loss.into_data().convert::<f32>().try_to_vec::<f32>().unwrap()[0] as f64
}

/// Trains `strategy` for a few steps; returns (loss before, loss after, changed parameter paths).
fn train(strategy: &Strategy, lr: f64) -> (f64, f64, Vec<String>, ParamCount) {
    let t = tiny();
    let ad = device().autodiff();
    let model = prepare(load(&t, &ad), strategy, 1, &ad).unwrap();
    let count = ParamCount::of(&model);
    let before = snapshot(&model);
    let config = OptimConfig { lr, weight_decay: 0.01, ..OptimConfig::default() };
    let mut trainer = Trainer::new(model, config, LinearSchedule::new(lr, 0.0, 1000), None, &ad);
    let batch = task(&t);
    let first = eval_loss(&trainer, &batch);
    for _ in 0..30 {
        step(&mut trainer, std::slice::from_ref(&batch));
    }
    let last = eval_loss(&trainer, &batch);
    let after = snapshot(trainer.model());
    let changed = after
        .iter()
        .filter(|(k, v)| before.get(*k).is_none_or(|b| max_diff(b, v) > 0.0))
        .map(|(k, _)| k.clone())
        .collect();
    (first, last, changed, count)
}

fn all_match(changed: &[String], allowed: impl Fn(&str) -> bool) -> Vec<&String> {
    changed.iter().filter(|p| !allowed(p)).collect()
}

#[test]
fn full_fine_tuning_trains_everything() {
    let (first, last, changed, count) = train(&Strategy::Full, 1e-3);
    assert!(last < first * 0.5, "loss {first} -> {last}");
    assert_eq!(count.trainable, count.total);
    for must in ["bert.embeddings.word.weight", "bert.layers.0.attention.query.linear.weight", "classifier.weight"] {
        assert!(changed.iter().any(|p| p == must), "{must} did not change: {changed:?}");
    }
}

#[test]
fn partial_freezes_embeddings_and_the_bottom_layers() {
    let (first, last, changed, count) = train(&Strategy::Partial { frozen_layers: Some(1) }, 1e-3);
    assert!(last < first, "loss {first} -> {last}");
    assert!(count.trainable < count.total);
    let wrong = all_match(&changed, |p| !p.starts_with("bert.embeddings") && !p.starts_with("bert.layers.0."));
    assert!(wrong.is_empty(), "frozen parameters changed: {wrong:?}");
    assert!(changed.iter().any(|p| p.starts_with("bert.layers.1.")), "{changed:?}");

    let (first, last, changed, _) = train(&Strategy::Partial { frozen_layers: None }, 1e-2);
    assert!(last < first, "loss {first} -> {last}");
    assert!(changed.iter().all(|p| p.starts_with("classifier.")), "only the head trains: {changed:?}");
}

#[test]
fn adapters_train_with_layer_norms_and_the_head_only() {
    let (first, last, changed, count) = train(&Strategy::Adapter { dim: 8 }, 1e-3);
    assert!(last < first, "loss {first} -> {last}");
    assert!(count.trainable * 2 < count.total, "{count:?}");
    let wrong =
        all_match(&changed, |p| p.contains(".adapter.") || p.contains("layer_norm") || p.starts_with("classifier."));
    assert!(wrong.is_empty(), "parameters outside adapters / LayerNorms / head changed: {wrong:?}");
    assert!(changed.iter().any(|p| p.contains(".adapter.up.")), "{changed:?}");
}

#[test]
fn lora_trains_its_updates_and_the_head_only() {
    let (first, last, changed, count) = train(&lora(), 1e-2);
    assert!(last < first, "loss {first} -> {last}");
    let wrong = all_match(&changed, |p| p.contains(".lora.") || p.starts_with("classifier."));
    assert!(wrong.is_empty(), "parameters outside LoRA / head changed: {wrong:?}");
    for must in ["bert.layers.0.attention.query.lora.b", "bert.layers.1.attention.value.lora.a", "classifier.weight"] {
        assert!(changed.iter().any(|p| p == must), "{must} did not change: {changed:?}");
    }
    assert!(!changed.iter().any(|p| p.contains("key.lora")), "key was not targeted");
    // PEFT's count for r=4 on query and value of 2 layers of 32 wide: 2·2·(32·4 + 4·32), head 32·3+3.
    let t = tiny();
    let h = t.config.hidden_size;
    let layers = t.config.num_hidden_layers;
    assert_eq!(count.trainable, layers * 2 * (h * 4 + 4 * h) + h * 3 + 3);
}

#[test]
fn fresh_lora_and_adapters_leave_the_logits_unchanged() {
    let t = tiny();
    let batch = task(&t).tokens;
    let base = logits(&load(&t, &device()), &t, &batch);
    for strategy in [lora(), Strategy::Adapter { dim: 8 }] {
        let model = prepare(load(&t, &device()), &strategy, 3, &device()).unwrap();
        let got = logits(&model, &t, &batch);
        assert!(max_diff(&base, &got) < 1e-6, "{}: {}", strategy.name(), max_diff(&base, &got));
    }
}

/// `strategy` prepared (drawn from `seed`) and trained for five steps at lr 1e-2; the eval copy.
fn trained_briefly(t: &Tiny, strategy: &Strategy, batch: &LabelledBatch, seed: u64) -> BertClassifier {
    let ad = device().autodiff();
    let model = prepare(load(t, &ad), strategy, seed, &ad).unwrap();
    let config = OptimConfig { lr: 1e-2, ..Default::default() };
    let mut trainer = Trainer::new(model, config, LinearSchedule::new(1e-2, 0.0, 100), None, &ad);
    for _ in 0..5 {
        step(&mut trainer, std::slice::from_ref(batch));
    }
    trainer.eval_model()
}

#[test]
fn adapter_folders_read_back_to_the_same_logits() {
    let t = tiny();
    let batch = task(&t);
    for strategy in [lora(), Strategy::Adapter { dim: 8 }] {
        let trained = trained_briefly(&t, &strategy, &batch, 5);
        let want = logits(&trained, &t, &batch.tokens);
        let files = pollster::block_on(write_adapter(&trained, &strategy, "tiny-cls")).unwrap();
        let read = read_adapter_config(files.config_json.as_bytes(), "adapter_config.json").unwrap();
        assert_eq!(read, strategy, "the config round-trips");
        let mut ckpt = Checkpoint::open(Cursor::new(files.safetensors.clone()), "adapter_model.safetensors").unwrap();
        let names = ckpt.names();
        let head = if matches!(strategy, Strategy::Lora(_)) {
            "base_model.model.classifier.weight"
        } else {
            "classifier.weight"
        };
        assert!(names.iter().any(|n| n == head), "the head is saved: {names:?}");
        let back = read_adapter(load(&t, &device()), &t.config, &read, &mut ckpt, &device()).unwrap();
        let got = logits(&back, &t, &batch.tokens);
        assert!(max_diff(&want, &got) < 1e-6, "{}: {}", strategy.name(), max_diff(&want, &got));
        assert!(
            max_diff(&want, &logits(&load(&t, &device()), &t, &batch.tokens)) > 1e-4,
            "training changed the logits"
        );
    }
}

#[test]
fn an_adapter_without_its_head_or_with_wrong_shapes_is_refused() {
    let t = tiny();
    let strategy = lora();
    let model = prepare(load(&t, &device()), &strategy, 5, &device()).unwrap();
    let files = pollster::block_on(write_adapter(&model, &strategy, "tiny-cls")).unwrap();
    // Drop the head: rewrite the file without the classifier tensors.
    let st = safetensors::SafeTensors::deserialize(&files.safetensors).unwrap();
    let kept: Vec<(String, safetensors::tensor::TensorView)> =
        st.tensors().into_iter().filter(|(n, _)| !n.contains("classifier")).collect();
    let headless = safetensors::tensor::serialize(kept, None).unwrap();
    let mut ckpt = Checkpoint::open(Cursor::new(headless), "adapter_model.safetensors").unwrap();
    let err = read_adapter(load(&t, &device()), &t.config, &strategy, &mut ckpt, &device()).unwrap_err().to_string();
    assert!(err.contains("no classifier head"), "{err}");

    // A rank the file does not have: every LoRA tensor is named with both shapes.
    let wrong = Strategy::Lora(LoraConfig {
        r: 2,
        alpha: 8.0,
        dropout: 0.0,
        targets: vec![LoraTarget::Query, LoraTarget::Value],
    });
    let mut ckpt = Checkpoint::open(Cursor::new(files.safetensors.clone()), "adapter_model.safetensors").unwrap();
    let err = read_adapter(load(&t, &device()), &t.config, &wrong, &mut ckpt, &device()).unwrap_err().to_string();
    assert!(err.contains("lora_A.weight") && err.contains("[4, 32]") && err.contains("[2, 32]"), "{err}");
}

#[test]
fn the_cpu_gelu_and_its_gradient_match_burns() {
    use burn::tensor::activation;
    use savant_core::model::cpu_fast::gelu;
    let ad = device().autodiff();
    let values: Vec<f32> = (0..2000).map(|i| (i as f32 - 1000.0) * 0.006).collect();
    let run = |f: &dyn Fn(Tensor<2>) -> Tensor<2>| {
        let x = Tensor::<2>::from_data(burn::tensor::TensorData::new(values.clone(), [40, 50]), &ad).require_grad();
        let y = f(x.clone());
        let weights = Tensor::<2>::from_data(
            burn::tensor::TensorData::new((0..2000).map(|i| (i % 7) as f32 - 3.0).collect::<Vec<f32>>(), [40, 50]),
            &ad,
        );
        let grads = (y.clone() * weights).sum().backward();
        let g = x.grad(&grads).unwrap().into_data().try_to_vec::<f32>().unwrap();
        (y.into_data().try_to_vec::<f32>().unwrap(), g)
    };
    let (y_fast, g_fast) = run(&|x| gelu(x));
    let (y_burn, g_burn) = run(&|x| activation::gelu(x));
    assert!(max_diff(&y_fast, &y_burn) < 2e-6, "values: {}", max_diff(&y_fast, &y_burn));
    assert!(max_diff(&g_fast, &g_burn) < 2e-5, "gradients: {}", max_diff(&g_fast, &g_burn));
}

#[test]
fn dropout_zeroes_about_p_scales_the_rest_and_follows_the_seed() {
    use savant_core::model::Dropout;
    let ad = device().autodiff();
    let drop = Dropout::new(0.25);
    let draw = || {
        let x = Tensor::<2>::ones([100, 100], &ad);
        drop.forward(x).into_data().try_to_vec::<f32>().unwrap()
    };
    ad.seed(7);
    let a = draw();
    ad.seed(7);
    let b = draw();
    let c = draw();
    // Reproducible draws are promised on the CPU; GPU backends seed their own generators.
    if on_cpu() {
        assert_eq!(a, b, "the same seed gives the same mask");
    }
    assert_ne!(b, c, "the next draw differs");
    let zeros = a.iter().filter(|&&v| v == 0.0).count() as f64 / a.len() as f64;
    assert!((zeros - 0.25).abs() < 0.02, "dropped fraction {zeros}");
    assert!(a.iter().all(|&v| v == 0.0 || (v - 1.0 / 0.75).abs() < 1e-6), "kept values scaled by 1/(1-p)");
    let x = Tensor::<2>::ones([10, 10], &device());
    assert_eq!(drop.forward(x).into_data().try_to_vec::<f32>().unwrap(), vec![1.0; 100], "identity when not training");
}

#[test]
fn a_merged_lora_model_gives_the_adapter_models_logits() {
    use savant_core::finetune::merge;
    let t = tiny();
    let batch = task(&t);
    let trained = trained_briefly(&t, &lora(), &batch, 9);
    let want = logits(&trained, &t, &batch.tokens);
    let merged = merge(trained).unwrap();
    assert!(merged.bert.layers.iter().all(|l| l.attention.query.lora.is_none() && l.attention.value.lora.is_none()));
    let got = logits(&merged, &t, &batch.tokens);
    assert!(max_diff(&want, &got) < 1e-5, "{}", max_diff(&want, &got));
    let adapters = prepare(load(&t, &device()), &Strategy::Adapter { dim: 4 }, 1, &device()).unwrap();
    assert!(merge(adapters).unwrap_err().to_string().contains("cannot be merged"));
}

/// Every dropout of `model` off (the PyTorch side of the step fixture runs without dropout).
fn without_dropout(mut model: BertClassifier) -> BertClassifier {
    model.bert.embeddings.dropout.prob = 0.0;
    for layer in &mut model.bert.layers {
        layer.attention.probs_dropout.prob = 0.0;
        layer.attention.output_dropout.prob = 0.0;
        layer.feed_forward.dropout.prob = 0.0;
    }
    model.dropout.prob = 0.0;
    model
}

/// Three optimiser steps of savant's training step against PyTorch's (tests/fixtures/finetune/
/// make_step_fixture.py): class-weighted cross-entropy, global-norm clipping, AdamW with weight
/// decay on matrices only, HF's linear warmup/decay schedule.
#[test]
fn three_training_steps_match_pytorch_adamw() {
    use savant_core::model::classifier_to_safetensors;
    let fx: serde_json::Value =
        serde_json::from_slice(&std::fs::read(fixture("../finetune/step.json")).unwrap()).unwrap();
    let f = |k: &str| fx[k].as_f64().unwrap();
    let mut t = tiny();
    let expected: serde_json::Value =
        serde_json::from_slice(&std::fs::read(fixture("expected.json")).unwrap()).unwrap();
    let texts: Vec<String> =
        expected["texts"].as_array().unwrap().iter().map(|v| v.as_str().unwrap().to_string()).collect();
    let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
    t.tokenizer.set_max_len(Some(expected["max_len"].as_u64().unwrap() as usize)).unwrap();
    let tokens = t.tokenizer.encode_batch(&refs).unwrap();
    let want_ids: Vec<i64> = fx["input_ids"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|r| r.as_array().unwrap().iter().map(|v| v.as_i64().unwrap()))
        .collect();
    assert_eq!(tokens.input_ids, want_ids, "the same batch as PyTorch");
    let labels: Vec<usize> = fx["labels"].as_array().unwrap().iter().map(|v| v.as_u64().unwrap() as usize).collect();
    let weights: Vec<f32> =
        fx["class_weights"].as_array().unwrap().iter().map(|v| v.as_f64().unwrap() as f32).collect();
    let batch = LabelledBatch { tokens, labels, doc: Vec::new(), targets: Vec::new() };

    let ad = device().autodiff();
    let model = without_dropout(load(&t, &ad));
    let config = OptimConfig {
        lr: f("lr"),
        weight_decay: f("weight_decay"),
        max_grad_norm: Some(f("max_grad_norm")),
        epsilon: 1e-8,
        ..OptimConfig::default()
    };
    let schedule = LinearSchedule::new(f("lr"), f("warmup"), f("total") as usize);
    let mut trainer = Trainer::new(model, config, schedule, Some(weights), &ad);
    // The CPU matches to 1e-5. On a GPU, fused float ops change gradients in the last bits, and
    // Adam's normalised update (lr × m/√v) turns that into up to ~1e-3 on near-zero gradients.
    let tol = if on_cpu() { 1e-5 } else { 2e-3 };
    for (i, want) in fx["losses"].as_array().unwrap().iter().enumerate() {
        let want_lr = fx["lrs"][i].as_f64().unwrap();
        assert!((schedule.lr(i) - want_lr).abs() < 1e-12, "lr of step {i}: {} vs {want_lr}", schedule.lr(i));
        let loss = step(&mut trainer, std::slice::from_ref(&batch)).into_data().try_to_vec::<f32>().unwrap()[0] as f64;
        let want = want.as_f64().unwrap();
        assert!((loss - want).abs() < tol, "loss before step {i}: {loss} vs PyTorch {want}");
    }
    let saved = pollster::block_on(classifier_to_safetensors(&trainer.eval_model())).unwrap();
    let st = safetensors::SafeTensors::deserialize(&saved).unwrap();
    for (name, p) in fx["params"].as_object().unwrap() {
        let view = st.tensor(name).unwrap();
        assert_eq!(
            view.shape(),
            p["shape"].as_array().unwrap().iter().map(|v| v.as_u64().unwrap() as usize).collect::<Vec<_>>(),
            "{name}"
        );
        let got: Vec<f32> = view.data().chunks_exact(4).map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])).collect();
        let want: Vec<f64> = p["values"].as_array().unwrap().iter().map(|v| v.as_f64().unwrap()).collect();
        let worst = got.iter().zip(&want).map(|(g, w)| (*g as f64 - w).abs()).fold(0.0, f64::max);
        assert!(worst < tol, "{name} after 3 steps differs from PyTorch by {worst}");
    }
}

/// A model folder read from the fixtures (core has no file system of its own).
struct FixtureFiles(PathBuf);

impl savant_core::model::ModelFiles for FixtureFiles {
    type Weights = Cursor<Vec<u8>>;
    fn name(&self) -> String {
        self.0.display().to_string()
    }
    fn read(&self, relative: &str) -> savant_core::Result<Option<Vec<u8>>> {
        Ok(std::fs::read(self.0.join(relative)).ok())
    }
    fn weights(&self, relative: &str) -> savant_core::Result<Option<Self::Weights>> {
        Ok(std::fs::read(self.0.join(relative)).ok().map(Cursor::new))
    }
}

fn rows(source: &str, n: usize, offset: usize) -> savant_core::train::LabelledRows {
    let words = [("billing charge fee", "billing"), ("fraud stolen card", "fraud"), ("other question", "other")];
    let mut r = savant_core::train::LabelledRows { source: source.into(), ..Default::default() };
    for i in offset..offset + n {
        let (w, l) = words[i % 3];
        r.texts.push(format!("{w} {}", ["the", "a", "my", "this", "our"][i % 5]));
        r.labels.push(if l == "other" { "misc".into() } else { l.into() });
    }
    r
}

// The run the CLI and the page share: validation and predictions run without dropout (the same
// numbers every time, though the model has dropout 0.1), and the exported adapter, read back onto
// the base model, gives the run's own probabilities.
#[test]
fn a_fine_tune_run_predicts_what_its_exported_adapter_predicts() {
    use savant_core::train::{FineTune, Mode, TrainOptions};
    let files = FixtureFiles(fixture("tiny-cls"));
    let device = device();
    let options = TrainOptions {
        mode: Mode::Lora,
        epochs: 1,
        batch_size: 4,
        lr: Some(1e-2),
        max_len: Some(16),
        ..Default::default()
    };
    let mut run = FineTune::new(&files, options, rows("train", 24, 0), rows("val", 9, 24), &device.clone().autodiff())
        .expect("a run");
    assert_eq!(run.config.labels, ["billing", "fraud", "misc"], "a fresh head for new labels");
    while !run.session.finished() {
        pollster::block_on(run.session.advance(None, Parts::Here)).expect("a step");
    }
    let model = run.session.best_model();
    let a = pollster::block_on(run.session.val_predictions(&model)).unwrap().scores;
    let b = pollster::block_on(run.session.val_predictions(&model)).unwrap().scores;
    assert_eq!(a, b, "validation must not apply dropout");
    let texts = ["billing fee the", "stolen card", "a question about nothing in particular"];
    let probs = pollster::block_on(run.predict(&texts, 2)).unwrap();
    assert_eq!(probs, pollster::block_on(run.predict(&texts, 3)).unwrap());

    let exported: BTreeMap<String, Vec<u8>> =
        pollster::block_on(run.result_files(&files)).unwrap().into_iter().collect();
    let strategy = read_adapter_config(&exported["adapter/adapter_config.json"], "adapter_config.json").unwrap();
    let config = run.config.clone();
    let inference = device.clone();
    let mut base =
        Checkpoint::open(Cursor::new(std::fs::read(fixture("tiny-cls/model.safetensors")).unwrap()), "m").unwrap();
    let (bert, _) = savant_core::model::load_encoder(&tiny().config, &mut base, &inference).unwrap();
    let fresh = savant_core::finetune::new_classifier(bert, &config, 3, 0, &inference);
    let mut adapter =
        Checkpoint::open(Cursor::new(exported["adapter/adapter_model.safetensors"].clone()), "a").unwrap();
    let loaded = read_adapter(fresh, &config, &strategy, &mut adapter, &inference).unwrap();
    let mut tokenizer = tiny().tokenizer;
    tokenizer.set_max_len(Some(16)).unwrap();
    let batch = tokenizer.encode_batch(&texts).unwrap();
    let logits = pollster::block_on(classify(&loaded, &config, &batch, &inference)).unwrap();
    let reread = savant_core::infer::softmax_rows(&logits, 3);
    let tol = if on_cpu() { 1e-6 } else { 1e-4 };
    assert!(max_diff(&probs, &reread) <= tol, "run {probs:?} vs its adapter read back {reread:?}");
    assert_eq!(exported["adapter/sentence_bert_config.json"], savant_core::model::sentence_config_json(16));

    // The average with the TF-IDF baseline, as both shells end a run: chosen on val, then in
    // metrics.json, the exported files and the predictions asked for it.
    assert!(pollster::block_on(run.predict_windows(&texts, 2, true)).is_err(), "no average before it is chosen");
    assert!(!exported.contains_key(savant_core::baseline::Ensemble::FILE));
    pollster::block_on(run.choose_on_val()).unwrap();
    let (ensemble, f1) = run.ensemble.clone().expect("the run fitted the baseline");
    let metrics = run.metrics_json().unwrap();
    assert_eq!(
        (metrics["ensemble_weight"].as_f64(), metrics["ensemble_val_f1_macro"].as_f64()),
        (Some(ensemble.weight), Some(f1))
    );
    let exported: BTreeMap<String, Vec<u8>> =
        pollster::block_on(run.result_files(&files)).unwrap().into_iter().collect();
    assert_eq!(exported[savant_core::baseline::Ensemble::FILE], ensemble.to_json());
    let (mixed, _) = pollster::block_on(run.predict_windows(&texts, 2, true)).unwrap();
    assert_eq!(mixed, ensemble.mix(&probs, &texts));
}

/// Helpers as the page's workers are: each the run's model built from the same files and the
/// run's part spec (through JSON, as the page sends it), getting every request as JSON.
struct InProcessHelpers(Vec<std::rc::Rc<std::cell::RefCell<savant_core::train::Trainer>>>, std::cell::Cell<usize>);

impl InProcessHelpers {
    fn of(files: &FixtureFiles, spec: &savant_core::train::PartSpec, n: usize) -> InProcessHelpers {
        let spec: savant_core::train::PartSpec = serde_json::from_str(&serde_json::to_string(spec).unwrap()).unwrap();
        let device = device().autodiff();
        let make = || savant_core::train::FineTune::part_trainer(files, &spec, &device).expect("a helper");
        InProcessHelpers(
            (0..n).map(|_| std::rc::Rc::new(std::cell::RefCell::new(make()))).collect(),
            Default::default(),
        )
    }
}

impl savant_core::train::PartHelpers<LabelledBatch> for InProcessHelpers {
    fn count(&self) -> usize {
        self.0.len()
    }
    fn send(
        &self,
        index: usize,
        params: &[f32],
        request: &savant_core::train::PartRequest<'_, LabelledBatch>,
    ) -> savant_core::train::PartFuture {
        self.1.set(self.1.get() + 1);
        let helper = self.0[index].clone();
        let json = serde_json::to_string(request).unwrap();
        let params = params.to_vec();
        // One request at a time per helper, as a worker's message queue runs them.
        #[allow(clippy::await_holding_refcell_ref)]
        Box::pin(async move {
            let request: savant_core::train::OwnedPartRequest<LabelledBatch> = serde_json::from_str(&json).unwrap();
            let mut trainer = helper.borrow_mut();
            trainer.part_reply(&params, &request.as_request()).await
        })
    }
}

// The page's helper workers: a run whose steps send parts to helpers holding their own copies of
// the model takes the same steps, bit for bit, as a run computing every part itself; a helper
// whose model differs is refused by name.
#[test]
fn a_run_with_helpers_takes_the_same_steps_as_one_without() {
    use savant_core::train::{ClassWeights, FineTune, Mode, TrainOptions};
    if !on_cpu() {
        // Helpers serve the CPU backend (the page's wasm), where each part's dropout masks come
        // from its own seed; GPU backends draw dropout from the device's generator, whose order
        // differs between separate runs, so there the runs are not bit-identical.
        return;
    }
    let files = FixtureFiles(fixture("tiny-cls"));
    let device = device().autodiff();
    for (mode, class_weights) in [(Mode::Lora, ClassWeights::None), (Mode::Partial, ClassWeights::Balanced)] {
        let options = TrainOptions {
            mode,
            class_weights,
            epochs: 1,
            batch_size: 6,
            parts: 3,
            lr: Some(1e-2),
            max_len: Some(16),
            ..Default::default()
        };
        let make = |options: &TrainOptions| {
            FineTune::new(&files, options.clone(), rows("train", 24, 0), rows("val", 9, 24), &device).expect("a run")
        };
        let mut alone = make(&options);
        let mut helped = make(&options);
        let helpers = InProcessHelpers::of(&files, &helped.part_spec(), 2);
        let mut steps = 0;
        while !alone.session.finished() {
            let a = pollster::block_on(alone.session.advance(None, Parts::Here)).expect("a step");
            let b = pollster::block_on(helped.session.advance(None, Parts::Helpers(&helpers))).expect("a helped step");
            assert_eq!(a, b, "{mode:?}: step {steps}'s events");
            steps += 1;
        }
        assert!(helped.session.finished());
        assert_eq!(helpers.1.get(), 2 * alone.session.total_steps(), "{mode:?}: two parts of three went out each step");
        let (a, b) = (snapshot(alone.session.trainer.model()), snapshot(helped.session.trainer.model()));
        assert_eq!(a.keys().collect::<Vec<_>>(), b.keys().collect::<Vec<_>>());
        for (name, values) in &a {
            assert!(values == &b[name], "{mode:?}: {name} differs after {steps} steps");
        }
        let before = snapshot(make(&options).session.trainer.model());
        assert!(a.iter().any(|(name, v)| v != &before[name]), "{mode:?}: training changed nothing");
    }

    // A helper built with another LoRA rank cannot take this trainer's values (a random head: the
    // first call is then a step, not the probe's embedding).
    let options = TrainOptions {
        mode: Mode::Lora,
        epochs: 1,
        batch_size: 6,
        parts: 2,
        max_len: Some(16),
        head_init: savant_core::train::HeadInit::Random,
        ..Default::default()
    };
    let mut run = FineTune::new(&files, options.clone(), rows("train", 24, 0), rows("val", 9, 24), &device).unwrap();
    let mut spec = run.part_spec();
    spec.options.lora_r = 4;
    let helpers = InProcessHelpers::of(&files, &spec, 1);
    let err = pollster::block_on(run.session.advance(None, Parts::Helpers(&helpers))).unwrap_err().to_string();
    assert!(err.contains("helper 1") && err.contains("the helper's model differs"), "{err}");
}

// Data parallel on one machine: the batch's halves on two devices (each a copy of the model, the
// gradients summed by burn's multi-device reduction) take the step one device takes with the
// whole batch, within float tolerance; and exactly the step one device takes with the same two
// halves when both "devices" are the same one.
#[test]
fn two_devices_with_half_a_batch_each_take_the_one_device_step() {
    use savant_core::train::Sequential;
    let t = tiny();
    let (first, second) = (device().autodiff(), common::second_device().autodiff());
    if std::env::var("SAVANT_TEST_DEVICE").as_deref() == Ok("wgpu") {
        assert_ne!(first, second, "two wgpu devices");
    }
    let batch = task(&t);
    let half = |rows: std::ops::Range<usize>| {
        let texts: Vec<String> = (rows.start..rows.end)
            .map(|i| {
                format!(
                    "{} {}",
                    ["billing charge fee", "fraud stolen card", "other question"][i % 3],
                    ["the", "a", "my", "this"][i % 4]
                )
            })
            .collect();
        let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
        LabelledBatch {
            tokens: t.tokenizer.encode_batch(&refs).unwrap(),
            labels: batch.labels[rows].to_vec(),
            doc: Vec::new(),
            targets: Vec::new(),
        }
    };
    let halves = [half(0..6), half(6..12)];
    for strategy in [Strategy::Full, lora()] {
        let trainer = || {
            let model = without_dropout(prepare(load(&t, &first), &strategy, 1, &first).unwrap());
            // Adam turns any gradient far above epsilon into a step of ±lr, float noise included:
            // a larger epsilon keeps rounding noise in near-zero gradients from being magnified.
            let config = OptimConfig { lr: 1e-2, weight_decay: 0.01, epsilon: 1e-3, ..OptimConfig::default() };
            Trainer::new(model, config, LinearSchedule::new(1e-2, 0.0, 100), None, &first)
        };
        let (mut whole, mut split, mut parallel) = (trainer(), trainer(), trainer());
        let devices = [first.clone(), second.clone()];
        for _ in 0..3 {
            step(&mut whole, std::slice::from_ref(&batch));
            step(&mut split, &halves);
            pollster::block_on(parallel.step(&halves, Parts::Devices(&devices, &Sequential))).unwrap();
        }
        let (w, s, p) = (snapshot(whole.model()), snapshot(split.model()), snapshot(parallel.model()));
        let mut worst = 0f32;
        for (name, values) in &w {
            worst = worst.max(max_diff(values, &p[name]));
        }
        assert!(worst < 1e-5, "{strategy:?}: two devices vs one whole batch differ by {worst}");
        let before = snapshot(trainer().model());
        assert!(w.iter().any(|(name, v)| max_diff(v, &before[name]) > 1e-3), "{strategy:?}: nothing trained");
        if first == second {
            assert!(s == p, "{strategy:?}: the same device twice must give the one-device step exactly");
        }
    }
}

/// Every float parameter's dtype.
fn dtypes(model: &BertClassifier) -> Vec<burn::tensor::DType> {
    struct Types(Vec<burn::tensor::DType>);
    impl ModuleVisitor for Types {
        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
            self.0.push(param.val().dtype());
        }
    }
    let mut types = Types(Vec::new());
    model.visit(&mut types);
    types.0
}

// Mixed precision (torch.autocast's split): with bf16 or f16 matmuls the losses follow the f32
// run within half-precision rounding (and differ from it: the matmuls did round), the weights
// and their updates stay f32. An f16 step whose scaled gradients overflow is skipped, the
// weights untouched, and the scale halved (GradScaler).
#[test]
fn bf16_and_f16_matmuls_train_like_f32_and_keep_f32_weights() {
    use savant_core::model::Precision;
    let t = tiny();
    let ad = device().autodiff();
    let batch = task(&t);
    for strategy in [Strategy::Full, lora()] {
        let trainer = |precision: Precision| {
            let model = without_dropout(prepare(load(&t, &ad), &strategy, 1, &ad).unwrap());
            let config = OptimConfig { lr: 2e-3, ..OptimConfig::default() };
            let mut trainer = Trainer::new(model, config, LinearSchedule::new(2e-3, 0.0, 100), None, &ad);
            trainer.set_precision(precision);
            trainer
        };
        let losses = |precision: Precision| {
            let mut trainer = trainer(precision);
            let losses: Vec<f64> = (0..6)
                .map(|_| {
                    let loss = step(&mut trainer, std::slice::from_ref(&batch));
                    loss.into_data().convert::<f32>().try_to_vec::<f32>().unwrap()[0] as f64
                })
                .collect();
            (losses, trainer)
        };
        let (reference, _) = losses(Precision::F32);
        assert!(reference[5] < reference[0] - 0.05, "{strategy:?}: f32 did not train: {reference:?}");
        for precision in [Precision::Bf16, Precision::F16] {
            if !precision.supported_on(&ad) {
                eprintln!("{precision} is not supported on {ad:?}: skipped");
                continue;
            }
            let (mixed, trainer) = losses(precision);
            assert_ne!(mixed[0], reference[0], "{strategy:?} {precision}: the matmuls did not round");
            for (step, (m, r)) in mixed.iter().zip(&reference).enumerate() {
                assert!((m - r).abs() < 0.02 * r, "{strategy:?} {precision} step {step}: loss {m} vs f32 {r}");
            }
            assert!(dtypes(trainer.model()).iter().all(|d| *d == burn::tensor::DType::F32), "{precision}: weights");
            if precision == Precision::F16 {
                assert_eq!(trainer.loss_scale().map(|s| s.skipped), Some(0), "no overflow at the default scale");
            }
        }
        if !Precision::F16.supported_on(&ad) {
            continue;
        }
        let mut overflowing = trainer(Precision::F16);
        overflowing.loss_scale_mut().unwrap().scale = 1e38;
        let before = snapshot(overflowing.model());
        step(&mut overflowing, std::slice::from_ref(&batch));
        assert!(snapshot(overflowing.model()) == before, "{strategy:?}: an overflowing f16 step must be skipped");
        let scale = overflowing.loss_scale().unwrap();
        assert_eq!((scale.scale, scale.skipped), (5e37, 1), "{strategy:?}: the scale halves");
        overflowing.loss_scale_mut().unwrap().scale = 1024.0;
        step(&mut overflowing, std::slice::from_ref(&batch));
        assert!(snapshot(overflowing.model()) != before, "{strategy:?}: a finite f16 step is taken");
    }
}

// GradScaler's schedule: halve on an overflow, double after `growth_interval` finite steps.
#[test]
fn the_loss_scale_halves_on_overflow_and_doubles_after_its_interval() {
    let mut scale = savant_core::train::LossScale { growth_interval: 3, ..Default::default() };
    assert_eq!(scale.scale, 65536.0);
    assert!(scale.update(true) && scale.update(true));
    assert!(!scale.update(false));
    assert_eq!((scale.scale, scale.good_steps, scale.skipped), (32768.0, 0, 1));
    for _ in 0..3 {
        assert!(scale.update(true));
    }
    assert_eq!((scale.scale, scale.good_steps), (65536.0, 0));
}

/// The tiny model's encoder under a fresh head reading `pooling` (`None`: the pooler).
fn with_fresh_head(t: &Tiny, pooling: Option<savant_core::model::Pooling>, device: &Device) -> BertClassifier {
    let mut base =
        Checkpoint::open(Cursor::new(std::fs::read(fixture("tiny-cls/model.safetensors")).unwrap()), "m").unwrap();
    let (bert, _) = savant_core::model::load_encoder(&t.config, &mut base, device).unwrap();
    let mut config = t.config.clone().with_labels(vec!["a".into(), "b".into(), "c".into()]);
    config.classifier_pooling = pooling;
    savant_core::finetune::new_classifier(bert, &config, 3, 5, device)
}

// Every head with every strategy: the loss falls, only the strategy's parameters change, and a
// pooled head has no pooler at all (nothing of it is counted or saved).
#[test]
fn every_head_trains_with_every_strategy_and_only_its_parameters() {
    use savant_core::model::{Head, Pooling};
    let t = tiny();
    let ad = device().autodiff();
    let batch = task(&t);
    for pooling in [None, Some(Pooling::Mean), Some(Pooling::Cls), Some(Pooling::Max)] {
        for strategy in
            [Strategy::Full, Strategy::Partial { frozen_layers: None }, Strategy::Adapter { dim: 8 }, lora()]
        {
            let name = format!("{pooling:?} × {}", strategy.name());
            let model = prepare(with_fresh_head(&t, pooling, &ad), &strategy, 1, &ad).unwrap();
            assert_eq!(model.head(), pooling.map_or(Head::Pooler, Head::Pooled), "{name}");
            let before = snapshot(&model);
            assert_eq!(
                before.keys().any(|k| k.starts_with("pooler.")),
                pooling.is_none(),
                "{name}: {:?}",
                before.keys()
            );
            let lr = if matches!(strategy, Strategy::Full) { 1e-3 } else { 1e-2 };
            let config = OptimConfig { lr, ..OptimConfig::default() };
            let mut trainer = Trainer::new(model, config, LinearSchedule::new(lr, 0.0, 1000), None, &ad);
            let first = eval_loss(&trainer, &batch);
            for _ in 0..20 {
                step(&mut trainer, std::slice::from_ref(&batch));
            }
            let last = eval_loss(&trainer, &batch);
            assert!(last < first, "{name}: loss {first} -> {last}");
            let after = snapshot(trainer.model());
            let changed: Vec<String> =
                after.iter().filter(|(k, v)| max_diff(&before[*k], v) > 0.0).map(|(k, _)| k.clone()).collect();
            assert!(changed.iter().any(|p| p == "classifier.weight"), "{name}: {changed:?}");
            let allowed = |p: &str| match &strategy {
                Strategy::Full => true,
                Strategy::Partial { .. } => p.starts_with("classifier."),
                Strategy::Adapter { .. } => {
                    p.contains(".adapter.") || p.contains("layer_norm") || p.starts_with("classifier.")
                }
                Strategy::Lora(_) => p.contains(".lora.") || p.starts_with("classifier."),
            };
            let wrong = all_match(&changed, allowed);
            assert!(wrong.is_empty(), "{name}: parameters outside the strategy changed: {wrong:?}");
        }
    }
}

// A separate head learning rate moves the head by its own rate: with the body's rate 0 only the
// head changes, and with the head's rate 0 the head stays put while LoRA trains.
#[test]
fn the_head_learning_rate_applies_to_the_head_alone() {
    let t = tiny();
    let ad = device().autodiff();
    let batch = task(&t);
    for (lr, head_lr) in [(0.0, 1e-2), (1e-2, 0.0)] {
        let model =
            prepare(with_fresh_head(&t, Some(savant_core::model::Pooling::Mean), &ad), &lora(), 1, &ad).unwrap();
        let before = snapshot(&model);
        let config = OptimConfig { lr, head_lr: Some(head_lr), weight_decay: 0.0, ..OptimConfig::default() };
        let mut trainer = Trainer::new(model, config, LinearSchedule::new(lr, 0.0, 1000), None, &ad);
        for _ in 0..3 {
            step(&mut trainer, std::slice::from_ref(&batch));
        }
        let after = snapshot(trainer.model());
        let changed: Vec<&String> =
            after.iter().filter(|(k, v)| max_diff(&before[*k], v) > 0.0).map(|(k, _)| k).collect();
        let head_moved = changed.iter().any(|p| p.starts_with("classifier."));
        let body_moved = changed.iter().any(|p| p.contains(".lora."));
        assert_eq!((head_moved, body_moved), (head_lr > 0.0, lr > 0.0), "lr {lr}, head_lr {head_lr}: {changed:?}");
    }
}

// LP-FT: before any step, the probe-initialised head gives exactly the logits of core's logistic
// regression fitted on the frozen model's pooled training features, its C chosen on the pooled
// validation features (`LinearProbe::fit_choosing_c`); its
// validation is epoch 0 and the run keeps it while no epoch beats it. `head auto` picks the
// folder's mean pooling when it has 1_Pooling/config.json and the pooler when it has none.
#[test]
fn a_probe_initialised_head_starts_at_the_logistic_regressions_logits() {
    use savant_core::model::{Head, Pooling};
    use savant_core::train::{FineTune, HeadInit, Mode, TrainEvent, TrainOptions};
    let device = device();
    let options = TrainOptions {
        mode: Mode::Lora,
        epochs: 1,
        batch_size: 4,
        lr: Some(0.0),
        max_len: Some(16),
        ..Default::default()
    };
    let auto_cls = FineTune::new(
        &FixtureFiles(fixture("tiny-cls")),
        options.clone(),
        rows("train", 24, 0),
        rows("val", 9, 24),
        &device.clone().autodiff(),
    )
    .unwrap();
    assert_eq!(auto_cls.session.trainer.model().head(), Head::Pooler, "no 1_Pooling: the pooler");
    let files = FixtureFiles(fixture("tiny-base"));
    let mut run =
        FineTune::new(&files, options.clone(), rows("train", 24, 0), rows("val", 9, 24), &device.clone().autodiff())
            .unwrap();
    assert_eq!(run.session.trainer.model().head(), Head::Pooled(Pooling::Mean), "1_Pooling (mean): a mean-pooled head");
    assert_eq!(run.head_init, "probe");
    let mut events = Vec::new();
    while !matches!(events.last(), Some(TrainEvent::Probe { fitted: true, .. })) {
        events.extend(pollster::block_on(run.session.advance(None, Parts::Here)).unwrap());
    }
    assert_eq!(run.session.trainer.step, 0, "no optimiser step before the head is fitted");
    // The 24 training rows (one chunk), then the 9 validation rows.
    assert!(matches!(events[0], TrainEvent::Probe { embedded: 24, total: 33, fitted: false, .. }), "{events:?}");
    assert!(matches!(events[1], TrainEvent::Probe { embedded: 33, total: 33, fitted: false, .. }), "{events:?}");

    // The same regression, fitted here on the encoder's own mean-pooled vectors.
    let texts = rows("train", 24, 0);
    let folder = savant_core::model::ModelFolder::open(&files).unwrap();
    let mut tokenizer = folder.tokenizer;
    tokenizer.set_max_len(Some(16)).unwrap();
    let mut ckpt = savant_core::model::ModelFolder::checkpoint(&files).unwrap();
    let (encoder, _) = savant_core::model::load_encoder(&folder.config, &mut ckpt, &device).unwrap();
    let refs: Vec<&str> = texts.texts.iter().map(String::as_str).collect();
    let batch = tokenizer.encode_batch(&refs).unwrap();
    let x =
        pollster::block_on(savant_core::infer::embed(&encoder, &folder.config, &batch, Pooling::Mean, false, &device))
            .unwrap();
    let class_ids = |rows: &savant_core::train::LabelledRows| -> Vec<usize> {
        rows.labels.iter().map(|l| run.config.labels.iter().position(|c| c == l).unwrap()).collect()
    };
    let y = class_ids(&texts);
    let val = rows("val", 9, 24);
    let val_refs: Vec<&str> = val.texts.iter().map(String::as_str).collect();
    let val_batch = tokenizer.encode_batch(&val_refs).unwrap();
    let val_x = pollster::block_on(savant_core::infer::embed(
        &encoder,
        &folder.config,
        &val_batch,
        Pooling::Mean,
        false,
        &device,
    ))
    .unwrap();
    let chosen = savant_core::probe::LinearProbe::fit_choosing_c(
        &x,
        folder.config.hidden_size,
        &y,
        &val_x,
        &class_ids(&val),
        3,
        300,
    );
    assert_eq!(chosen.tried.len(), savant_core::probe::PROBE_CS.len());
    let Some(TrainEvent::Probe { c: Some(c), .. }) = events.last() else { panic!("{events:?}") };
    assert_eq!(*c, chosen.c, "the run chose the C chosen here: {:?}", chosen.tried);
    let expected = chosen.probe.logits(&x);
    let got = pollster::block_on(classify(&run.session.trainer.eval_model(), &run.config, &batch, &device)).unwrap();
    let tol = if on_cpu() { 1e-4 } else { 1e-3 };
    assert!(max_diff(&expected, &got) <= tol, "probe {expected:?} vs head {got:?}");

    // lr 0: training cannot beat epoch 0, so the probe-initialised model is kept.
    while !run.session.finished() {
        pollster::block_on(run.session.advance(None, Parts::Here)).unwrap();
    }
    let p = &run.session.progress;
    assert!(p.probe_metric.is_some() && p.best_epoch.is_none(), "{p:?}");
    let m = run.metrics_json().unwrap();
    assert_eq!(
        (m["best_epoch"].as_u64(), m["head"].as_str(), m["head_init"].as_str()),
        (Some(0), Some("mean"), Some("probe")),
        "{m}"
    );
    assert_eq!(m["probe_val_f1_macro"], m["f1_macro"], "{m}");
    assert_eq!(m["probe_c"].as_f64(), Some(chosen.c), "{m}");

    // A random head skips the probe; a model saved with a pooled head reads back to its logits.
    let random = TrainOptions { head_init: HeadInit::Random, ..options };
    let mut run =
        FineTune::new(&files, random, rows("train", 24, 0), rows("val", 9, 24), &device.clone().autodiff()).unwrap();
    let first = pollster::block_on(run.session.advance(None, Parts::Here)).unwrap();
    assert!(!first.iter().any(|e| matches!(e, TrainEvent::Probe { .. })), "{first:?}");
    assert_eq!((run.session.trainer.step, run.head_init), (1, "random"), "the first call is an optimiser step");
}

// A full fine-tune with a pooled head is saved as an HF folder whose config names the pooling
// (`classifier_pooling`), with sentence-transformers' modules.json and 1_Pooling and no pooler
// weights; loaded back it gives the run's own logits.
#[test]
fn a_pooled_head_model_folder_reads_back_to_the_same_logits() {
    use savant_core::train::{FineTune, Mode, TrainOptions};
    let files = FixtureFiles(fixture("tiny-base"));
    let device = device();
    let options = TrainOptions {
        mode: Mode::Full,
        epochs: 1,
        batch_size: 4,
        lr: Some(1e-3),
        max_len: Some(16),
        ..Default::default()
    };
    let mut run =
        FineTune::new(&files, options, rows("train", 24, 0), rows("val", 9, 24), &device.clone().autodiff()).unwrap();
    while !run.session.finished() {
        pollster::block_on(run.session.advance(None, Parts::Here)).unwrap();
    }
    let exported: BTreeMap<String, Vec<u8>> =
        pollster::block_on(run.result_files(&files)).unwrap().into_iter().collect();
    assert!(
        exported.contains_key("model/modules.json") && exported.contains_key("model/1_Pooling/config.json"),
        "{:?}",
        exported.keys()
    );
    let config = BertConfig::from_json(&exported["model/config.json"], "config.json").unwrap();
    assert_eq!(config.classifier_pooling, Some(savant_core::model::Pooling::Mean));
    let pooling =
        savant_core::model::Pooling::from_json(&exported["model/1_Pooling/config.json"], "1_Pooling").unwrap();
    assert_eq!(pooling, savant_core::model::Pooling::Mean);
    let mut ckpt =
        Checkpoint::open(Cursor::new(exported["model/model.safetensors"].clone()), "model.safetensors").unwrap();
    assert!(!ckpt.names().iter().any(|n| n.contains("pooler")), "{:?}", ckpt.names());
    let loaded = load_classifier(&config, &mut ckpt, &device).unwrap().0;
    let texts = ["billing fee the", "stolen card", "a question about nothing in particular"];
    let probs = pollster::block_on(run.predict(&texts, 2)).unwrap();
    let mut tokenizer = run.tokenizer.clone();
    tokenizer.set_max_len(Some(16)).unwrap();
    let logits =
        pollster::block_on(classify(&loaded, &config, &tokenizer.encode_batch(&texts).unwrap(), &device)).unwrap();
    let reread = savant_core::infer::softmax_rows(&logits, 3);
    let tol = if on_cpu() { 1e-6 } else { 1e-4 };
    assert!(max_diff(&probs, &reread) <= tol, "run {probs:?} vs its folder read back {reread:?}");
}

// Long texts read in windows (issue 20): every window trains, labelled with its text's class;
// validation is per text — epoch 0 is the probe's windows' logits averaged per text, and each
// later epoch's report counts texts, not windows; `predict` gives one row per text, the mean of
// its windows' logits (checked against the windows run one by one).
// With mean-pool, training batches are whole texts and the probe is fitted on their mean
// features; validation and predict are the same.
#[test]
fn a_windowed_run_trains_on_windows_and_validates_and_predicts_per_text() {
    windowed_run(savant_core::long::Aggregate::MeanLogits);
    windowed_run(savant_core::long::Aggregate::MeanPool);
}

fn windowed_run(aggregate: savant_core::long::Aggregate) {
    use savant_core::infer::softmax_rows;
    use savant_core::long::{LongMode, LongText};
    use savant_core::train::{FineTune, Mode, TrainEvent, TrainOptions};
    let files = FixtureFiles(fixture("tiny-base"));
    let device = device();
    // Each text: its class words after a long run of filler, so a 16-token window cannot hold it all.
    let long = |r: savant_core::train::LabelledRows| savant_core::train::LabelledRows {
        texts: r.texts.iter().enumerate().map(|(i, t)| format!("{} {t}", "the a my this ".repeat(2 + i % 4))).collect(),
        ..r
    };
    let (train, val) = (long(rows("train", 24, 0)), long(rows("val", 9, 24)));
    let options = TrainOptions {
        mode: Mode::Full,
        epochs: 1,
        batch_size: 4,
        lr: Some(1e-3),
        max_len: Some(16),
        long: LongMode::Windows,
        stride: Some(4),
        aggregate,
        ..Default::default()
    };
    let mut run = FineTune::new(&files, options, train.clone(), val.clone(), &device.clone().autodiff()).unwrap();
    assert_eq!((run.train_rows, run.val_rows), (24, 9), "rows are texts");
    assert!(run.windows.windows > 33 + 20, "most texts make two windows or more: {:?}", run.windows);
    assert_eq!(run.windows.texts, 33);
    assert_eq!(run.session.train_len(), run.windows.windows - val_windows(&run, &val), "the training rows are windows");
    let mut events = Vec::new();
    while !run.session.finished() {
        events.extend(pollster::block_on(run.session.advance(None, Parts::Here)).unwrap());
    }
    let Some(TrainEvent::Probe { total, .. }) = events.iter().find(|e| matches!(e, TrainEvent::Probe { .. })) else {
        panic!()
    };
    assert_eq!(*total, run.windows.windows, "the probe embeds every window");
    let report = run.session.best_report.clone().unwrap();
    assert_eq!(report["n"], 9, "validation counts texts: {report}");
    let steps: Vec<_> = events
        .iter()
        .filter_map(|e| match e {
            TrainEvent::Step { samples, .. } => Some(*samples),
            _ => None,
        })
        .collect();
    let train_windows = run.windows.windows - val_windows(&run, &val);
    assert_eq!(steps.iter().sum::<usize>(), train_windows, "every training window once an epoch: {steps:?}");

    // predict: one row per text, softmax of its windows' mean logits.
    let texts: Vec<&str> = val.texts.iter().map(String::as_str).collect();
    let probs = pollster::block_on(run.predict(&texts, 3)).unwrap();
    assert_eq!(probs.len(), 9 * 3);
    let model = run.session.best_model();
    let docs = run
        .tokenizer
        .encode_docs(&texts, &LongText { mode: LongMode::Windows, stride: Some(4), max_windows: None })
        .unwrap();
    let k = 3;
    for d in 0..texts.len() {
        let mut sum = vec![0.0f32; k];
        let mut n = 0.0;
        for (w, _) in docs.windows.iter().zip(&docs.doc).filter(|(_, x)| **x == d) {
            let batch = savant_core::tokenize::TokenBatch::from_encoded(&[w], run.tokenizer.pad_id());
            let logits =
                pollster::block_on(classify(&model, &run.config, &batch, &device.clone().without_autodiff())).unwrap();
            sum.iter_mut().zip(&logits).for_each(|(s, l)| *s += l);
            n += 1.0;
        }
        let mean: Vec<f32> = sum.iter().map(|s| s / n).collect();
        let want = softmax_rows(&mean, k);
        let tol = if on_cpu() { 1e-5 } else { 1e-3 };
        assert!(
            max_diff(&want, &probs[d * k..(d + 1) * k]) <= tol,
            "text {d}: {want:?} vs {:?}",
            &probs[d * k..(d + 1) * k]
        );
    }
}

fn val_windows(run: &savant_core::train::FineTune, val: &savant_core::train::LabelledRows) -> usize {
    let texts: Vec<&str> = val.texts.iter().map(String::as_str).collect();
    run.tokenizer.encode_docs(&texts, &run.options.long_text()).unwrap().windows.len()
}

// --aggregate mean-pool (issue 20): a document's head input is the mean of its windows' head
// features, so one document's loss reaches the tokens of every window; a document of identical
// windows gets that window's logits; a mean-pooled run trains on whole documents and validates
// and predicts them as the mean of their windows' logits (the head is linear).
#[test]
fn mean_pooled_documents_backpropagate_into_every_window() {
    use savant_core::finetune::Strategy;
    use savant_core::model::Pooling;
    use savant_core::train::Objective;
    let t = tiny();
    let ad = device().autodiff();
    let model =
        prepare(without_dropout(with_fresh_head(&t, Some(Pooling::Mean), &ad)), &Strategy::Full, 1, &ad).unwrap();
    let windows = ["charge fee interest", "fraud card refund", "loan rate bank"];
    let tokens = t.tokenizer.encode_batch(&windows).unwrap();
    let batch = LabelledBatch { tokens: tokens.clone(), labels: vec![1], doc: vec![0, 0, 0], targets: Vec::new() };
    assert_eq!(<BertClassifier as Objective>::items(&batch), 1, "the loss averages over documents");
    let grads = model.loss(&batch, &None, &ad).backward();
    let g = model.bert.embeddings.word.weight.val().grad(&grads).unwrap();
    let [_, hidden] = g.dims();
    let g = g.into_data().convert::<f32>().try_to_vec::<f32>().unwrap();
    for (w, text) in windows.iter().enumerate() {
        let ids: Vec<i64> = (0..tokens.lengths[w]).map(|j| tokens.input_ids[w * tokens.seq_len + j]).collect();
        let own: Vec<i64> = ids
            .iter()
            .copied()
            .filter(|id| {
                (0..3)
                    .filter(|&o| o != w)
                    .all(|o| !tokens.input_ids[o * tokens.seq_len..][..tokens.lengths[o]].contains(id))
            })
            .collect();
        assert!(!own.is_empty(), "window {w} has tokens of its own");
        for id in own {
            let row = &g[id as usize * hidden..(id as usize + 1) * hidden];
            assert!(row.iter().any(|v| *v != 0.0), "no gradient for token {id} of window {w} ('{text}')");
        }
    }

    // Identical windows: the document's logits are one window's.
    let inference = device();
    let model = model.valid();
    let three = t.tokenizer.encode_batch(&[windows[1]; 3]).unwrap();
    let one = t.tokenizer.encode_batch(&[windows[1]]).unwrap();
    let doc = model.forward_documents(&EncoderInput::new(&three, &inference), &[0, 0, 0], 1, &inference);
    let alone = model.forward(&EncoderInput::new(&one, &inference));
    let (doc, alone) = (
        doc.into_data().convert::<f32>().try_to_vec::<f32>().unwrap(),
        alone.into_data().convert::<f32>().try_to_vec::<f32>().unwrap(),
    );
    assert!(max_diff(&doc, &alone) <= 1e-5, "{doc:?} vs {alone:?}");
}

// Multi-label loss: PyTorch's BCEWithLogitsLoss as its documentation writes it,
// ℓ = (1 − y)·x + (1 + (p − 1)·y)·(ln(1 + e^−|x|) + max(−x, 0)), mean over rows × labels, in
// f64 — with and without pos_weight, for logits up to ±40 where the naive form overflows.
#[test]
fn bce_with_logits_is_pytorchs() {
    use savant_core::train::step::bce_with_logits;
    let logits = [0.0f32, 2.5, -1.25, 40.0, -40.0, 0.3, -7.0, 1e-3];
    let targets = [1.0f32, 0.0, 1.0, 0.0, 1.0, 1.0, 0.0, 0.0];
    let pos_weight = [2.0f32, 0.5, 1.0, 3.0];
    let reference = |p: Option<&[f32]>| {
        let total: f64 = logits
            .iter()
            .zip(&targets)
            .enumerate()
            .map(|(i, (&x, &y))| {
                let (x, y) = (x as f64, y as f64);
                let p = p.map_or(1.0, |p| p[i % 4] as f64);
                (1.0 - y) * x + (1.0 + (p - 1.0) * y) * ((-x.abs()).exp().ln_1p() + (-x).max(0.0))
            })
            .sum();
        total / logits.len() as f64
    };
    let d = device();
    let t = burn::tensor::Tensor::<2>::from_data(burn::tensor::TensorData::new(logits.to_vec(), [2, 4]), &d);
    for p in [None, Some(&pos_weight[..])] {
        let got =
            pollster::block_on(savant_core::train::read_scalar(bce_with_logits(t.clone(), &targets, p, &d))).unwrap();
        let want = reference(p);
        assert!((got - want).abs() < 1e-6 * want.abs().max(1.0), "pos_weight {p:?}: {got} vs PyTorch's {want}");
    }
}
