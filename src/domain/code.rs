//! Link codes: `[A-Za-z0-9_-]{3,64}`. A new code is never one of the paths kolink serves
//! itself (`ShortCode::parse`); a stored one is read by its shape (`ShortCode::stored`).

use std::fmt;

use super::{slug::truncate, Invalid};

/// Default length of generated codes.
pub const GENERATED_LEN: usize = 7;

/// First path segments kolink uses or may use; a code may not shadow them (case-insensitive).
const RESERVED: &[&str] = &[
    "api",
    "webhooks",
    "healthz",
    "readyz",
    "metrics",
    "share",
    "dash",
    "static",
    "p",
    "kolink.js",
    "favicon.ico",
    "robots.txt",
    "openapi.json",
    "docs",
    "admin",
    "login",
    "logout",
    "assets",
    "well-known",
    "app",
    "auth",
    "status",
    "health",
    "ready",
];

#[derive(Debug, Clone, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(transparent)]
pub struct ShortCode(String);

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CodeError {
    Malformed(Invalid),
    Reserved(Invalid),
}

impl ShortCode {
    /// True when `s` has a code's shape (3 to 64 of `A-Za-z0-9_-`): checked before any lookup
    /// of a code that arrives in a URL.
    pub fn is_well_formed(s: &str) -> bool {
        (3..=64).contains(&s.len()) && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
    }

    /// Whether some link may have `s` as its code: well formed and not reserved.
    pub fn could_be_a_link(s: &str) -> bool {
        Self::is_well_formed(s) && !is_reserved(s)
    }

    /// A code for a new link, or a link's new code: well formed and not reserved.
    pub fn parse(s: &str) -> Result<Self, CodeError> {
        let code = Self::stored(s).map_err(CodeError::Malformed)?;
        if is_reserved(s) {
            return Err(CodeError::Reserved(Invalid::new(format!(
                "'{s}' is reserved for kolink's own paths: choose another code"
            ))));
        }
        Ok(code)
    }

    /// A code as a link record holds it: checked for its shape only. A word reserved after the
    /// link was minted must not make the link, or any report over its campaign, unreadable;
    /// such a link answers only where kolink's own routes leave its path free.
    pub fn stored(s: &str) -> Result<Self, Invalid> {
        if !Self::is_well_formed(s) {
            return Err(Invalid::new(format!(
                "'{}' is not a valid link code: use 3 to 64 letters, digits, '_' or '-'",
                truncate(s)
            )));
        }
        Ok(Self(s.to_owned()))
    }

    /// A fresh random code (nanoid alphabet `A-Za-z0-9_-`), never a reserved word.
    pub fn generate() -> Self {
        loop {
            let s = nanoid::nanoid!(GENERATED_LEN);
            if !is_reserved(&s) {
                return Self(s);
            }
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// The first path segments a code may not be (`RESERVED`), for the OpenAPI document's check.
pub fn reserved_words() -> &'static [&'static str] {
    RESERVED
}

fn is_reserved(s: &str) -> bool {
    RESERVED.iter().any(|r| r.eq_ignore_ascii_case(s))
}

impl fmt::Display for ShortCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Reads a stored code (`ShortCode::stored`): codes that arrive in requests are strings,
/// checked by `parse`.
impl<'de> serde::Deserialize<'de> for ShortCode {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        super::deserialize_str(d, "a string", ShortCode::stored)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_valid_codes() {
        for s in ["abc", "amy-serum", "A_b-9", &"x".repeat(64)] {
            assert!(ShortCode::parse(s).is_ok(), "{s}");
        }
    }

    #[test]
    fn rejects_malformed_codes() {
        for s in ["ab", "", "a b", "a/b", "a.b", "ä12", &"x".repeat(65)] {
            assert!(matches!(ShortCode::parse(s), Err(CodeError::Malformed(_))), "{s:?}");
        }
    }

    #[test]
    fn rejects_reserved_codes_in_any_case() {
        for s in [
            "api", "API", "webhooks", "healthz", "readyz", "metrics", "share", "dash", "static",
        ] {
            assert!(matches!(ShortCode::parse(s), Err(CodeError::Reserved(_))), "{s}");
        }
    }

    #[test]
    fn a_stored_code_reads_by_its_shape_even_when_reserved_since() {
        for s in ["admin", "App", "status"] {
            let code: ShortCode = serde_json::from_str(&format!("\"{s}\"")).unwrap();
            assert_eq!(code.as_str(), s);
        }
        for s in ["ab", "a/b", "ä12"] {
            let err = serde_json::from_str::<ShortCode>(&format!("\"{s}\"")).unwrap_err();
            assert!(err.to_string().contains("is not a valid link code"), "{s}: {err}");
        }
    }

    #[test]
    fn generated_codes_are_valid_and_seven_long() {
        for _ in 0..1000 {
            let c = ShortCode::generate();
            assert_eq!(c.as_str().len(), GENERATED_LEN);
            assert!(ShortCode::parse(c.as_str()).is_ok());
        }
    }
}
