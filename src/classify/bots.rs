//! Who is not a person: link-preview fetchers (named by the app whose card they draw), and
//! every other crawler, agent, tool or junk user agent.
//!
//! The bulk of the list is data: the pattern list of the `isbot` package (Unlicense), vendored
//! in `isbot-patterns.json` with its version; `scripts/refresh-bot-patterns` updates it. Kept
//! here are only the previewers (to count previews by app) and what the list misses.

use std::sync::OnceLock;

use serde::Deserialize;

#[derive(Deserialize)]
struct PatternFile {
    patterns: Vec<String>,
}

/// The vendored list, compiled: the plain patterns as one regex, those with look-around
/// (which the regex crate does not do) one by one with fancy-regex.
///
/// The plain patterns match bytes, without Unicode: `\w`, `\d`, `\b` and case are ASCII's.
/// User agents are ASCII by the HTTP grammar and the patterns name ASCII tokens; with Unicode
/// case folding (`k` also matching the Kelvin sign) the one regex took 1,033 KiB to build, and
/// 139 KiB without, with the same answer on every user agent of the evaluation set.
struct BotList {
    plain: regex::bytes::Regex,
    fancy: Vec<fancy_regex::Regex>,
}

fn list() -> &'static BotList {
    static LIST: OnceLock<BotList> = OnceLock::new();
    LIST.get_or_init(|| {
        let file: PatternFile =
            serde_json::from_str(include_str!("isbot-patterns.json")).expect("the vendored pattern file is JSON");
        let (fancy, plain): (Vec<String>, Vec<String>) = file
            .patterns
            .into_iter()
            .filter(|p| !DROPPED.contains(&p.as_str()))
            .chain(EXTRA.iter().map(|p| (*p).to_owned()))
            .map(|p| from_javascript(&p))
            .partition(|p| p.contains("(?<") || p.contains("(?=") || p.contains("(?!"));
        let plain = regex::bytes::RegexBuilder::new(&plain.join("|"))
            .case_insensitive(true)
            .unicode(false)
            .build()
            .expect("the bot patterns compile");
        let fancy = fancy
            .iter()
            .map(|p| fancy_regex::Regex::new(&format!("(?i){p}")).expect("the bot patterns compile"))
            .collect();
        BotList { plain, fancy }
    })
}

/// The patterns are JavaScript regexes; one leniency of JavaScript is used in them: a `-`
/// right after a class escape (`[\w\d-.]`) is a literal. Rust's regex wants it escaped.
fn from_javascript(pattern: &str) -> String {
    let mut out = String::with_capacity(pattern.len());
    let mut chars = pattern.chars().peekable();
    while let Some(c) = chars.next() {
        out.push(c);
        if c == '\\' {
            if let Some(e) = chars.next() {
                out.push(e);
                if "wdsWDS".contains(e) && chars.peek() == Some(&'-') {
                    chars.next();
                    out.push_str("\\-");
                }
            }
        }
    }
    out
}

/// Upstream patterns kolink does not use: they name people's browsers (Internet Explorer
/// with the Chrome Frame plug-in, Firefox with the FirePHP extension), and catch no fetcher of
/// the evaluation set that another pattern does not.
const DROPPED: &[&str] = &["chromeframe", "firephp"];

/// Patterns the vendored list misses (found by the evaluation in `tests/fixtures`).
const EXTRA: &[&str] = &[
    r"^whatsapp",
    r"chatwork",
    r"valve/steam",
    r"discourse",
    r"^tumblr/",
    r"cardyb",
    r"privacy preserving prefetch proxy",
    r"-user/\d",
    r"playwright",
    r"selenium",
    r"^zapier",
    r"^make/production",
    r"^integromat",
    r"statuscake",
    r"site24x7",
    r"nuclei",
    r"zgrab",
    r"nikto",
    r"wpscan",
    r"masscan",
    r"^mozilla/5\.0 \((windows nt|macintosh|x11|linux)[^)]*\)$",
    r"^(test|null|undefined|-|\{.*\}|\$\{.*\})$",
    r"\(link preview\)",
    r"assetnote",
    r"\bhlb/\d",
    r"yunjiankong",
    r"amazon-kendra",
    r"geckotrail",
    r"\breaver\b",
    r"[<>]",
];

/// Link-preview fetchers, by the app whose link card they draw: (lower-case needle, app).
/// Apple's iMessage announces itself as Facebook's and X's fetchers at once, and LINE's card
/// fetcher as Facebook's (`facebookexternalhit/1.1;line-poker/1.0`): they come first.
const PREVIEWERS: &[(&str, &str)] = &[
    ("facebot twitterbot", "imessage"),
    ("line-poker", "line"),
    ("facebookexternalhit", "facebook"),
    ("facebot", "facebook"),
    ("meta-externalfetcher", "facebook"),
    ("facebookcatalog", "facebook"),
    ("telegrambot", "telegram"),
    ("twitterbot", "x"),
    ("slackbot", "slack"),
    ("slack-imgproxy", "slack"),
    ("whatsapp", "whatsapp"),
    ("discordbot", "discord"),
    ("linkedinbot", "linkedin"),
    ("skypeuripreview", "skype"),
    ("pinterestbot", "pinterest"),
    ("redditbot", "reddit"),
    ("kakaotalk-scrap", "kakaotalk"),
    ("snap url preview", "snapchat"),
    ("bingpreview", "microsoft"),
    ("microsoftpreview", "microsoft"),
    ("cardyb", "bluesky"),
    ("mastodon", "mastodon"),
    ("vkshare", "vk"),
    ("iframely", "iframely"),
    ("embedly", "embedly"),
    ("chatwork", "chatwork"),
    ("valve/steam", "steam"),
    ("discourse", "discourse"),
    ("tumblr/", "tumblr"),
    ("viber/", "viber"),
    ("viberurldownloader", "viber"),
    ("facebookexternalua", "facebook"),
    ("facebookscraper", "facebook"),
];

/// The app whose link preview this fetch is for, if it is one. Checked on user agents that
/// are not in-app browsers (an app's web view is a person, its previewer a fetcher).
pub fn preview_app(ua_lower: &str) -> Option<&'static str> {
    PREVIEWERS
        .iter()
        .find(|(needle, _)| ua_lower.contains(needle))
        .map(|(_, app)| *app)
}

/// True when the vendored list (or kolink's additions) names this user agent.
pub fn listed(ua: &str) -> bool {
    let l = list();
    l.plain.is_match(ua.as_bytes()) || l.fancy.iter().any(|r| r.is_match(ua).unwrap_or(false))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn javascript_leniencies_are_translated() {
        assert_eq!(from_javascript(r"[\w\d-.]+"), r"[\w\d\-.]+");
        assert_eq!(from_javascript(r"a\\-b"), r"a\\-b");
    }

    #[test]
    fn the_vendored_list_compiles_whole() {
        let file: serde_json::Value = serde_json::from_str(include_str!("isbot-patterns.json")).unwrap();
        assert!(file["patterns"].as_array().unwrap().len() > 100);
        assert!(file["version"].is_string() && file["license"] == "Unlicense");
        assert!(listed("Googlebot/2.1 (+http://www.google.com/bot.html)"));
        assert!(!listed(
            "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36"
        ));
    }

    #[test]
    fn the_list_matches_ascii_tokens_in_any_case_beside_other_bytes() {
        // Case is ASCII's, and a name next to non-ASCII text (a user agent read lossily) is
        // still found.
        assert!(listed("GOOGLEBOT/2.1 (+http://www.google.com/bot.html)"));
        assert!(listed("Mozilla/5.0 (compatible; bingbot/2.0) \u{fffd}\u{fffd} 測試"));
        assert!(!listed(
            "Mozilla/5.0 (iPhone; CPU iPhone OS 17_1 like Mac OS X) 測試 Mobile/15E148"
        ));
    }
}
