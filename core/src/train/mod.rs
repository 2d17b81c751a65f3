//! Training: the one step every strategy goes through, its schedule, and the batches it eats.

pub mod augment;
pub mod batches;
pub mod checkpoint;
pub mod classify;
pub mod events;
pub mod flops;
pub mod limits;
pub mod remote;
pub mod schedule;
pub mod session;
pub mod setup;
pub mod step;
pub mod stream;
pub mod thresholds;

pub use augment::Augment;
pub use batches::{epoch_batches, LabelSet};
pub use classify::{Classify, ClassifyConfig, LabelledTexts, TrainData};
pub use events::{read_scalar, LogLine, Rate, TrainEvent};
pub use flops::{batch_training_flops, Throughput};
pub use limits::{fit_to_limits, BufferLimits, Fit, StepMemory};
pub use remote::{OwnedPartRequest, PartFuture, PartHelpers, PartReply, PartRequest};
pub use schedule::LinearSchedule;
pub use session::{higher_is_better, metric_value, Before, Progress, RunConfig, Session, SessionCheckpoint, Task};
pub use setup::{
    ClassWeights, FineTune, FreezeLayers, FreezeWord, HeadChoice, HeadInit, LabelledRows, Mode, PartSpec, StreamPlan,
    TrainOptions, TrainTiming,
};
pub use step::{
    cross_entropy, Job, LabelledBatch, LossScale, Objective, OptimConfig, PartResult, Parts, Runner, Sequential,
    Trainer,
};
