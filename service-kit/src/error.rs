//! Errors keep their cause: every boundary's error type has `source()`s, and
//! whoever answers or logs one prints the whole chain with [`Chain`], once,
//! where it is answered (never inside a conversion).

use std::{error::Error, fmt};

/// Displays an error and each of its sources, `outer: inner: innermost`.
pub struct Chain<'a>(pub &'a (dyn Error + 'static));

impl fmt::Display for Chain<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)?;
        let mut source = self.0.source();
        while let Some(e) = source {
            // An error that says its source already (`#[error("…: {0}")]`)
            // is not repeated.
            let text = e.to_string();
            if !self.0.to_string().ends_with(&text) {
                write!(f, ": {text}")?;
            }
            source = e.source();
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, thiserror::Error)]
    #[error("storing the batch")]
    struct Outer(#[source] std::io::Error);

    #[test]
    fn the_chain_names_every_cause() {
        let e = Outer(std::io::Error::other("connection reset"));
        assert_eq!(Chain(&e).to_string(), "storing the batch: connection reset");
    }
}
