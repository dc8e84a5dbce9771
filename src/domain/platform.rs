//! Where a KOL publishes, and the follower tier derived from their audience size.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Platform {
    Instagram,
    Youtube,
    Tiktok,
    Facebook,
    Threads,
    X,
    Blog,
    Line,
    Other,
}

impl Platform {
    pub const ALL: [Platform; 9] = [
        Platform::Instagram,
        Platform::Youtube,
        Platform::Tiktok,
        Platform::Facebook,
        Platform::Threads,
        Platform::X,
        Platform::Blog,
        Platform::Line,
        Platform::Other,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Platform::Instagram => "instagram",
            Platform::Youtube => "youtube",
            Platform::Tiktok => "tiktok",
            Platform::Facebook => "facebook",
            Platform::Threads => "threads",
            Platform::X => "x",
            Platform::Blog => "blog",
            Platform::Line => "line",
            Platform::Other => "other",
        }
    }
}

/// Follower tiers as API.md defines them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Tier {
    Nano,
    Micro,
    Mid,
    Macro,
    Mega,
}

impl Tier {
    pub fn from_followers(followers: u64) -> Self {
        match followers {
            0..=9_999 => Tier::Nano,
            10_000..=49_999 => Tier::Micro,
            50_000..=499_999 => Tier::Mid,
            500_000..=999_999 => Tier::Macro,
            _ => Tier::Mega,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Tier::Nano => "nano",
            Tier::Micro => "micro",
            Tier::Mid => "mid",
            Tier::Macro => "macro",
            Tier::Mega => "mega",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tiers_follow_the_documented_boundaries() {
        let cases = [
            (0, Tier::Nano),
            (9_999, Tier::Nano),
            (10_000, Tier::Micro),
            (49_999, Tier::Micro),
            (50_000, Tier::Mid),
            (499_999, Tier::Mid),
            (500_000, Tier::Macro),
            (999_999, Tier::Macro),
            (1_000_000, Tier::Mega),
            (u64::MAX, Tier::Mega),
        ];
        for (followers, tier) in cases {
            assert_eq!(Tier::from_followers(followers), tier, "{followers}");
        }
    }
}
