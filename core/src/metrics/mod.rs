//! Evaluation metrics with scikit-learn's definitions, proven against fixtures that sklearn
//! generated (`tests/fixtures/metrics/`). Pure functions over slices: the CLI and the page share
//! them.
//!
//! Conventions: classes are indices `0..k`; `y_true[i]` is a class index; scores are row-major
//! `n × k` (`scores[i * k + c]`). A metric that is undefined for the data returns `None`.

pub mod agreement;
pub mod bootstrap;
pub mod classification;
pub mod html;
pub mod input;
pub mod multilabel;
pub mod ranking;
pub mod report;
pub mod svg;
