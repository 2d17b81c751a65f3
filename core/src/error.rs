use std::fmt;

/// Where an input problem was found: the source's name (a file name, or "input" for bytes) and,
/// when known, the 1-based line of the record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Location {
    pub source: String,
    pub line: Option<u64>,
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.line {
            Some(line) => write!(f, "{}:{}", self.source, line),
            None => write!(f, "{}", self.source),
        }
    }
}

/// One error type for the crate; every variant says where the problem is and what was expected.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{0}: the input is empty (expected a header line or a JSON object)")]
    Empty(Location),
    #[error("{0}: the input has a header but no data rows")]
    NoRows(Location),
    #[error("{at}: no column named '{name}'; the columns are: {}", .available.join(", "))]
    MissingColumn { at: Location, name: String, available: Vec<String> },
    #[error("{at}: column name '{name}' appears more than once (columns {positions:?}); rename one of them so the choice is unambiguous")]
    AmbiguousColumn { at: Location, name: String, positions: Vec<usize> },
    #[error("{at}: {message}")]
    Invalid { at: Location, message: String },
    #[error("invalid option: {0}")]
    Option(String),
    /// A package archive (zip) that cannot be read, lacks an entry, or has one that is refused.
    #[error("{0}")]
    Archive(String),
    #[error("{0}")]
    Io(#[from] std::io::Error),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    pub fn invalid(source: &str, line: Option<u64>, message: impl Into<String>) -> Self {
        Error::Invalid { at: Location { source: source.to_string(), line }, message: message.into() }
    }
}
