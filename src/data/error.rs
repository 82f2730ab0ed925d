//! The error every data reader returns: what went wrong and in which file.

use std::fmt;
use std::path::{Path, PathBuf};

/// A data file that could not be read or is malformed.
#[derive(Debug)]
pub enum DataError {
    /// The file could not be opened or read.
    Io {
        /// The file.
        path: PathBuf,
        /// The operating-system error.
        source: std::io::Error,
    },
    /// The bytes are not a valid file of the expected format.
    Format {
        /// The file.
        path: PathBuf,
        /// What is wrong, in words.
        msg: String,
    },
}

impl DataError {
    pub(crate) fn format(path: &Path, msg: impl Into<String>) -> DataError {
        DataError::Format {
            path: path.to_path_buf(),
            msg: msg.into(),
        }
    }
    pub(crate) fn io(path: &Path, source: std::io::Error) -> DataError {
        DataError::Io {
            path: path.to_path_buf(),
            source,
        }
    }
}

impl fmt::Display for DataError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DataError::Io { path, source } => write!(f, "{}: {source}", path.display()),
            DataError::Format { path, msg } => write!(f, "{}: {msg}", path.display()),
        }
    }
}

impl std::error::Error for DataError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            DataError::Io { source, .. } => Some(source),
            DataError::Format { .. } => None,
        }
    }
}
