//! What the dashboard calls things, in the page's language: figures, conversion statuses and
//! audit results, events, tiers, platforms, and breakdown slices (apps by their own names).

use super::super::{Texts, AUDIT_SOURCES, DEVICES};
use crate::domain::{AuditResult, ConversionStatus, Event, Tier};
use crate::report::SortKey;

pub(super) fn label(t: &Texts, k: SortKey) -> &'static str {
    match k {
        SortKey::Roi => t.roi,
        SortKey::Roas => t.roas,
        SortKey::Clicks => t.clicks,
        SortKey::UniqueClicks => t.unique_clicks,
        SortKey::Impressions => t.impressions,
        SortKey::Ctr => t.ctr,
        SortKey::Conversions => t.conversions,
        SortKey::ConversionRate => t.conversion_rate,
        SortKey::Revenue => t.revenue,
        SortKey::NetRevenue => t.net_revenue,
        SortKey::Refunds => t.refunds,
        SortKey::Cost => t.cost,
        SortKey::Epc => t.epc,
        SortKey::Cpc => t.cpc,
        SortKey::Cpa => t.cpa,
        SortKey::Aov => t.aov,
        SortKey::Engagements => t.engagements,
        SortKey::EngagementRate => t.engagement_rate,
        SortKey::Reach => t.reach,
        SortKey::PixelImpressions => t.pixel_impressions,
        SortKey::BotClicks => t.bot_clicks,
        SortKey::Previews => t.previews,
        SortKey::SuspiciousClicks => t.suspicious_clicks,
    }
}

/// Where a shop's data named a link, in the page's language; a source kolink does not know is
/// shown as it is.
pub(super) fn audit_source<'a>(t: &'a Texts, source: &'a str) -> &'a str {
    AUDIT_SOURCES
        .iter()
        .position(|s| *s == source)
        .map_or(source, |i| t.audit_sources[i])
}

/// A candidate's result in a conversion's audit, in the page's language.
pub(super) fn audit_result(t: &Texts, result: AuditResult) -> &'static str {
    let [chosen, lower, no_link, bot, after, outside] = t.audit_results;
    match result {
        AuditResult::Chosen => chosen,
        AuditResult::LowerPriority => lower,
        AuditResult::NoLink => no_link,
        AuditResult::BotClick => bot,
        AuditResult::AfterConversion => after,
        AuditResult::OutsideWindow => outside,
    }
}

/// A conversion's status in the page's language.
pub(super) fn status_name(t: &Texts, status: ConversionStatus) -> &'static str {
    let [attributed, duplicate, unattributed, outside, mismatch, pending, over, test] = t.statuses;
    match status {
        ConversionStatus::Attributed => attributed,
        ConversionStatus::Duplicate => duplicate,
        ConversionStatus::Unattributed => unattributed,
        ConversionStatus::OutsideWindow => outside,
        ConversionStatus::CurrencyMismatch => mismatch,
        ConversionStatus::Pending => pending,
        ConversionStatus::OverRefund => over,
        ConversionStatus::Test => test,
    }
}

/// A breakdown slice's name in the page's language: devices and QR scans; apps by their own
/// names (`line` is LINE); referrers, countries and sources as they are.
pub(super) fn slice_name(t: &Texts, dimension: &str, key: &str) -> String {
    let known = match dimension {
        "device" => DEVICES.iter().position(|d| *d == key).map(|i| t.devices[i]),
        "source" if key == "qr" => Some(t.qr_source),
        "app" | "preview" => APP_NAMES.iter().find(|(k, _)| *k == key).map(|(_, name)| *name),
        _ => None,
    };
    known.map_or_else(|| key.to_owned(), str::to_owned)
}

/// Apps as they write their names, by the keys of the `app` and `preview` breakdowns
/// (`crate::classify`); a key not here is shown as it is.
const APP_NAMES: &[(&str, &str)] = &[
    ("instagram", "Instagram"),
    ("facebook", "Facebook"),
    ("messenger", "Messenger"),
    ("threads", "Threads"),
    ("tiktok", "TikTok"),
    ("x", "X"),
    ("line", "LINE"),
    ("wechat", "WeChat"),
    ("kakaotalk", "KakaoTalk"),
    ("snapchat", "Snapchat"),
    ("pinterest", "Pinterest"),
    ("weibo", "Weibo"),
    ("dingtalk", "DingTalk"),
    ("naver", "NAVER"),
    ("baidu", "Baidu"),
    ("google", "Google"),
    ("linkedin", "LinkedIn"),
    ("viber", "Viber"),
    ("applenews", "Apple News"),
    ("qq", "QQ"),
    ("whatsapp", "WhatsApp"),
    ("telegram", "Telegram"),
    ("slack", "Slack"),
    ("discord", "Discord"),
    ("imessage", "iMessage"),
    ("skype", "Skype"),
    ("microsoft", "Microsoft"),
    ("reddit", "Reddit"),
    ("tumblr", "Tumblr"),
    ("mastodon", "Mastodon"),
    ("bluesky", "Bluesky"),
    ("vk", "VK"),
    ("steam", "Steam"),
    ("chatwork", "Chatwork"),
    ("discourse", "Discourse"),
    ("embedly", "Embedly"),
    ("iframely", "Iframely"),
];

/// An event's name in the page's language.
pub(super) fn event_name(t: &Texts, event: Event) -> &'static str {
    Event::ALL.iter().position(|e| *e == event).map_or("", |i| t.events[i])
}

/// A KOL's platform as it writes its name (blog and other in the page's language).
pub(super) fn platform_name(t: &Texts, p: crate::domain::Platform) -> &'static str {
    use crate::domain::Platform::*;
    match p {
        Instagram => "Instagram",
        Youtube => "YouTube",
        Tiktok => "TikTok",
        Facebook => "Facebook",
        Threads => "Threads",
        X => "X",
        Blog => t.platform_blog,
        Line => "LINE",
        Other => t.platform_other,
    }
}

/// A follower tier's name in the page's language.
pub(super) fn tier_name(t: &Texts, tier: Tier) -> &'static str {
    let [nano, micro, mid, macro_, mega] = t.tier_names;
    match tier {
        Tier::Nano => nano,
        Tier::Micro => micro,
        Tier::Mid => mid,
        Tier::Macro => macro_,
        Tier::Mega => mega,
    }
}

pub(super) fn enum_text<T: serde::Serialize>(v: &T) -> String {
    serde_json::to_value(v)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::views::app::campaigns::UNCLAIMED_SCAN;
    use crate::http::views::{EN, ZH_TW};

    #[test]
    fn apps_are_named_as_they_write_their_names() {
        assert_eq!(slice_name(&ZH_TW, "app", "line"), "LINE");
        assert_eq!(slice_name(&EN, "preview", "whatsapp"), "WhatsApp");
        assert_eq!(slice_name(&EN, "app", "instagram"), "Instagram");
        // One kolink does not know yet, and other breakdowns, as they are.
        assert_eq!(slice_name(&EN, "app", "newapp"), "newapp");
        assert_eq!(slice_name(&EN, "referrer", "line.me"), "line.me");
        let keys: std::collections::HashSet<_> = APP_NAMES.iter().map(|(k, _)| k).collect();
        assert_eq!(keys.len(), APP_NAMES.len(), "one name per app");
    }

    #[test]
    fn every_column_breakdown_tier_and_status_has_a_name_of_its_own_in_each_language() {
        for t in [&EN, &ZH_TW] {
            let mut names: Vec<&str> = SortKey::ALL.iter().map(|k| label(t, *k)).collect();
            names.extend(t.dimensions);
            let tiers = [Tier::Nano, Tier::Micro, Tier::Mid, Tier::Macro, Tier::Mega];
            names.extend(tiers.iter().map(|tier| tier_name(t, *tier)));
            let statuses = [
                ConversionStatus::Attributed,
                ConversionStatus::Duplicate,
                ConversionStatus::Unattributed,
                ConversionStatus::OutsideWindow,
                ConversionStatus::CurrencyMismatch,
                ConversionStatus::Pending,
                ConversionStatus::OverRefund,
                ConversionStatus::Test,
            ];
            names.extend(statuses.iter().map(|s| status_name(t, *s)));
            names.extend(t.devices);
            names.push(t.qr_source);
            let mut distinct = names.clone();
            distinct.sort();
            distinct.dedup();
            assert_eq!(distinct.len(), names.len(), "{names:?}");
            for name in &names {
                if t.html_lang == "en" {
                    assert!(name.starts_with(|c: char| c.is_ascii_uppercase()), "{name}");
                } else {
                    assert!(!name.is_ascii(), "untranslated: {name}");
                }
            }
        }
        for t in [&EN, &ZH_TW] {
            let mut events: Vec<&str> = Event::ALL.iter().map(|e| event_name(t, *e)).collect();
            events.dedup();
            assert_eq!(events.len(), Event::ALL.len(), "{events:?}");
            assert!(
                events.iter().all(|e| (t.html_lang == "en") == e.is_ascii()),
                "{events:?}"
            );
        }
        assert_eq!(event_name(&ZH_TW, Event::Refund), "退款");
        for t in [&EN, &ZH_TW] {
            assert!(
                t.unclaimed_note.contains(&UNCLAIMED_SCAN.to_string()),
                "the note says how far back"
            );
        }
        assert_eq!(tier_name(&ZH_TW, Tier::Mega), "超大型");
        for t in [&EN, &ZH_TW] {
            let mut audit: Vec<&str> = AUDIT_SOURCES.iter().map(|s| audit_source(t, s)).collect();
            let results = [
                AuditResult::Chosen,
                AuditResult::LowerPriority,
                AuditResult::NoLink,
                AuditResult::BotClick,
                AuditResult::AfterConversion,
                AuditResult::OutsideWindow,
            ];
            audit.extend(results.iter().map(|r| audit_result(t, *r)));
            let mut distinct = audit.clone();
            distinct.sort();
            distinct.dedup();
            assert_eq!(distinct.len(), audit.len(), "{audit:?}");
            assert!(audit.iter().all(|a| !a.contains('_')), "{audit:?}");
            if t.html_lang != "en" {
                assert!(audit.iter().all(|a| !a.is_ascii()), "untranslated: {audit:?}");
            }
            assert_eq!(audit_source(t, "a_new_source"), "a_new_source", "shown as it is");
        }
        assert_eq!(tier_name(&EN, Tier::Nano), "Nano");
    }
}
