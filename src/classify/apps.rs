//! In-app browsers: the web views of Instagram, Facebook, LINE, WeChat … — people, always.
//! This list is the allow-list that no bot pattern overrides (the upstream bot list alone
//! would drop some web views), and it names the app for the `app` breakdown.

/// (needle, app), first match wins: Messenger and Threads before Facebook and Instagram.
const APPS: &[(&str, &str)] = &[
    ("FBAN/Messenger", "messenger"),
    ("FB_IAB/Orca-Android", "messenger"),
    ("FB_IAB/MESSENGER", "messenger"),
    ("Barcelona ", "threads"),
    ("Instagram ", "instagram"),
    ("FBAN/", "facebook"),
    ("FB_IAB/", "facebook"),
    ("FBAV/", "facebook"),
    ("MetaIAB Facebook", "facebook"),
    ("musical_ly", "tiktok"),
    ("BytedanceWebview", "tiktok"),
    ("trill_", "tiktok"),
    ("TikTok", "tiktok"),
    ("TwitterAndroid", "x"),
    ("Twitter for", "x"),
    ("MicroMessenger/", "wechat"),
    ("KAKAOTALK", "kakaotalk"),
    ("Snapchat/", "snapchat"),
    ("[Pinterest/", "pinterest"),
    ("Pinterest for", "pinterest"),
    ("__weibo__", "weibo"),
    ("Weibo (", "weibo"),
    ("DingTalk/", "dingtalk"),
    ("NAVER(inapp", "naver"),
    ("baiduboxapp/", "baidu"),
    ("BaiduBoxApp/", "baidu"),
    ("GSA/", "google"),
    ("GoogleApp/", "google"),
    ("LinkedInApp", "linkedin"),
    ("Viber", "viber"),
    ("AppleNews/", "applenews"),
];

/// Browsers and apps' web views that a broad bot pattern would name (Sogou's mobile browser
/// and search app, against `sogou`; Google Maps on iOS, against `google`; Roblox, whose web
/// view names the Play Store).
const BROWSERS: &[&str] = &["SogouMobileBrowser/", "SogouSearch", "GmmClient:", "RobloxApp/"];

/// True for a known people's browser that the bot list must not override.
pub fn is_known_browser(ua: &str) -> bool {
    BROWSERS.iter().any(|b| ua.contains(b))
}

/// The in-app browser a user agent comes from, if any.
pub fn in_app(ua: &str) -> Option<&'static str> {
    if let Some((_, app)) = APPS.iter().find(|(needle, _)| ua.contains(needle)) {
        return Some(app);
    }
    // Forms with a version that a plain needle would over-match.
    if has_token(ua, "Line/") || has_token(ua, "LINE/") {
        return Some("line");
    }
    if has_token(ua, "QQ/") && (ua.contains("_SQ_") || ua.contains("QQTheme")) {
        return Some("qq");
    }
    // Snapchat's Android web view writes its version right after the name (`Snapchat12.54.0`).
    if ua
        .match_indices("Snapchat")
        .any(|(i, n)| ua[i + n.len()..].bytes().next().is_some_and(|b| b.is_ascii_digit()))
    {
        return Some("snapchat");
    }
    // Apple News's older form on iOS: ` News/3280 Version/2.0`.
    if (ua.contains("(iPhone") || ua.contains("(iPad")) && has_token(ua, "News/") {
        return Some("applenews");
    }
    None
}

/// `token` followed by a digit, at the start or after a space.
fn has_token(ua: &str, token: &str) -> bool {
    ua.match_indices(token).any(|(i, _)| {
        (i == 0 || ua.as_bytes()[i - 1] == b' ')
            && ua[i + token.len()..].bytes().next().is_some_and(|b| b.is_ascii_digit())
    })
}

/// True for what a web view sends: a browser-like user agent (or Facebook's Android form,
/// which starts with its bracketed app tokens).
pub fn is_web_view(ua: &str) -> bool {
    ua.starts_with("Mozilla/5.0 (") || ua.starts_with("[FBAN/") || ua.starts_with("[FB_IAB/")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messenger_and_threads_are_not_folded_into_facebook_and_instagram() {
        assert_eq!(
            in_app("Mozilla/5.0 (iPhone) [FBAN/MessengerForiOS;FBAV/450.0]"),
            Some("messenger")
        );
        assert_eq!(
            in_app("Mozilla/5.0 (Linux) [FB_IAB/Orca-Android;FBAV/450.0;]"),
            Some("messenger")
        );
        assert_eq!(
            in_app("Mozilla/5.0 (iPhone) Barcelona 309.1.0.41.113 (iPhone15,3)"),
            Some("threads")
        );
        assert_eq!(
            in_app("Mozilla/5.0 (Linux) [FB_IAB/FB4A;FBAV/450.0;]"),
            Some("facebook")
        );
    }

    #[test]
    fn qq_the_app_is_not_qq_the_browser() {
        assert_eq!(
            in_app("Mozilla/5.0 (iPhone) QQ/9.0.30.612 V1_IPH_SQ_9.0.30_1_APP_A"),
            Some("qq")
        );
        assert_eq!(in_app("Mozilla/5.0 (Linux) MQQBrowser/6.0 Mobile Safari/537.36"), None);
        assert_eq!(in_app("Mozilla/5.0 (Linux) Safari Line/13.20.0"), Some("line"));
        assert_eq!(in_app("Mozilla/5.0 (X11) Chrome/120 Safari/537.36 Pipeline/2"), None);
    }
}
