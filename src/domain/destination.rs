//! Where a link sends people: an absolute http(s) URL with a host, no user-info, ≤ 2,048 bytes.

use url::Url;

use super::{has_control_chars, Invalid};

const MAX_LEN: usize = 2048;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Destination(Url);

impl Destination {
    pub fn parse(s: &str) -> Result<Self, Invalid> {
        let bad = |why: &str| Invalid::new(format!("destination {why}"));
        if s.len() > MAX_LEN {
            return Err(bad("is longer than 2048 bytes"));
        }
        // The WHATWG parser silently drops tabs and newlines; we refuse them instead.
        if has_control_chars(s) || s.contains(' ') {
            return Err(bad("contains spaces or control characters: percent-encode them"));
        }
        let url = Url::parse(s).map_err(|e| {
            bad(&format!(
                "is not an absolute URL ({e}): start it with https://, as in https://shop.example.com/item"
            ))
        })?;
        if url.scheme() != "http" && url.scheme() != "https" {
            return Err(bad("must start with http:// or https://"));
        }
        // The parser is lenient where a person typed wrong: "https:///p", "https:/p" and
        // "https:p" all become https://p/. The host must be written as typed, after "//".
        let authority = s.get(url.scheme().len() + 1..).unwrap_or_default();
        if !authority.starts_with("//") || authority[2..].starts_with(['/', '\\']) {
            return Err(bad(&format!(
                "must be written as {}://host/path, with the host right after the two slashes",
                url.scheme()
            )));
        }
        if url.host_str().is_none_or(str::is_empty) {
            return Err(bad("must name a host"));
        }
        if !url.username().is_empty() || url.password().is_some() {
            return Err(bad("must not contain a user name or password"));
        }
        if url.as_str().len() > MAX_LEN {
            return Err(bad("is longer than 2048 bytes once normalised"));
        }
        Ok(Self(url))
    }

    pub fn url(&self) -> &Url {
        &self.0
    }

    pub fn as_str(&self) -> &str {
        self.0.as_str()
    }
}

impl serde::Serialize for Destination {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.0.as_str())
    }
}

impl<'de> serde::Deserialize<'de> for Destination {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Destination::parse(&s).map_err(serde::de::Error::custom)
    }
}

/// Appends `kl_cid=<click id>` to a target URL: `&` when it has a query, else `?`, always before
/// the fragment. The click id is URL-safe by construction, so it needs no encoding.
pub fn with_click_id(target: &str, click_id: &str) -> String {
    let (head, fragment) = match target.find('#') {
        Some(i) => target.split_at(i),
        None => (target, ""),
    };
    let sep = match head.find('?') {
        Some(i) if i + 1 < head.len() => "&",
        Some(_) => "",
        None => "?",
    };
    let mut out = String::with_capacity(target.len() + click_id.len() + 8);
    out.push_str(head);
    out.push_str(sep);
    out.push_str("kl_cid=");
    out.push_str(click_id);
    out.push_str(fragment);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_http_and_https_urls() {
        for s in [
            "https://shop.example.com/spring",
            "http://127.0.0.1:8000/a?b=c#d",
            "https://xn--fsq.example/",
        ] {
            assert!(Destination::parse(s).is_ok(), "{s}");
        }
    }

    #[test]
    fn rejects_dangerous_or_malformed_destinations() {
        let long = format!("https://example.com/{}", "a".repeat(2040));
        for s in [
            "javascript:alert(1)",
            "data:text/html,<script>alert(1)</script>",
            "ftp://example.com/",
            "https://user:pw@example.com/",
            "https://user@example.com/",
            "//example.com/",
            "/relative",
            "https://example.com/a\r\nSet-Cookie: x=1",
            "https://example.com/\ta",
            "https://example.com/a b",
            "file:///etc/passwd",
            // The WHATWG parser reads each of these as https://p/ or https://example.com/: a
            // typo would send people to a host nobody typed.
            "https:///p",
            "https:/p",
            "https:p",
            "https:////example.com/",
            "https:\\\\example.com/",
            "http:example.com",
            "",
            long.as_str(),
        ] {
            assert!(Destination::parse(s).is_err(), "{s:?}");
        }
    }

    #[test]
    fn click_id_goes_into_the_query_before_the_fragment() {
        assert_eq!(
            with_click_id("https://a.example/x", "c1"),
            "https://a.example/x?kl_cid=c1"
        );
        assert_eq!(
            with_click_id("https://a.example/x?y=1", "c1"),
            "https://a.example/x?y=1&kl_cid=c1"
        );
        assert_eq!(
            with_click_id("https://a.example/x?y=1#top", "c1"),
            "https://a.example/x?y=1&kl_cid=c1#top"
        );
        assert_eq!(
            with_click_id("https://a.example/x#top", "c1"),
            "https://a.example/x?kl_cid=c1#top"
        );
        assert_eq!(
            with_click_id("https://a.example/x?#top", "c1"),
            "https://a.example/x?kl_cid=c1#top"
        );
    }
}
