//! The BERT encoder: config, modules and Hugging Face checkpoints.

pub mod activation;
pub mod adapter;
pub mod bert;
pub mod config;
pub mod cpu_fast;
pub mod dropout;
pub mod folder;
pub mod hf;
pub mod int8;
pub mod lora;
pub mod precision;

pub use adapter::Adapter;
pub use bert::{l2_normalize, pool, BertClassifier, BertModel, EncoderInput, Head};
pub use config::{Activation, BertConfig, Pooling};
pub use dropout::{with_dropout_seed, Dropout};
pub use folder::{max_seq_length, sentence_config_json, ModelFiles, ModelFolder, SENTENCE_CONFIG};
pub use hf::{classifier_to_safetensors, encoder_to_safetensors, load_classifier, load_encoder, Checkpoint, LoadNotes};
pub use lora::Lora;
pub use precision::Precision;
