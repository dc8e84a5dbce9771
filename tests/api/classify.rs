//! Classification measured on the labelled evaluation set in `tests/fixtures/user-agents`
//! (sources and licences in its SOURCES.md): crawlers and previewers caught, people kept, every
//! in-app web view kept and its app named.

use kolink::classify::classify_agent;

struct Row<'a> {
    label: &'a str,
    app: &'a str,
    ua: &'a str,
}

fn rows(text: &str) -> Vec<Row<'_>> {
    text.lines()
        .filter(|l| !l.is_empty())
        .map(|l| {
            let mut f = l.splitn(4, '\t');
            let (label, app, _source, ua) = (
                f.next().unwrap(),
                f.next().unwrap(),
                f.next().unwrap(),
                f.next().unwrap(),
            );
            Row { label, app, ua }
        })
        .collect()
}

fn share(n: usize, of: usize) -> f64 {
    n as f64 / of as f64
}

#[test]
fn the_evaluation_set_is_classified_within_the_targets() {
    let text = include_str!("../fixtures/user-agents/labelled.tsv");
    let rows = rows(text);
    let of = |label: &str| rows.iter().filter(|r| r.label == label).collect::<Vec<_>>();
    let (people, inapp) = (of("person"), of("inapp"));
    let fetchers: Vec<&Row> = rows
        .iter()
        .filter(|r| r.label == "crawler" || r.label == "preview")
        .collect();
    assert!(
        people.len() > 900 && inapp.len() > 150 && fetchers.len() > 3000,
        "the set is whole"
    );

    let missed: Vec<&str> = fetchers
        .iter()
        .filter(|r| !classify_agent(r.ua).bot)
        .map(|r| r.ua)
        .collect();
    let flagged: Vec<&str> = people
        .iter()
        .filter(|r| classify_agent(r.ua).bot)
        .map(|r| r.ua)
        .collect();
    let inapp_flagged: Vec<&str> = inapp
        .iter()
        .filter(|r| classify_agent(r.ua).bot)
        .map(|r| r.ua)
        .collect();
    let misnamed: Vec<String> = inapp
        .iter()
        .filter_map(|r| {
            let got = classify_agent(r.ua).app.unwrap_or("-");
            (got != r.app).then(|| format!("{} named {got}: {}", r.app, r.ua))
        })
        .collect();
    let caught = 1.0 - share(missed.len(), fetchers.len());
    let people_flagged = share(flagged.len(), people.len());
    let named = 1.0 - share(misnamed.len(), inapp.len());
    println!(
        "fetchers caught {:.2} % ({} of {}), people flagged {:.3} % ({} of {}), in-app flagged {} of {}, apps named {:.1} %",
        caught * 100.0,
        fetchers.len() - missed.len(),
        fetchers.len(),
        people_flagged * 100.0,
        flagged.len(),
        people.len(),
        inapp_flagged.len(),
        inapp.len(),
        named * 100.0
    );
    assert!(
        caught >= 0.97,
        "{:.2} % caught; missed e.g. {:#?}",
        caught * 100.0,
        &missed[..missed.len().min(40)]
    );
    assert!(
        people_flagged <= 0.002,
        "{} people flagged: {flagged:#?}",
        flagged.len()
    );
    assert!(inapp_flagged.is_empty(), "in-app web views flagged: {inapp_flagged:#?}");
    assert!(named >= 0.95, "{:.1} % named; {misnamed:#?}", named * 100.0);
}

#[test]
fn previews_are_named_by_their_app() {
    let text = include_str!("../fixtures/user-agents/labelled.tsv");
    let previews: Vec<Row> = rows(text).into_iter().filter(|r| r.label == "preview").collect();
    let wrong: Vec<String> = previews
        .iter()
        .filter_map(|r| {
            let a = classify_agent(r.ua);
            (!a.bot || a.preview != Some(r.app)).then(|| format!("{} as {:?}: {}", r.app, a.preview, r.ua))
        })
        .collect();
    assert!(wrong.is_empty(), "{wrong:#?}");
}

#[test]
fn non_ascii_user_agents_are_people() {
    for ua in [
        "Mozilla/5.0 (Linux; Android 13; Xiaomi 红米 Note 12) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0 Mobile Safari/537.36",
        "Mozilla/5.0 (iPhone; CPU iPhone OS 17_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.1 Mobile/15E148 Safari/604.1 Ünïcode",
    ] {
        assert!(!classify_agent(ua).bot, "{ua}");
    }
}
