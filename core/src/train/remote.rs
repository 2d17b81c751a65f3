//! Parts of a training step computed by helpers that share no memory with the trainer (the
//! page's helper Web Workers, each with its own copy of the model): the trainer sends every
//! helper the trainable parameters' current values with a part, the helper answers with that
//! part's gradients and loss, and the trainer sums the parts in order as if it had computed them
//! all ([`super::Trainer::step_helped`]). Values cross as flat `f32` in the order the model
//! visits its trainable parameters, which is the same in every copy of the same model.

use std::future::Future;
use std::pin::Pin;

use burn::module::{Module, ModuleMapper, ModuleVisitor, Param, ParamId};
use burn::optim::GradientsParams;
use burn::tensor::{Device, Shape, Tensor, TensorData};
use serde::{Deserialize, Serialize};

use crate::{Error, Result};

/// The gradients and (weighted) loss of one part of a step.
pub type PartResult = (GradientsParams, Tensor<1>);

/// One part of a step, as a helper gets it.
#[derive(Debug, Serialize)]
pub struct PartRequest<'a, B> {
    pub batch: &'a B,
    /// The part's share of the step's items (its loss is scaled by it).
    pub share: f64,
    /// The part's dropout stream.
    pub seed: u64,
}

/// A [`PartRequest`] as a helper reads it back.
#[derive(Debug, Deserialize)]
pub struct OwnedPartRequest<B> {
    pub batch: B,
    pub share: f64,
    pub seed: u64,
}

impl<B> OwnedPartRequest<B> {
    pub fn as_request(&self) -> PartRequest<'_, B> {
        PartRequest { batch: &self.batch, share: self.share, seed: self.seed }
    }
}

/// A helper's answer: the gradients of every trainable parameter, flat in visiting order, and
/// `share` × the part's mean loss.
#[derive(Debug, Clone, PartialEq)]
pub struct PartReply {
    pub gradients: Vec<f32>,
    /// Per trainable parameter: whether the part gave it a gradient (its values are zeros if not).
    pub present: Vec<bool>,
    pub loss: f32,
}

/// An answer still to come.
pub type PartFuture = Pin<Box<dyn Future<Output = Result<PartReply>>>>;

/// Where the parts of a step go besides the trainer itself.
pub trait PartHelpers<B> {
    /// How many helpers there are.
    fn count(&self) -> usize;
    /// Sends `request`, with the trainable values `params`, to helper `index`. The request must
    /// be on its way when this returns (the trainer works on its own parts before awaiting).
    fn send(&self, index: usize, params: &[f32], request: &PartRequest<'_, B>) -> PartFuture;
}

/// The trainable parameters: id, shape and the value or gradient tensor flattened.
fn trainable<M: Module>(model: &M) -> Vec<(ParamId, Shape, Tensor<1>)> {
    struct Trainable(Vec<(ParamId, Shape, Tensor<1>)>);
    impl ModuleVisitor for Trainable {
        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
            let value = param.val();
            if value.is_require_grad() {
                let shape = value.shape();
                let n = shape.num_elements();
                self.0.push((param.id, shape, value.detach().reshape([n])));
            }
        }
    }
    let mut visitor = Trainable(Vec::new());
    model.visit(&mut visitor);
    visitor.0
}

async fn read_f32(t: Tensor<1>, what: &str) -> Result<Vec<f32>> {
    let data =
        t.into_data_async().await.map_err(|e| Error::invalid("device", None, format!("reading {what}: {e:?}")))?;
    data.convert::<f32>()
        .try_into_vec::<f32>()
        .map_err(|e| Error::invalid("device", None, format!("reading {what}: {e:?}")))
}

/// Whether every float parameter of `model` trains.
pub fn all_trainable<M: Module>(model: &M) -> bool {
    struct All(bool);
    impl ModuleVisitor for All {
        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
            self.0 &= param.val().is_require_grad();
        }
    }
    let mut all = All(true);
    model.visit(&mut all);
    all.0
}

/// The trainable parameters' values, flat in visiting order.
pub async fn trainable_values<M: Module>(model: &M) -> Result<Vec<f32>> {
    let mut out = Vec::new();
    for (_, _, value) in trainable(model) {
        out.extend(read_f32(value, "the trainable parameters").await?);
    }
    Ok(out)
}

/// `model` with its trainable parameters set to `values` ([`trainable_values`]' order), still
/// trainable, ids kept.
pub fn set_trainable_values<M: Module>(model: &M, values: &[f32]) -> Result<M> {
    let expected: usize = trainable(model).iter().map(|(_, shape, _)| shape.num_elements()).sum();
    if values.len() != expected {
        return Err(Error::invalid(
            "trainable parameters",
            None,
            format!(
                "got {} values, this model has {expected}: the helper's model differs from the trainer's",
                values.len()
            ),
        ));
    }
    struct Set<'a> {
        values: &'a [f32],
    }
    impl ModuleMapper for Set<'_> {
        fn map_float<const D: usize>(&mut self, param: Param<Tensor<D>>) -> Param<Tensor<D>> {
            let (id, value, mapper) = param.consume();
            if !value.is_require_grad() {
                return Param::from_mapped_value(id, value, mapper);
            }
            let shape = value.shape();
            let (mine, rest) = self.values.split_at(shape.num_elements());
            self.values = rest;
            let fresh = Tensor::<D>::from_data(TensorData::new(mine.to_vec(), shape), &value.device()).require_grad();
            Param::from_mapped_value(id, fresh, mapper)
        }
    }
    Ok(model.clone().map(&mut Set { values }))
}

impl PartReply {
    /// The reply for `grads` and `loss` of one part of `model`.
    pub async fn new<M: Module>(model: &M, grads: &GradientsParams, loss: Tensor<1>) -> Result<PartReply> {
        let mut gradients = Vec::new();
        let mut present = Vec::new();
        for (id, shape, _) in trainable(model) {
            let n = shape.num_elements();
            match gradient(grads, id, shape.num_dims()) {
                Some(g) => {
                    gradients.extend(read_f32(g.reshape([n]), "a gradient").await?);
                    present.push(true);
                }
                None => {
                    gradients.resize(gradients.len() + n, 0.0);
                    present.push(false);
                }
            }
        }
        let loss = read_f32(loss, "the loss").await?.first().copied().unwrap_or(f32::NAN);
        Ok(PartReply { gradients, present, loss })
    }

    /// Back to the gradients and loss the trainer would have computed itself.
    pub fn into_part<M: Module>(self, model: &M, device: &Device) -> Result<PartResult> {
        let params = trainable(model);
        let expected: usize = params.iter().map(|(_, shape, _)| shape.num_elements()).sum();
        if self.gradients.len() != expected || self.present.len() != params.len() {
            return Err(Error::invalid(
                "part reply",
                None,
                format!(
                    "{} gradient values for {} parameters, expected {expected} for {}",
                    self.gradients.len(),
                    self.present.len(),
                    params.len()
                ),
            ));
        }
        let inner = device.clone().inner();
        let mut grads = GradientsParams::new();
        let mut rest = self.gradients.as_slice();
        for ((id, shape, _), present) in params.into_iter().zip(self.present) {
            let (mine, tail) = rest.split_at(shape.num_elements());
            rest = tail;
            if present {
                register(&mut grads, id, TensorData::new(mine.to_vec(), shape), &inner);
            }
        }
        let loss = Tensor::<1>::from_data(TensorData::new(vec![self.loss], [1]), device);
        Ok((grads, loss))
    }
}

/// The gradient of parameter `id` (of rank `rank`), flattened.
fn gradient(grads: &GradientsParams, id: ParamId, rank: usize) -> Option<Tensor<1>> {
    fn flat<const D: usize>(grads: &GradientsParams, id: ParamId) -> Option<Tensor<1>> {
        grads.get::<D>(id).map(|g| {
            let n = g.shape().num_elements();
            g.reshape([n])
        })
    }
    match rank {
        1 => flat::<1>(grads, id),
        2 => flat::<2>(grads, id),
        3 => flat::<3>(grads, id),
        4 => flat::<4>(grads, id),
        _ => None,
    }
}

fn register(grads: &mut GradientsParams, id: ParamId, data: TensorData, device: &Device) {
    match data.shape().num_dims() {
        1 => grads.register::<1>(id, Tensor::from_data(data, device)),
        2 => grads.register::<2>(id, Tensor::from_data(data, device)),
        3 => grads.register::<3>(id, Tensor::from_data(data, device)),
        _ => grads.register::<4>(id, Tensor::from_data(data, device)),
    }
}
