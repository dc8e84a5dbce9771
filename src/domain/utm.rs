//! UTM parameters and the target URL a link redirects to.
//!
//! Defaults come first (`source` = the KOL's platform, `medium` = `kol`, `campaign` = campaign
//! id, `content` = KOL id); the campaign's `utm` overrides them and the link's overrides both.

use serde::{Deserialize, Serialize};

use super::{has_control_chars, Destination, Invalid};

const MAX_VALUE_LEN: usize = 256;

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Utm {
    pub source: Option<String>,
    pub medium: Option<String>,
    pub campaign: Option<String>,
    pub content: Option<String>,
    pub term: Option<String>,
}

impl Utm {
    /// Rejects values that are empty, too long or hold control characters (CR/LF included).
    pub fn validate(self) -> Result<Self, Invalid> {
        for (name, v) in self.pairs() {
            if let Some(v) = v {
                if v.is_empty() || v.len() > MAX_VALUE_LEN || has_control_chars(v) {
                    return Err(Invalid::new(format!(
                        "utm.{name} must be 1 to 256 characters without control characters"
                    )));
                }
            }
        }
        Ok(self)
    }

    /// `other`'s values win where they are set.
    pub fn overridden_by(&self, other: &Utm) -> Utm {
        let pick = |a: &Option<String>, b: &Option<String>| b.clone().or_else(|| a.clone());
        Utm {
            source: pick(&self.source, &other.source),
            medium: pick(&self.medium, &other.medium),
            campaign: pick(&self.campaign, &other.campaign),
            content: pick(&self.content, &other.content),
            term: pick(&self.term, &other.term),
        }
    }

    pub(crate) fn pairs(&self) -> [(&'static str, Option<&str>); 5] {
        [
            ("source", self.source.as_deref()),
            ("medium", self.medium.as_deref()),
            ("campaign", self.campaign.as_deref()),
            ("content", self.content.as_deref()),
            ("term", self.term.as_deref()),
        ]
    }
}

/// The URL a link redirects to: `destination` with every query parameter kept in order, each
/// `utm_*` that `utm` sets replaced in place (later duplicates dropped), the others appended in
/// the order source, medium, campaign, content, term, any stale `kl_cid` removed, and the
/// fragment last.
pub fn target_url(destination: &Destination, utm: &Utm) -> String {
    let mut url = destination.url().clone();
    let set: Vec<(String, &str)> = utm
        .pairs()
        .into_iter()
        .filter_map(|(k, v)| v.map(|v| (format!("utm_{k}"), v)))
        .collect();
    let mut written = vec![false; set.len()];
    let mut parts: Vec<String> = Vec::new();
    if let Some(query) = url.query() {
        for piece in query.split('&').filter(|p| !p.is_empty()) {
            let raw_key = piece.split('=').next().unwrap_or("");
            let key: String = url::form_urlencoded::parse(raw_key.as_bytes())
                .next()
                .map(|(k, _)| k.into_owned())
                .unwrap_or_default();
            if key == "kl_cid" {
                continue;
            }
            match set.iter().position(|(k, _)| *k == key) {
                Some(i) if written[i] => {}
                Some(i) => {
                    written[i] = true;
                    parts.push(encode_pair(&set[i].0, set[i].1));
                }
                None => parts.push(piece.to_owned()),
            }
        }
    }
    for (i, (k, v)) in set.iter().enumerate() {
        if !written[i] {
            parts.push(encode_pair(k, v));
        }
    }
    if parts.is_empty() {
        url.set_query(None);
    } else {
        url.set_query(Some(&parts.join("&")));
    }
    url.into()
}

fn encode_pair(k: &str, v: &str) -> String {
    let v: String = url::form_urlencoded::byte_serialize(v.as_bytes()).collect();
    format!("{k}={v}")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dest(s: &str) -> Destination {
        Destination::parse(s).unwrap()
    }

    fn utm(source: &str, medium: &str, campaign: &str, content: &str) -> Utm {
        Utm {
            source: Some(source.into()),
            medium: Some(medium.into()),
            campaign: Some(campaign.into()),
            content: Some(content.into()),
            term: None,
        }
    }

    #[test]
    fn appends_utm_after_existing_parameters() {
        let t = target_url(
            &dest("https://shop.example.com/serum?ref=home"),
            &utm("instagram", "kol", "spring-sale", "amy-reel"),
        );
        assert_eq!(
            t,
            "https://shop.example.com/serum?ref=home&utm_source=instagram&utm_medium=kol&utm_campaign=spring-sale&utm_content=amy-reel"
        );
    }

    #[test]
    fn replaces_existing_utm_in_place_and_never_duplicates() {
        let t = target_url(
            &dest("https://s.example/p?utm_source=old&a=1&utm_source=older&b=%20x#frag"),
            &utm("ig", "kol", "c", "amy"),
        );
        assert_eq!(
            t,
            "https://s.example/p?utm_source=ig&a=1&b=%20x&utm_medium=kol&utm_campaign=c&utm_content=amy#frag"
        );
    }

    #[test]
    fn keeps_utm_parameters_the_link_does_not_set() {
        let only_source = Utm {
            source: Some("tiktok".into()),
            ..Utm::default()
        };
        let t = target_url(&dest("https://s.example/?utm_term=shoes&x=1"), &only_source);
        assert_eq!(t, "https://s.example/?utm_term=shoes&x=1&utm_source=tiktok");
    }

    #[test]
    fn keeps_the_fragment_last_and_drops_stale_click_ids() {
        let t = target_url(
            &dest("https://s.example/a?kl_cid=old&q=1#section-2"),
            &utm("x", "kol", "c", "k"),
        );
        assert_eq!(
            t,
            "https://s.example/a?q=1&utm_source=x&utm_medium=kol&utm_campaign=c&utm_content=k#section-2"
        );
    }

    #[test]
    fn encodes_values() {
        let u = Utm {
            content: Some("amy reel&more".into()),
            ..Utm::default()
        };
        assert_eq!(
            target_url(&dest("https://s.example/"), &u),
            "https://s.example/?utm_content=amy+reel%26more"
        );
    }

    #[test]
    fn later_layers_override_earlier_ones() {
        let defaults = utm("instagram", "kol", "spring", "amy");
        let campaign = Utm {
            medium: Some("influencer".into()),
            ..Utm::default()
        };
        let link = Utm {
            content: Some("amy-reel".into()),
            ..Utm::default()
        };
        let merged = defaults.overridden_by(&campaign).overridden_by(&link);
        assert_eq!(
            merged,
            Utm {
                medium: Some("influencer".into()),
                content: Some("amy-reel".into()),
                ..defaults
            }
        );
    }

    #[test]
    fn rejects_control_characters_instead_of_stripping_them() {
        for bad in ["a\r\nb", "a\nb", "a\u{7f}", "\t", ""] {
            let u = Utm {
                source: Some(bad.into()),
                ..Utm::default()
            };
            assert!(u.validate().is_err(), "{bad:?}");
        }
        assert!(Utm {
            source: Some("x".repeat(257)),
            ..Utm::default()
        }
        .validate()
        .is_err());
    }
}
