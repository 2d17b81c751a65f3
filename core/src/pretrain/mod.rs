//! Domain-adaptive continued pretraining: BERT's masked-language-model objective on unlabelled
//! in-domain text, trained by the same step as fine-tuning ([`crate::train::Trainer`]).
//! - [`mlm`]: HF `BertForMaskedLM` (encoder + `cls.predictions` head, decoder tied to the word
//!   embeddings), loaded from and saved to HF keys so transformers loads the result.
//! - [`masking`]: HF's `DataCollatorForLanguageModeling` (80/10/10) and
//!   `DataCollatorForWholeWordMask` choices of tokens to predict.

pub mod corpus;
pub mod masking;
pub mod mlm;
pub mod session;

pub use masking::{MaskedBatch, Masking};
pub use mlm::{load_masked_lm, masked_lm_files, masked_lm_to_safetensors, perplexity, BertForMaskedLm, MlmHead};
pub use session::{MaskedLm, PretrainOptions, PretrainSession};
