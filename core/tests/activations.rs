//! The encoder's non-linearities against PyTorch (`tests/fixtures/model/make_activations.py`):
//! values and gradients of exact GELU, tanh-GELU and tanh from -200 to 200 on the test device,
//! all finite. On SwiftShader (Chromium's software WebGPU, `tests/run` runs this file there too)
//! burn's own GELU gradient was NaN from |x| ≈ 12 up.

mod common;

use burn::tensor::{Tensor, TensorData};
use common::device;
use savant_core::model::activation;

#[derive(serde::Deserialize)]
struct Reference {
    x: Vec<f32>,
    gelu: Curve,
    gelu_tanh: Curve,
    tanh: Curve,
}

#[derive(serde::Deserialize)]
struct Curve {
    value: Vec<f32>,
    grad: Vec<f32>,
}

fn reference() -> Reference {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../tests/fixtures/model/activations.json");
    serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap()
}

/// `f`'s values and gradients at `x`, on the test device with autodiff (training) and without.
fn run(f: fn(Tensor<1>) -> Tensor<1>, x: &[f32]) -> (Vec<f32>, Vec<f32>, Vec<f32>) {
    let data = || TensorData::new(x.to_vec(), [x.len()]);
    let ad = device().autodiff();
    let input = Tensor::<1>::from_data(data(), &ad).require_grad();
    let y = f(input.clone());
    let grads = y.clone().sum().backward();
    let grad = input.grad(&grads).unwrap().into_data().try_into_vec::<f32>().unwrap();
    let value = y.into_data().try_into_vec::<f32>().unwrap();
    let inference = f(Tensor::<1>::from_data(data(), &device())).into_data().try_into_vec::<f32>().unwrap();
    (value, grad, inference)
}

fn check(name: &str, f: fn(Tensor<1>) -> Tensor<1>, x: &[f32], want: &Curve) {
    let (value, grad, inference) = run(f, x);
    for (i, &xi) in x.iter().enumerate() {
        for (what, got, expected) in [
            ("value", value[i], want.value[i]),
            ("gradient", grad[i], want.grad[i]),
            ("inference value", inference[i], want.value[i]),
        ] {
            assert!(got.is_finite(), "{name} {what} at x = {xi}: {got}");
            let tolerance = 2e-5 * expected.abs().max(1.0);
            assert!((got - expected).abs() <= tolerance, "{name} {what} at x = {xi}: {got}, PyTorch {expected}");
        }
    }
}

#[test]
fn gelu_matches_pytorch_in_value_and_gradient_with_no_overflow() {
    let r = reference();
    check("gelu", activation::gelu, &r.x, &r.gelu);
}

#[test]
fn tanh_gelu_matches_pytorch_in_value_and_gradient_with_no_overflow() {
    let r = reference();
    check("gelu_tanh", activation::gelu_tanh, &r.x, &r.gelu_tanh);
}

#[test]
fn tanh_matches_pytorch_in_value_and_gradient_with_no_overflow() {
    let r = reference();
    check("tanh", activation::tanh, &r.x, &r.tanh);
}
