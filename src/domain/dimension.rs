//! Click dimensions: what a human click is broken down by (referrer, device, …).
//!
//! This enum is the one list. Classification (`crate::classify`) gives each dimension its
//! value, the counters (`crate::counters`) count one field per dimension, the stores keep each
//! click's values under `Dimension::key`, and exports and stats breakdowns iterate
//! `Dimension::ALL`. Adding a dimension is a variant here plus its classifier.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Dimension {
    Referrer,
    Device,
    Browser,
    Os,
    Country,
    Source,
    /// The in-app browser (`instagram`, `line` …), empty for plain browsers.
    App,
}

impl Dimension {
    pub const ALL: [Dimension; 7] = [
        Dimension::Referrer,
        Dimension::Device,
        Dimension::Browser,
        Dimension::Os,
        Dimension::Country,
        Dimension::Source,
        Dimension::App,
    ];

    /// The name the API uses (breakdown keys, export columns).
    pub const fn name(self) -> &'static str {
        match self {
            Dimension::Referrer => "referrer",
            Dimension::Device => "device",
            Dimension::Browser => "browser",
            Dimension::Os => "os",
            Dimension::Country => "country",
            Dimension::Source => "source",
            Dimension::App => "app",
        }
    }

    /// The tag in counter field names (`x|<tag>|<day>|<value>`).
    pub const fn tag(self) -> &'static str {
        match self {
            Dimension::Referrer => "ref",
            Dimension::Device => "dev",
            Dimension::Browser => "br",
            Dimension::Os => "os",
            Dimension::Country => "cc",
            Dimension::Source => "src",
            Dimension::App => "app",
        }
    }

    /// The short key a stored click keeps its value under (one letter: click logs are large).
    pub const fn key(self) -> &'static str {
        match self {
            Dimension::Referrer => "r",
            Dimension::Device => "d",
            Dimension::Browser => "b",
            Dimension::Os => "o",
            Dimension::Country => "c",
            Dimension::Source => "s",
            Dimension::App => "a",
        }
    }

    const fn index(self) -> usize {
        self as usize
    }

    pub fn from_tag(tag: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|d| d.tag() == tag)
    }

    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|d| d.name() == name)
    }

    pub fn from_key(key: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|d| d.key() == key)
    }
}

/// A click's value of every dimension; empty when unknown.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Dimensions([String; Dimension::ALL.len()]);

impl Dimensions {
    pub fn get(&self, d: Dimension) -> &str {
        &self.0[d.index()]
    }

    pub fn set(&mut self, d: Dimension, value: impl Into<String>) {
        self.0[d.index()] = value.into();
    }

    /// Builder form of `set`.
    pub fn with(mut self, d: Dimension, value: impl Into<String>) -> Self {
        self.set(d, value);
        self
    }

    /// Every dimension with its value, in `Dimension::ALL` order.
    pub fn iter(&self) -> impl Iterator<Item = (Dimension, &str)> {
        Dimension::ALL.into_iter().map(|d| (d, self.get(d)))
    }
}

/// One click as the redirect saw it; stored in the link's click log. Serialised as a flat
/// object: `bot`, `preview`, `suspicious`, `visitor`, then each dimension by name.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ClickInfo {
    pub bot: bool,
    /// For a link-preview fetch, the app whose card it draws (`whatsapp`, `line` …).
    pub preview: String,
    /// A person's click past 10 from one visitor on one link within a minute.
    pub suspicious: bool,
    /// hash(daily salt, IP, user agent), hex; empty for bots.
    pub visitor: String,
    pub dims: Dimensions,
}

impl Serialize for ClickInfo {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let mut m = s.serialize_map(Some(4 + Dimension::ALL.len()))?;
        m.serialize_entry("bot", &self.bot)?;
        m.serialize_entry("preview", &self.preview)?;
        m.serialize_entry("suspicious", &self.suspicious)?;
        m.serialize_entry("visitor", &self.visitor)?;
        for (d, v) in self.dims.iter() {
            m.serialize_entry(d.name(), v)?;
        }
        m.end()
    }
}

impl<'de> Deserialize<'de> for ClickInfo {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        struct Raw {
            #[serde(default)]
            bot: bool,
            #[serde(default)]
            preview: String,
            #[serde(default)]
            suspicious: bool,
            #[serde(default)]
            visitor: String,
            #[serde(flatten)]
            dims: HashMap<String, String>,
        }
        let raw = Raw::deserialize(d)?;
        let mut dims = Dimensions::default();
        for (name, value) in raw.dims {
            if let Some(dim) = Dimension::from_name(&name) {
                dims.set(dim, value);
            }
        }
        Ok(ClickInfo {
            bot: raw.bot,
            preview: raw.preview,
            suspicious: raw.suspicious,
            visitor: raw.visitor,
            dims,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_tags_and_keys_are_each_unique() {
        for f in [Dimension::name, Dimension::tag, Dimension::key] {
            let mut seen: Vec<&str> = Dimension::ALL.iter().map(|d| f(*d)).collect();
            seen.sort();
            seen.dedup();
            assert_eq!(seen.len(), Dimension::ALL.len());
        }
        for d in Dimension::ALL {
            assert_eq!(Dimension::from_tag(d.tag()), Some(d));
            assert_eq!(Dimension::from_name(d.name()), Some(d));
            assert_eq!(Dimension::from_key(d.key()), Some(d));
        }
    }

    #[test]
    fn click_info_round_trips_through_its_flat_json() {
        let info = ClickInfo {
            bot: false,
            preview: String::new(),
            suspicious: true,
            visitor: "abc".into(),
            dims: Dimensions::default()
                .with(Dimension::Referrer, "instagram.com")
                .with(Dimension::Source, "qr"),
        };
        let json = serde_json::to_value(&info).unwrap();
        assert_eq!(json["referrer"], "instagram.com");
        assert_eq!(json["device"], "");
        assert_eq!(serde_json::from_value::<ClickInfo>(json).unwrap(), info);
        // Stored clicks of earlier versions read back the same.
        let old =
            r#"{"bot":true,"visitor":"","referrer":"x.com","device":"","browser":"","os":"","country":"","source":""}"#;
        let read: ClickInfo = serde_json::from_str(old).unwrap();
        assert!(read.bot);
        assert_eq!(read.dims.get(Dimension::Referrer), "x.com");
    }
}
