//! A setting that must never reach a log: `Debug` and `Display` print
//! `[redacted]`, and the value is read only through [`Secret::expose`], a
//! name that stands out where it is called. Config structs derive `Debug`
//! (clap needs it, and a startup log may print one); their secrets print
//! nothing.

use std::{convert::Infallible, fmt, str::FromStr, sync::Arc};

/// A secret value; cloning it shares it.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Secret(Arc<str>);

impl Secret {
    pub fn new(value: impl Into<Arc<str>>) -> Self {
        Self(value.into())
    }

    /// The value itself, for the one place that needs it.
    pub fn expose(&self) -> &str {
        &self.0
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(if self.0.is_empty() {
            "[empty]"
        } else {
            "[redacted]"
        })
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self, f)
    }
}

/// For clap: any string is a secret; rules are checked in `validate`.
impl FromStr for Secret {
    type Err = Infallible;

    fn from_str(s: &str) -> Result<Self, Infallible> {
        Ok(Self::new(s))
    }
}

impl From<String> for Secret {
    fn from(s: String) -> Self {
        Self::new(s)
    }
}

impl From<&str> for Secret {
    fn from(s: &str) -> Self {
        Self::new(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug)]
    #[allow(dead_code)]
    struct Settings {
        url: String,
        token: Secret,
    }

    #[test]
    fn debug_never_shows_the_value() {
        let s = Settings {
            url: "redis://x".into(),
            token: Secret::new("s3cret-value"),
        };
        let printed = format!("{s:?} {}", s.token);
        assert!(!printed.contains("s3cret"), "{printed}");
        assert!(printed.contains("[redacted]"));
        assert_eq!(s.token.expose(), "s3cret-value");
        assert_eq!(format!("{:?}", Secret::default()), "[empty]");
    }
}
