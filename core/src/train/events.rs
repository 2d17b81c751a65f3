//! The lines a run writes as it goes — `train_log.jsonl` natively, the events the page's charts
//! read — declared once, so both shells write the same shape. Timings come from the shell (core
//! has no clock): [`LogLine::timed`].

use burn::tensor::Tensor;
use serde::Serialize;

use super::flops::Throughput;
use crate::{Error, Result};

/// What the run tells its renderer.
#[derive(Debug, Clone, PartialEq)]
pub enum TrainEvent {
    /// A logging point: the mean loss of the steps since the last one, and the tokens, rows and
    /// model FLOPs ([`super::flops`]) those steps trained on.
    Step {
        epoch: usize,
        step: usize,
        total_steps: usize,
        loss: f64,
        lr: f64,
        tokens: usize,
        samples: usize,
        flops: f64,
    },
    /// Validation after an epoch.
    Epoch { epoch: usize, step: usize, train_loss: f64, val_metric: Option<f64>, improved: bool },
    /// The probe-initialised head ([`Task::before`]): `embedded` of `total` training and
    /// validation rows embedded so far; once the head is fitted, its validation (epoch 0) in
    /// `val_metric` and the C chosen for it on the validation rows in `c`.
    Probe { embedded: usize, total: usize, fitted: bool, val_metric: Option<f64>, c: Option<f64> },
}

/// One line of a run's log. Epochs count from 1; epoch 0 is the probe-initialised head before
/// any step.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum LogLine {
    /// A logging point: the mean loss since the last one, and what those steps trained on.
    Step {
        epoch: usize,
        step: usize,
        total_steps: usize,
        loss: f64,
        lr: f64,
        tokens: usize,
        samples: usize,
        /// Model FLOPs of those steps ([`super::flops`]).
        model_flops: f64,
        #[serde(flatten, skip_serializing_if = "Option::is_none")]
        rate: Option<Rate>,
    },
    /// A validation: after an epoch, or (epoch 0, `probe`) the probe-initialised head's.
    Epoch {
        epoch: usize,
        step: usize,
        #[serde(skip_serializing_if = "Option::is_none")]
        train_loss: Option<f64>,
        val_metric: Option<f64>,
        metric: String,
        improved: bool,
        #[serde(skip_serializing_if = "Option::is_none")]
        probe: Option<bool>,
        #[serde(skip_serializing_if = "Option::is_none")]
        probe_c: Option<f64>,
        #[serde(skip_serializing_if = "Option::is_none")]
        seconds: Option<f64>,
    },
    /// The probe-initialised head's embedding pass: rows embedded so far of all.
    Probe { embedded: usize, total: usize },
    /// A run continued from its checkpoint at `step`.
    Resume { step: usize },
}

/// A logging point's speed, measured by the shell.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Rate {
    pub tokens_per_second: f64,
    pub samples_per_second: f64,
    pub model_tflops_per_second: f64,
    pub mfu: Option<f64>,
    /// Seconds since the run started.
    pub seconds: f64,
}

impl TrainEvent {
    /// The event's log line; `metric` names the validation metric.
    pub fn line(&self, metric: &str) -> LogLine {
        match *self {
            TrainEvent::Step { epoch, step, total_steps, loss, lr, tokens, samples, flops } => LogLine::Step {
                epoch: epoch + 1,
                step,
                total_steps,
                loss,
                lr,
                tokens,
                samples,
                model_flops: flops,
                rate: None,
            },
            TrainEvent::Epoch { epoch, step, train_loss, val_metric, improved } => LogLine::Epoch {
                epoch: epoch + 1,
                step,
                train_loss: Some(train_loss),
                val_metric,
                metric: metric.to_string(),
                improved,
                probe: None,
                probe_c: None,
                seconds: None,
            },
            TrainEvent::Probe { fitted: true, val_metric, c, .. } => LogLine::Epoch {
                epoch: 0,
                step: 0,
                train_loss: None,
                val_metric,
                metric: metric.to_string(),
                improved: true,
                probe: Some(true),
                probe_c: c,
                seconds: None,
            },
            TrainEvent::Probe { embedded, total, .. } => LogLine::Probe { embedded, total },
        }
    }
}

impl LogLine {
    /// The line with the shell's timing: `at` seconds since the run started and, for a step, the
    /// speed since the last logging point.
    pub fn timed(mut self, at: f64, throughput: Option<&Throughput>) -> LogLine {
        match &mut self {
            LogLine::Step { rate, .. } => {
                *rate = throughput.map(|t| Rate {
                    tokens_per_second: t.tokens_per_second,
                    samples_per_second: t.samples_per_second,
                    model_tflops_per_second: t.model_tflops_per_second,
                    mfu: t.mfu,
                    seconds: at,
                })
            }
            LogLine::Epoch { seconds, .. } => *seconds = Some(at),
            LogLine::Probe { .. } | LogLine::Resume { .. } => {}
        }
        self
    }

    /// The line as JSON text (one line of `train_log.jsonl`).
    pub fn json(&self) -> String {
        serde_json::to_string(self).expect("log lines serialise")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // The shapes both shells write, byte for byte.
    #[test]
    fn each_event_has_one_line_shape() {
        let step = TrainEvent::Step {
            epoch: 0,
            step: 10,
            total_steps: 90,
            loss: 0.5,
            lr: 1e-3,
            tokens: 1200,
            samples: 16,
            flops: 2e9,
        };
        assert_eq!(
            step.line("f1_macro").json(),
            r#"{"event":"step","epoch":1,"step":10,"total_steps":90,"loss":0.5,"lr":0.001,"tokens":1200,"samples":16,"model_flops":2000000000.0}"#
        );
        let rate =
            Throughput { tokens_per_second: 600.0, samples_per_second: 8.0, model_tflops_per_second: 0.001, mfu: None };
        assert_eq!(
            step.line("f1_macro").timed(2.5, Some(&rate)).json(),
            r#"{"event":"step","epoch":1,"step":10,"total_steps":90,"loss":0.5,"lr":0.001,"tokens":1200,"samples":16,"model_flops":2000000000.0,"tokens_per_second":600.0,"samples_per_second":8.0,"model_tflops_per_second":0.001,"mfu":null,"seconds":2.5}"#
        );
        let epoch = TrainEvent::Epoch { epoch: 1, step: 90, train_loss: 0.25, val_metric: Some(0.75), improved: false };
        assert_eq!(
            epoch.line("f1_macro").timed(9.0, None).json(),
            r#"{"event":"epoch","epoch":2,"step":90,"train_loss":0.25,"val_metric":0.75,"metric":"f1_macro","improved":false,"seconds":9.0}"#
        );
        let probe = TrainEvent::Probe { embedded: 40, total: 40, fitted: true, val_metric: None, c: Some(0.01) };
        assert_eq!(
            probe.line("accuracy").json(),
            r#"{"event":"epoch","epoch":0,"step":0,"val_metric":null,"metric":"accuracy","improved":true,"probe":true,"probe_c":0.01}"#
        );
        let embedding = TrainEvent::Probe { embedded: 16, total: 40, fitted: false, val_metric: None, c: None };
        assert_eq!(embedding.line("f1_macro").json(), r#"{"event":"probe","embedded":16,"total":40}"#);
        assert_eq!(LogLine::Resume { step: 7 }.json(), r#"{"event":"resume","step":7}"#);
    }
}

/// The summed loss of the steps since the last logging point, kept on the device (reading it
/// back is a sync) until one is reached: both run loops' log points and their NaN stop.
#[derive(Debug, Default)]
pub struct PendingLoss {
    sum: Option<burn::tensor::Tensor<1>>,
    /// Steps summed.
    pub steps: usize,
}

impl PendingLoss {
    pub fn add(&mut self, loss: burn::tensor::Tensor<1>) {
        self.sum = Some(match self.sum.take() {
            Some(s) => s + loss,
            None => loss,
        });
        self.steps += 1;
    }

    /// The mean loss of the steps summed, read back (they are then cleared); a loss that is not
    /// finite stops the run with what to do (`step`, `lr`: where it happened).
    pub async fn take_mean(&mut self, step: usize, lr: f64) -> crate::Result<f64> {
        let n = std::mem::take(&mut self.steps).max(1);
        let mean = match self.sum.take() {
            Some(sum) => read_scalar(sum).await? / n as f64,
            None => f64::NAN,
        };
        if !mean.is_finite() {
            return Err(crate::Error::invalid(
                "training",
                None,
                format!("the loss became {mean} at step {step} (learning rate {lr:.3e}): training stopped, the last checkpoint is kept; lower the learning rate (lr)"),
            ));
        }
        Ok(mean)
    }

    /// The sum as a checkpoint holds it (read back, and kept as that exact f32 value, so this
    /// run goes on as a run resumed from the checkpoint would) and the steps it sums.
    pub async fn save(&mut self, device: &burn::tensor::Device) -> crate::Result<(Option<f64>, usize)> {
        let Some(sum) = self.sum.take() else { return Ok((None, self.steps)) };
        let v = read_scalar(sum).await?;
        self.sum = Some(Self::tensor(v, device));
        Ok((Some(v), self.steps))
    }

    /// The sum a checkpoint saved ([`PendingLoss::save`]).
    pub fn restore(saved: (Option<f64>, usize), device: &burn::tensor::Device) -> PendingLoss {
        PendingLoss { sum: saved.0.map(|v| Self::tensor(v, device)), steps: saved.1 }
    }

    fn tensor(v: f64, device: &burn::tensor::Device) -> burn::tensor::Tensor<1> {
        burn::tensor::Tensor::from_data(burn::tensor::TensorData::new(vec![v as f32], [1]), device)
    }
}

/// A one-element tensor (a loss) read back, asynchronously so that the browser can too.
pub async fn read_scalar(t: Tensor<1>) -> Result<f64> {
    let data =
        t.into_data_async().await.map_err(|e| Error::invalid("device", None, format!("reading the loss: {e:?}")))?;
    let data = data.convert::<f32>();
    let v =
        data.try_into_vec::<f32>().map_err(|e| Error::invalid("device", None, format!("reading the loss: {e:?}")))?;
    Ok(v.first().copied().unwrap_or(f32::NAN) as f64)
}
