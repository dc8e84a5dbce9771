//! Identifiers of campaigns, KOLs and shops: `[a-z0-9][a-z0-9_-]{0,63}`.

use std::fmt;

use super::Invalid;

#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
#[serde(transparent)]
pub struct Slug(String);

impl Slug {
    pub fn parse(s: &str) -> Result<Self, Invalid> {
        let bytes = s.as_bytes();
        let ok = !bytes.is_empty()
            && bytes.len() <= 64
            && (bytes[0].is_ascii_lowercase() || bytes[0].is_ascii_digit())
            && bytes
                .iter()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || *b == b'_' || *b == b'-');
        if ok {
            Ok(Self(s.to_owned()))
        } else {
            Err(Invalid::new(format!(
                "'{}' is not a valid id: use 1 to 64 lowercase letters, digits, '_' or '-', starting with a letter or digit",
                truncate(s)
            )))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Slug {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl<'de> serde::Deserialize<'de> for Slug {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        super::deserialize_str(d, "a string", Slug::parse)
    }
}

/// Shortens user input quoted back in an error message.
pub(crate) fn truncate(s: &str) -> String {
    let mut out: String = s.chars().take(40).filter(|c| !c.is_control()).collect();
    if s.chars().count() > 40 {
        out.push('…');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_lowercase_slugs() {
        for s in ["a", "spring-sale", "amy_2", "0abc", &"a".repeat(64)] {
            assert!(Slug::parse(s).is_ok(), "{s}");
        }
    }

    #[test]
    fn rejects_everything_else() {
        for s in ["", "-a", "_a", "Amy", "a b", "a/b", "ä", &"a".repeat(65), "a\n"] {
            assert!(Slug::parse(s).is_err(), "{s:?}");
        }
    }
}
