//! THE training step, for every strategy, backend and target: forward, loss, backward over each
//! micro-batch, gradients accumulated, clipped by their global norm, one AdamW update at the
//! scheduled learning rate. Nothing is read back from the device here: the loss stays a tensor
//! until the caller reads it (asynchronously) at a logging point, so the same step runs in the
//! browser.

use burn::lr_scheduler::module_lr_scheduler::ModuleLrScheduler;
use burn::module::ParamGroup;
use burn::module::{Module, ModuleMapper, ModuleVisitor, Param, ParamId};
use burn::optim::{AdamWConfig, GradientsAccumulator, GradientsParams, ModuleOptimizer, MultiGradientsParams};
use burn::tensor::{activation, Device, Int, Tensor, TensorData};

use super::remote::{set_trainable_values, trainable_values, PartFuture, PartHelpers, PartReply, PartRequest};
use super::schedule::LinearSchedule;
use crate::model::precision::{with_precision, Precision};
use crate::model::{BertClassifier, EncoderInput};
use crate::tokenize::TokenBatch;
use crate::{Error, Result};

/// Optimiser settings, HF `TrainingArguments` defaults where it has one.
#[derive(Debug, Clone, PartialEq)]
pub struct OptimConfig {
    /// Peak learning rate.
    pub lr: f64,
    /// Decoupled (AdamW) weight decay, on weight matrices only: not on biases, LayerNorms.
    pub weight_decay: f64,
    pub beta1: f64,
    pub beta2: f64,
    pub epsilon: f64,
    /// Clip the gradients' global L2 norm to this (`max_grad_norm`; `None`: no clipping).
    pub max_grad_norm: Option<f64>,
    /// The head's peak learning rate ([`Objective::head_ids`]), on the same schedule as `lr`
    /// (`None`: `lr`).
    pub head_lr: Option<f64>,
}

impl Default for OptimConfig {
    fn default() -> Self {
        OptimConfig {
            lr: 5e-5,
            weight_decay: 0.0,
            beta1: 0.9,
            beta2: 0.999,
            epsilon: 1e-8,
            max_grad_norm: Some(1.0),
            head_lr: None,
        }
    }
}

/// A labelled micro-batch.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct LabelledBatch {
    pub tokens: TokenBatch,
    /// Class index of each row; of each document when `doc` is set.
    pub labels: Vec<usize>,
    /// [`crate::long::Aggregate::MeanPool`]: the document (0, 1, ... within the batch) of each
    /// row, a window; the documents' mean-pooled features are classified (empty: rows are
    /// classified).
    #[serde(default)]
    pub doc: Vec<usize>,
    /// Multi-label rows: `[rows, labels]` 0/1 targets (sigmoid + binary cross-entropy); empty:
    /// one class per row (`labels`, softmax + cross-entropy).
    #[serde(default)]
    pub targets: Vec<f32>,
}

/// What the training step trains: a model, its batches and its loss. The step itself (parts,
/// accumulation, clipping, AdamW) is the same for every objective.
pub trait Objective: Module + Clone + Send + Sync + 'static {
    type Batch: Sync;
    /// What the loss needs besides the batch (the classifier's class weights).
    type LossOptions: Send + Sync;
    /// The items a batch's mean loss averages over (rows, or masked tokens): each part of a step
    /// weighs by its share of them, so the parts' sum is the whole batch's mean.
    fn items(batch: &Self::Batch) -> usize;
    /// The batch's mean loss.
    fn loss(&self, batch: &Self::Batch, options: &Self::LossOptions, device: &Device) -> Tensor<1>;
    /// The parameters of the task head, which [`OptimConfig::head_lr`] applies to.
    fn head_ids(&self) -> Vec<ParamId> {
        Vec::new()
    }
}

impl Objective for BertClassifier {
    type Batch = LabelledBatch;
    /// Per-class loss weights (`CrossEntropyLoss(weight=...)`).
    type LossOptions = Option<Vec<f32>>;

    fn items(batch: &LabelledBatch) -> usize {
        batch.labels.len()
    }

    fn loss(&self, batch: &LabelledBatch, class_weights: &Option<Vec<f32>>, device: &Device) -> Tensor<1> {
        let input = EncoderInput::new(&batch.tokens, device);
        let logits = match batch.doc.is_empty() {
            true => self.forward(&input),
            false => self.forward_documents(&input, &batch.doc, batch.labels.len(), device),
        };
        match batch.targets.is_empty() {
            true => cross_entropy(logits, &batch.labels, class_weights.as_deref(), device),
            // Multi-label: the weights are each label's pos_weight.
            false => bce_with_logits(logits, &batch.targets, class_weights.as_deref(), device),
        }
    }

    fn head_ids(&self) -> Vec<ParamId> {
        let c = &self.classifier;
        std::iter::once(c.weight.id).chain(c.bias.as_ref().map(|b| b.id)).collect()
    }
}

/// The model being trained and everything its updates depend on.
pub struct Trainer<M: Objective = BertClassifier> {
    /// Always `Some` between calls: the optimiser takes the model by value during a step.
    model: Option<M>,
    optim: ModuleOptimizer,
    pub schedule: LinearSchedule,
    /// Optimiser steps taken.
    pub step: usize,
    config: OptimConfig,
    loss_options: M::LossOptions,
    dropout_seed: u64,
    precision: Precision,
    /// f16 only: the dynamic loss scale (PyTorch's `GradScaler`).
    loss_scale: Option<LossScale>,
    device: Device,
}

/// Dynamic loss scaling as PyTorch's `GradScaler` does it (its defaults): the loss is multiplied
/// by `scale` before the backward pass and the gradients divided by it after; a step whose
/// gradients are not finite is skipped and the scale halved; after `growth_interval` finite
/// steps in a row the scale doubles.
#[derive(Debug, Clone, PartialEq)]
pub struct LossScale {
    pub scale: f64,
    pub growth_interval: usize,
    /// Finite steps since the scale last changed.
    pub good_steps: usize,
    /// Steps skipped for non-finite gradients, in total.
    pub skipped: usize,
}

impl Default for LossScale {
    fn default() -> Self {
        LossScale { scale: 65536.0, growth_interval: 2000, good_steps: 0, skipped: 0 }
    }
}

impl LossScale {
    /// Records a step's outcome; returns whether its update is taken.
    pub fn update(&mut self, finite: bool) -> bool {
        if !finite {
            self.scale /= 2.0;
            self.good_steps = 0;
            self.skipped += 1;
            return false;
        }
        self.good_steps += 1;
        if self.good_steps == self.growth_interval {
            self.scale *= 2.0;
            self.good_steps = 0;
        }
        true
    }
}

pub use super::remote::PartResult;

/// One part's work, for a [`Runner`].
pub type Job<'a> = Box<dyn FnOnce() -> PartResult + Send + 'a>;

/// Who computes the parts of a step (the one [`Trainer::step`] takes them all through).
pub enum Parts<'a, B> {
    /// One after another, on the calling thread.
    Here,
    /// By a runner (natively: a thread each).
    Runner(&'a dyn Runner),
    /// Some by helpers holding their own copies of the model (the page's workers).
    Helpers(&'a dyn PartHelpers<B>),
    /// Spread over several devices, a runner's thread each.
    Devices(&'a [Device], &'a dyn Runner),
}

impl<B> Clone for Parts<'_, B> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<B> Copy for Parts<'_, B> {}

/// Runs the parts of a step and returns their results in order. Core runs them one after
/// another ([`Sequential`]); the native CLI runs them on its threads.
pub trait Runner {
    fn run<'a>(&self, jobs: Vec<Job<'a>>) -> Vec<PartResult>;
}

/// Parts one after another, on the calling thread.
pub struct Sequential;

impl Runner for Sequential {
    fn run<'a>(&self, jobs: Vec<Job<'a>>) -> Vec<PartResult> {
        jobs.into_iter().map(|job| job()).collect()
    }
}

/// How a part computes: its matmuls' precision, and the factor its loss is multiplied by before
/// the backward pass (f16 loss scaling; 1 otherwise).
#[derive(Debug, Clone, Copy)]
struct Compute {
    precision: Precision,
    loss_scale: f64,
}

/// Forward and backward of one part: `share` × its mean loss, and the gradients of that (times
/// the loss scale).
fn part_gradients<M: Objective>(
    model: &M,
    batch: &M::Batch,
    share: f64,
    options: &M::LossOptions,
    dropout_seed: u64,
    compute: Compute,
    device: &Device,
) -> PartResult {
    // Parts that share leaf tensors share one autodiff graph, and burn runs one backward of a
    // graph at a time: each part gets its own leaves (same values, same parameter ids).
    let model = own_leaves(model);
    crate::model::with_dropout_seed(dropout_seed, || {
        with_precision(compute.precision, || {
            let loss = model.loss(batch, options, device) * share;
            let backward = if compute.loss_scale == 1.0 { loss.clone() } else { loss.clone() * compute.loss_scale };
            let grads = GradientsParams::from_grads(backward.backward(), &model);
            (grads, loss.detach())
        })
    })
}

/// `model` with every trainable parameter as a new autodiff leaf over the same values.
fn own_leaves<M: Module>(model: &M) -> M {
    struct Leaves;
    impl ModuleMapper for Leaves {
        fn map_float<const D: usize>(&mut self, param: Param<Tensor<D>>) -> Param<Tensor<D>> {
            let (id, value, mapper) = param.consume();
            let value = if value.is_require_grad() { value.detach().require_grad() } else { value };
            Param::from_mapped_value(id, value, mapper)
        }
    }
    model.clone().map(&mut Leaves)
}

impl<M: Objective> Trainer<M> {
    /// `model` must live on an autodiff device with its frozen parameters already marked
    /// ([`crate::finetune::prepare`]).
    pub fn new(
        model: M,
        config: OptimConfig,
        schedule: LinearSchedule,
        loss_options: M::LossOptions,
        device: &Device,
    ) -> Trainer<M> {
        // Ids from module paths: a checkpoint's optimiser state finds its parameters again in a
        // fresh process.
        let model = super::checkpoint::stable_param_ids(model);
        let optim = optimizer(&model, &config);
        Trainer {
            model: Some(model.train()),
            optim,
            schedule,
            step: 0,
            config,
            loss_options,
            dropout_seed: 0,
            precision: Precision::F32,
            loss_scale: None,
            device: device.clone(),
        }
    }

    /// What the loss is weighted by (the classifier's class weights).
    pub fn loss_options(&self) -> &M::LossOptions {
        &self.loss_options
    }

    /// Trains with the matmuls in `precision` ([`crate::model::precision`]); the weights and
    /// the optimiser stay f32. f16 scales the loss dynamically ([`LossScale`]), which reads one
    /// value back from the device per step: native only (the page trains in f32).
    pub fn set_precision(&mut self, precision: Precision) {
        self.precision = precision;
        self.loss_scale = (precision == Precision::F16).then(LossScale::default);
    }

    /// The f16 loss scale and the steps it skipped (`None` unless training in f16).
    pub fn loss_scale(&self) -> Option<&LossScale> {
        self.loss_scale.as_ref()
    }

    pub fn loss_scale_mut(&mut self) -> Option<&mut LossScale> {
        self.loss_scale.as_mut()
    }

    fn compute(&self) -> Compute {
        Compute { precision: self.precision, loss_scale: self.loss_scale.as_ref().map_or(1.0, |s| s.scale) }
    }

    /// One optimiser step over `parts` (gradient accumulation: their mean loss, each weighted by
    /// its share of the rows), the parts computed as `by` says. Returns that loss, still on the
    /// device. The step does not depend on who computes the parts: each part has its own dropout
    /// stream and the gradients are summed in part order (over several devices, within float
    /// tolerance).
    pub async fn step(&mut self, parts: &[M::Batch], by: Parts<'_, M::Batch>) -> Result<Tensor<1>> {
        Ok(match by {
            Parts::Here => self.step_with(parts, &Sequential),
            Parts::Runner(runner) => self.step_with(parts, runner),
            Parts::Helpers(helpers) => self.step_helped(parts, helpers).await?,
            Parts::Devices(devices, runner) => self.step_on_devices(parts, devices, runner),
        })
    }

    /// The parts' gradients computed by `runner`.
    fn step_with(&mut self, parts: &[M::Batch], runner: &dyn Runner) -> Tensor<1> {
        let plan = self.plan(parts);
        let model = self.model();
        let options = &self.loss_options;
        let device = &self.device;
        let compute = self.compute();
        let jobs: Vec<Job<'_>> = parts
            .iter()
            .zip(&plan)
            .map(|(batch, &(share, seed))| {
                Box::new(move || part_gradients(model, batch, share, options, seed, compute, device)) as Job<'_>
            })
            .collect();
        let results = runner.run(jobs);
        self.finish(results)
    }

    /// Some parts computed by `helpers`, each holding its own copy of the model: part `i` goes
    /// to helper `i mod (n+1) − 1` for `n` helpers, and stays here when that is −1. The helpers
    /// get the trainable parameters' current values with each part; the step is the one taken
    /// here with the same parts, bit for bit.
    async fn step_helped(&mut self, parts: &[M::Batch], helpers: &dyn PartHelpers<M::Batch>) -> Result<Tensor<1>> {
        let count = helpers.count();
        if count == 0 || parts.len() < 2 {
            return Ok(self.step_with(parts, &Sequential));
        }
        let plan = self.plan(parts);
        let params = trainable_values(self.model()).await?;
        let helper_of = |i: usize| (i % (count + 1)).checked_sub(1);
        // Every request is on its way before this worker starts on its own parts.
        let pending: Vec<Option<PartFuture>> = parts
            .iter()
            .zip(&plan)
            .enumerate()
            .map(|(i, (batch, &(share, seed)))| {
                helper_of(i).map(|h| helpers.send(h, &params, &PartRequest { batch, share, seed }))
            })
            .collect();
        let mut results = Vec::with_capacity(parts.len());
        let mut local: Vec<Option<PartResult>> = parts
            .iter()
            .zip(&plan)
            .zip(&pending)
            .map(|((batch, &(share, seed)), sent)| {
                sent.is_none().then(|| {
                    part_gradients(self.model(), batch, share, &self.loss_options, seed, self.compute(), &self.device)
                })
            })
            .collect();
        for (i, sent) in pending.into_iter().enumerate() {
            results.push(match sent {
                Some(reply) => {
                    let reply = reply.await.map_err(|e| {
                        Error::invalid(&format!("helper {}", helper_of(i).unwrap_or(0) + 1), None, e.to_string())
                    })?;
                    reply.into_part(self.model(), &self.device)?
                }
                None => local[i].take().expect("computed above"),
            });
        }
        Ok(self.finish(results))
    }

    /// A helper's side of [`Trainer::step_helped`]: this trainer's copy of the model takes the
    /// sent trainable values, then computes the part's gradients and loss.
    pub async fn part_reply(&mut self, params: &[f32], request: &PartRequest<'_, M::Batch>) -> Result<PartReply> {
        self.model = Some(set_trainable_values(self.model(), params)?);
        let (grads, loss) = part_gradients(
            self.model(),
            request.batch,
            request.share,
            &self.loss_options,
            request.seed,
            self.compute(),
            &self.device,
        );
        PartReply::new(self.model(), &grads, loss).await
    }

    /// Each part's share of the step's items and its dropout seed.
    fn plan(&self, parts: &[M::Batch]) -> Vec<(f64, u64)> {
        let items: usize = parts.iter().map(M::items).sum();
        let step = self.step as u64;
        (0..parts.len())
            .map(|i| {
                let share = M::items(&parts[i]) as f64 / items.max(1) as f64;
                let seed = self.dropout_seed ^ step.wrapping_mul(0x9e37_79b9_7f4a_7c15) ^ ((i as u64 + 1) << 48);
                (share, seed)
            })
            .collect()
    }

    /// [`Trainer::step_with`] with the parts spread over `devices` (autodiff devices; data
    /// parallel on one machine): part `i` runs on a copy of the model on `devices[i mod n]`, the
    /// copies forked from the trainer's weights at the start of the step. burn's multi-device
    /// reduction (`MultiGradientsParams`, as burn-train's multi-device strategy uses it) sums each
    /// parameter's gradients from every device; the sum is clipped and the one AdamW step is
    /// taken on the trainer's device. Equals [`Trainer::step_with`] with the same parts on one
    /// device, within float tolerance (exactly, on identical devices, for two parts).
    fn step_on_devices(&mut self, parts: &[M::Batch], devices: &[Device], runner: &dyn Runner) -> Tensor<1> {
        if devices.len() < 2 {
            return self.step_with(parts, runner);
        }
        let plan = self.plan(parts);
        let replicas: Vec<M> = devices
            .iter()
            .map(|d| if *d == self.device { self.model().clone() } else { self.model().clone().fork(d) })
            .collect();
        let options = &self.loss_options;
        let compute = self.compute();
        let n = devices.len();
        let jobs: Vec<Job<'_>> = parts
            .iter()
            .zip(&plan)
            .enumerate()
            .map(|(i, (batch, &(share, seed)))| {
                let (replica, device) = (&replicas[i % n], &devices[i % n]);
                Box::new(move || part_gradients(replica, batch, share, options, seed, compute, device)) as Job<'_>
            })
            .collect();
        let results = runner.run(jobs);
        let mut multi = MultiGradientsParams::default();
        let mut total: Option<Tensor<1>> = None;
        for (i, (grads, loss)) in results.into_iter().enumerate() {
            multi.grads.push((grads, devices[i % n].clone().inner()));
            let loss = loss.to_device(&self.device);
            total = Some(match total {
                Some(t) => t + loss,
                None => loss,
            });
        }
        let grads = reduce_onto(self.model(), multi, &self.device.clone().inner());
        self.apply(grads, total.expect("at least one part"))
    }

    /// Sums the parts' gradients and losses in part order, clips, and takes the AdamW step.
    fn finish(&mut self, results: Vec<PartResult>) -> Tensor<1> {
        let mut accumulator = GradientsAccumulator::<M>::new();
        let mut total: Option<Tensor<1>> = None;
        for (grads, loss) in results {
            accumulator.accumulate(self.model(), grads);
            total = Some(match total {
                Some(t) => t + loss,
                None => loss,
            });
        }
        self.apply(accumulator.grads(), total.expect("at least one part"))
    }

    /// Clips the step's summed gradients and takes the AdamW step; returns `loss`.
    fn apply(&mut self, mut grads: GradientsParams, loss: Tensor<1>) -> Tensor<1> {
        if let Some(mut scaler) = self.loss_scale.take() {
            scale_grads(self.model(), &mut grads, 1.0 / scaler.scale);
            let finite = grads_finite(self.model(), &grads);
            let taken = scaler.update(finite);
            self.loss_scale = Some(scaler);
            if !taken {
                self.step += 1;
                return loss;
            }
        }
        if let Some(max_norm) = self.config.max_grad_norm {
            clip_global_norm(self.model(), &mut grads, max_norm);
        }
        let lr = self.schedule.lr(self.step);
        let model = self.model.take().expect("the model is back after every step");
        self.model = Some(match self.config.head_lr {
            // The head's rate follows the same warmup and decay to its own peak.
            Some(peak) => {
                let head = LinearSchedule { peak, ..self.schedule }.lr(self.step);
                let rates = ModuleLrScheduler::new(lr).with_group(ParamGroup::from_ids(model.head_ids()), head).step();
                self.optim.step(rates, model, grads)
            }
            None => self.optim.step(lr, model, grads),
        });
        self.step += 1;
        loss
    }

    /// Seeds the dropout streams of the CPU backend (each step and part derives its own).
    pub fn set_dropout_seed(&mut self, seed: u64) {
        self.dropout_seed = seed;
    }

    /// The objective's mean loss of one batch (for the classifier: cross-entropy, class-weighted
    /// like PyTorch's `Σ wᵧ·nll / Σ wᵧ`).
    pub fn loss(&self, batch: &M::Batch) -> Tensor<1> {
        self.model().loss(batch, &self.loss_options, &self.device)
    }

    /// The model being trained (autodiff device).
    pub fn model(&self) -> &M {
        self.model.as_ref().expect("the model is back after every step")
    }

    /// The model without autodiff, dropout off: for evaluation between epochs.
    pub fn eval_model(&self) -> M {
        self.model().valid()
    }

    /// Replaces the weights (restoring a checkpoint or the best epoch).
    pub fn set_model(&mut self, model: M) {
        self.model = Some(model.train());
    }

    pub fn optimizer(&self) -> &ModuleOptimizer {
        &self.optim
    }

    pub fn optimizer_mut(&mut self) -> &mut ModuleOptimizer {
        &mut self.optim
    }

    /// AdamW's moments as bytes (burnpack: a checkpoint's `optimizer.bpk`).
    pub fn optimizer_bytes(&self) -> Result<Vec<u8>> {
        let bytes = self
            .optim
            .into_bytes()
            .map_err(|e| Error::invalid("checkpoint", None, format!("saving the optimiser state: {e:?}")))?;
        Ok(bytes.to_vec())
    }

    /// Restores [`Trainer::optimizer_bytes`]; `source` names the checkpoint in errors.
    pub fn restore_optimizer(&mut self, bytes: Vec<u8>, source: &str) -> Result<()> {
        self.optim = self
            .optim
            .clone()
            .from_bytes(burn::tensor::Bytes::from_bytes_vec(bytes))
            .map_err(|e| Error::invalid(source, None, format!("unreadable optimiser state: {e:?}")))?;
        Ok(())
    }
}

/// Mean (optionally class-weighted) cross-entropy of `[rows, classes]` logits.
pub fn cross_entropy(logits: Tensor<2>, labels: &[usize], weights: Option<&[f32]>, device: &Device) -> Tensor<1> {
    let rows = labels.len();
    let targets: Vec<i64> = labels.iter().map(|&l| l as i64).collect();
    let targets = Tensor::<2, Int>::from_data(TensorData::new(targets, [rows, 1]), device);
    let nll = activation::log_softmax(logits, 1).gather(1, targets).neg().reshape([rows]);
    match weights {
        None => nll.mean(),
        Some(w) => {
            let w: Vec<f32> = labels.iter().map(|&l| w[l]).collect();
            let total: f32 = w.iter().sum();
            let w = Tensor::<1>::from_data(TensorData::new(w, [rows]), device);
            (nll * w).sum() / total as f64
        }
    }
}

/// PyTorch's `BCEWithLogitsLoss(pos_weight=...)`, the mean over rows × labels: what HF's
/// `BertForSequenceClassification` trains with when `problem_type` is
/// `multi_label_classification`. `targets`: `[rows, labels]` 0/1; `pos_weight`: each label's
/// weight on its positive term. Stable for any logit: log σ(x) = −softplus(−x) and
/// log(1 − σ(x)) = −softplus(x), softplus(x) = max(x, 0) + ln(1 + e^−|x|).
pub fn bce_with_logits(logits: Tensor<2>, targets: &[f32], pos_weight: Option<&[f32]>, device: &Device) -> Tensor<1> {
    let [rows, k] = logits.dims();
    let y = Tensor::<2>::from_data(TensorData::new(targets.to_vec(), [rows, k]), device);
    let softplus = |x: Tensor<2>| x.clone().clamp_min(0.0) + x.abs().neg().exp().log1p();
    let (positive, negative) = (softplus(logits.clone().neg()), softplus(logits));
    let positive = match pos_weight {
        None => y.clone() * positive,
        Some(w) => {
            y.clone() * positive * Tensor::<1>::from_data(TensorData::new(w.to_vec(), [k]), device).reshape([1, k])
        }
    };
    (positive + (y.neg() + 1.0) * negative).mean()
}

/// Every parameter's gradients from every device of `multi`, summed by burn, on `device`.
fn reduce_onto<M: Module>(model: &M, mut multi: MultiGradientsParams, device: &Device) -> GradientsParams {
    struct Reduce<'a> {
        multi: &'a mut MultiGradientsParams,
        out: GradientsParams,
        device: &'a Device,
    }
    impl ModuleVisitor for Reduce<'_> {
        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
            if let Some((sum, _)) = self.multi.remove::<D>(param.id) {
                self.out.register::<D>(param.id, sum.to_device(self.device));
            }
        }
    }
    let mut reduce = Reduce { multi: &mut multi, out: GradientsParams::new(), device };
    model.visit(&mut reduce);
    reduce.out
}

/// AdamW with weight decay on matrices and none on vectors (biases, LayerNorm γ/β): HF's
/// `Trainer` excludes exactly those.
fn optimizer<M: Module>(model: &M, config: &OptimConfig) -> ModuleOptimizer {
    struct Vectors(Vec<ParamId>);
    impl ModuleVisitor for Vectors {
        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
            if D == 1 {
                self.0.push(param.id);
            }
        }
    }
    let mut vectors = Vectors(Vec::new());
    model.visit(&mut vectors);
    let adamw = |decay: f64| {
        AdamWConfig::new()
            .with_beta_1(config.beta1 as f32)
            .with_beta_2(config.beta2 as f32)
            .with_epsilon(config.epsilon as f32)
            .with_weight_decay(decay as f32)
    };
    adamw(config.weight_decay).init().with_group(ParamGroup::from_ids(vectors.0), adamw(0.0).build(), None)
}

/// Multiplies every gradient by `factor`.
fn scale_grads<M: Module>(model: &M, grads: &mut GradientsParams, factor: f64) {
    struct Scale<'a> {
        grads: &'a mut GradientsParams,
        factor: f64,
    }
    impl ModuleVisitor for Scale<'_> {
        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
            if let Some(g) = self.grads.remove::<D>(param.id) {
                self.grads.register::<D>(param.id, g.mul_scalar(self.factor));
            }
        }
    }
    model.visit(&mut Scale { grads, factor });
}

/// Whether every gradient value is finite: one value read back from the device (a blocking
/// read, so never on WebGPU).
fn grads_finite<M: Module>(model: &M, grads: &GradientsParams) -> bool {
    struct Sum<'a> {
        grads: &'a GradientsParams,
        sum: Option<Tensor<1>>,
    }
    impl ModuleVisitor for Sum<'_> {
        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
            if let Some(g) = self.grads.get::<D>(param.id) {
                // Any NaN or ±Inf makes the sum of |g| non-finite.
                let s = g.abs().sum();
                self.sum = Some(match self.sum.take() {
                    Some(t) => t + s,
                    None => s,
                });
            }
        }
    }
    let mut sum = Sum { grads, sum: None };
    model.visit(&mut sum);
    sum.sum.is_none_or(|s| {
        s.into_data().convert::<f32>().try_into_vec::<f32>().is_ok_and(|v| v.first().is_some_and(|x| x.is_finite()))
    })
}

/// Scales all gradients by `min(1, max_norm / (‖g‖ + 1e-6))`, ‖g‖ the L2 norm over every
/// gradient together: `torch.nn.utils.clip_grad_norm_`. Computed on the device, never read.
fn clip_global_norm<M: Module>(model: &M, grads: &mut GradientsParams, max_norm: f64) {
    struct SumSquares<'a> {
        grads: &'a GradientsParams,
        sum: Option<Tensor<1>>,
    }
    impl ModuleVisitor for SumSquares<'_> {
        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
            if let Some(g) = self.grads.get::<D>(param.id) {
                let s = g.powi_scalar(2).sum();
                self.sum = Some(match self.sum.take() {
                    Some(t) => t + s,
                    None => s,
                });
            }
        }
    }
    let mut visitor = SumSquares { grads, sum: None };
    model.visit(&mut visitor);
    let Some(sum) = visitor.sum else { return };
    let norm = sum.sqrt();
    let scale = (norm + 1e-6).recip().mul_scalar(max_norm).clamp_max(1.0);

    struct Scale<'a> {
        grads: &'a mut GradientsParams,
        scale: Tensor<1>,
    }
    impl ModuleVisitor for Scale<'_> {
        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
            if let Some(g) = self.grads.remove::<D>(param.id) {
                let scaled = g * self.scale.clone().reshape([1; D]);
                self.grads.register::<D>(param.id, scaled);
            }
        }
    }
    model.visit(&mut Scale { grads, scale });
}
