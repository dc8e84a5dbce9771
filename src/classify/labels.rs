//! Browser and OS labels, from the ua-parser project's regexes (uap-core, Apache-2.0),
//! vendored as JSON in `uap-regexes.json` with their version; `scripts/refresh-bot-patterns`
//! refreshes them with the bot list.
//!
//! Why: on the people and in-app web views of the evaluation set (1,100 user agents), the two
//! parsers disagreed on the OS family of 153; in every disagreement inspected by hand uap-core
//! was right where woothee was not (Windows NT 5.2 and 10.0.x builds left as "other", iPhone
//! agents of MQQBrowser read as Mac OS X, Chrome and Edge on iPad read as Mac), the rest being
//! naming (Ubuntu vs Linux). The OS is reported by family: iOS, Android, Windows, macOS,
//! Linux (every distribution), Chrome OS, and the others by uap-core's name.

use std::sync::OnceLock;

struct Labels {
    browsers: ua_parser::user_agent::Extractor<'static>,
    oses: ua_parser::os::Extractor<'static>,
}

fn labels() -> &'static Labels {
    static LABELS: OnceLock<Labels> = OnceLock::new();
    LABELS.get_or_init(|| {
        let regexes: ua_parser::Regexes<'static> =
            serde_json::from_str(include_str!("uap-regexes.json")).expect("the vendored uap-core regexes are JSON");
        Labels {
            browsers: ua_parser::user_agent::Builder::new()
                .push_all(regexes.user_agent_parsers)
                .expect("the uap-core browser regexes parse")
                .build()
                .expect("the uap-core browser regexes compile"),
            oses: ua_parser::os::Builder::new()
                .push_all(regexes.os_parsers)
                .expect("the uap-core OS regexes parse")
                .build()
                .expect("the uap-core OS regexes compile"),
        }
    })
}

/// Compiles the regexes now rather than on the first click.
pub fn warm() {
    labels();
}

/// The browser family; `None` when uap-core does not know it.
pub fn browser(ua: &str) -> Option<String> {
    let family = labels().browsers.extract(ua)?.family;
    (family != "Other").then(|| family.into_owned())
}

/// The OS family, as kolink reports it; `None` when uap-core does not know it.
pub fn os(ua: &str) -> Option<String> {
    let name = labels().oses.extract(ua)?.os;
    let family = match name.as_ref() {
        "Other" => return None,
        "Mac OS X" | "Mac OS" => "macOS",
        "Chrome OS" => "Chrome OS",
        "Ubuntu" | "Debian" | "Fedora" | "SUSE" | "Gentoo" | "CentOS" | "Red Hat" | "Mint" | "Slackware"
        | "Mandriva" | "Arch Linux" | "Linux" => "Linux",
        n if n.starts_with("Windows") => "Windows",
        n => return Some(n.to_owned()),
    };
    Some(family.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn oses_and_browsers_come_as_families() {
        let xp = "Mozilla/5.0 (Windows; U; Windows NT 5.2; zh-TW; rv:1.9.2.8) Gecko/20100722 Firefox/3.6.8";
        assert_eq!(os(xp).as_deref(), Some("Windows"));
        assert_eq!(browser(xp).as_deref(), Some("Firefox"));
        let ipad_chrome = "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_13_5) AppleWebKit/605.1.15 (KHTML, like Gecko) CriOS/102 Version/11.1.1 Safari/605.1.15";
        assert_eq!(os(ipad_chrome).as_deref(), Some("iOS"));
        let ubuntu = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Ubuntu Chromium/65.0 Chrome/65.0 Safari/537.36";
        assert_eq!(os(ubuntu).as_deref(), Some("Linux"));
        assert_eq!(os("not a browser"), None);
    }
}
