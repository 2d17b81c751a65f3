//! The learning-rate schedule of HF's `get_linear_schedule_with_warmup`: linear warmup from 0 to
//! the peak over `warmup` steps, then linear decay to 0 at `total` steps.

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LinearSchedule {
    pub peak: f64,
    pub warmup: usize,
    pub total: usize,
}

impl LinearSchedule {
    /// `warmup` given as a fraction of the total (`< 1`) or as steps (`>= 1`), like HF's
    /// `warmup_ratio` / `warmup_steps`.
    pub fn new(peak: f64, warmup: f64, total: usize) -> LinearSchedule {
        let warmup = if warmup < 1.0 { (warmup * total as f64).ceil() as usize } else { warmup as usize };
        LinearSchedule { peak, warmup: warmup.min(total), total }
    }

    /// The learning rate of optimiser step `step` (0-based), as the `LambdaLR` HF builds gives it.
    pub fn lr(&self, step: usize) -> f64 {
        let factor = if step < self.warmup {
            step as f64 / self.warmup.max(1) as f64
        } else {
            (self.total.saturating_sub(step)) as f64 / (self.total.saturating_sub(self.warmup)).max(1) as f64
        };
        self.peak * factor.max(0.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn warmup_then_linear_decay_like_transformers() {
        // Values from transformers.get_linear_schedule_with_warmup(opt, 2, 10) with lr 1.0.
        let s = LinearSchedule::new(1.0, 2.0, 10);
        let want = [0.0, 0.5, 1.0, 0.875, 0.75, 0.625, 0.5, 0.375, 0.25, 0.125, 0.0];
        for (step, w) in want.iter().enumerate() {
            assert!((s.lr(step) - w).abs() < 1e-12, "step {step}: {} vs {w}", s.lr(step));
        }
        assert_eq!(LinearSchedule::new(1.0, 0.1, 95).warmup, 10, "ratio rounds up, like HF's ceil");
    }
}
