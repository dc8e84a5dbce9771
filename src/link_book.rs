//! The link book: where every link goes, copied to this process's local disk, for a store on
//! Redis. A redirect needs the link's record before it can answer; the link cache
//! (`crate::cache`) keeps the links this process has followed, so that a Redis outage does not
//! break them, but a link never followed here (minted on another process, tapped for the
//! first time during the outage, or pushed out of the cache) could only be answered `503`.
//! With the book, the cache answers such a code from disk while Redis does not answer, and its
//! click goes to the spool like any other (API.md: "a store outage never breaks a KOL's link").
//!
//! `keep` copies every link into the book at start, and whenever the store's links change
//! (`Store::links_version`, checked every `CHECK_EVERY`) only the links created or changed since
//! the last copy: the store numbers each change of links and keeps the latest
//! (`Store::link_changes`). Every link is read again when that cannot be trusted: more than
//! `PAGE` changed, changes older than the book's were let go, the store's count went back (a
//! restore), the version moved without a numbered change or the book then holds another number
//! of links than the store (a process of an older version, which numbers nothing, changed or
//! minted links), and at least every `WHOLE_EVERY`. A copy waits at least twenty times as long
//! as the last one took, so that a store of many links is not read whole over and over. A
//! change made since the last check (`CHECK_EVERY`, or that wait after a whole copy) before an
//! outage is not in the book: a link stopped then may still redirect during the outage, and
//! one minted then is `503`. Rows are only rewritten
//! when they changed, and a whole copy removes the codes the store no longer has. The book
//! belongs to one store: it is emptied when opened for another (a flushed or restored Redis,
//! another URL or key prefix), so that it never sends anyone where no link of the store goes.
//!
//! The book also keeps what a start reads of the store (`StartSecrets`: the admin token's hash,
//! the visitor-hash and session keys), so that a process restarted while Redis does not answer
//! starts from the book (`startup`) rather than not at all.
//!
//! The book is a cache: it holds nothing that is not in the store, and a book that cannot be
//! opened (a full or read-only disk) leaves kolink without it, as before, and says so.
//! `<spool dir>/links.redb` (the spool's directory, the process's own), 350–700 bytes a link,
//! with a page cache of `CACHE_BYTES`.

use std::collections::HashSet;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use redb::{ReadableDatabase, ReadableTable, ReadableTableMetadata, TableDefinition};

use crate::domain::{Link, Redirect};
use crate::store::{LinkChanges, LinkIndex, LinkRows, Store};
use crate::telemetry::{BookCopy, BookCopyLabel, Meters};

/// Code → `Redirect` as JSON.
const REDIRECTS: TableDefinition<&str, &[u8]> = TableDefinition::new("redirects");
/// `store` → the id of the store the book copies (`Store::init_secret("link_book_store")`).
const META: TableDefinition<&str, &str> = TableDefinition::new("meta");
/// The book's page cache: lookups happen only while the store does not answer.
const CACHE_BYTES: usize = 2 << 20;
/// How often the store's links version is read.
const CHECK_EVERY: Duration = Duration::from_secs(5);
/// Links read from the store a page, and the most changes read instead of every link.
const PAGE: usize = 1000;
/// A whole copy at least this often, whatever the changes say: a process of an older version
/// (a rolling upgrade) changes links without numbering the change.
const WHOLE_EVERY: Duration = Duration::from_secs(3600);
/// How long opening waits for the file's lock: a server stopped in this process (a restart in
/// place, tests) may still be letting go of it (as the spool's).
const LOCK_WAIT: Duration = Duration::from_secs(2);

pub struct LinkBook {
    db: redb::Database,
    meters: BookMeters,
}

/// The book's `/metrics`.
#[derive(Clone, Default)]
pub struct BookMeters {
    /// Reads of the book because the store did not answer (a link read goes into the link
    /// cache: a few reads per link and outage, not one per redirect).
    answered: Counter,
    /// Links in the book after its last copy (`kolink_link_book_links`).
    size: Gauge,
    /// Copies, whole or of the changes.
    copies: Family<BookCopyLabel, Counter>,
}

impl From<&Meters> for BookMeters {
    fn from(m: &Meters) -> Self {
        Self {
            answered: m.link_book_answers.clone(),
            size: m.link_book_links.clone(),
            copies: m.link_book_copies.clone(),
        }
    }
}

/// What a write of links into the book ends.
enum Written<'a> {
    /// A page of a whole copy, more to come: not yet durable.
    Page,
    /// The links changed since the last copy: durable.
    Changes,
    /// The last page of a whole copy, which read every code in `seen`: durable, and the codes
    /// it did not read are removed.
    Whole { seen: &'a HashSet<String> },
}

impl LinkBook {
    /// Opens (or creates) `<dir>/links.redb`, readable by kolink's user alone, for the store
    /// whose id is `store`: a book of another store is emptied. Blocking.
    pub fn open(dir: &Path, store: &str, meters: BookMeters) -> anyhow::Result<Self> {
        let path = dir.join("links.redb");
        let failed = || format!("Failed to open the link book {}", path.display());
        let book = Self {
            db: open_db(&path)?,
            meters,
        };
        book.belong_to(store).with_context(failed)?;
        Ok(book)
    }

    /// Makes the book one of the store whose id is `store`: a book of another store is emptied
    /// (its links and the secrets it keeps). Blocking.
    pub fn belong_to(&self, store: &str) -> anyhow::Result<()> {
        let w = self.db.begin_write()?;
        {
            let mut meta = w.open_table(META)?;
            let same = meta.get("store")?.is_some_and(|v| v.value() == store);
            if !same {
                w.delete_table(REDIRECTS)?;
                for name in SECRETS {
                    meta.remove(format!("secret:{name}").as_str())?;
                }
                meta.insert("store", store)?;
            }
            let n = w.open_table(REDIRECTS)?.len()?;
            self.meters.size.set(i64::try_from(n).unwrap_or(i64::MAX));
        }
        w.commit()?;
        Ok(())
    }

    /// The id of the store the book was last made one of ("" for none).
    pub fn store_id(&self) -> String {
        let read = || -> anyhow::Result<String> {
            let r = self.db.begin_read()?;
            let meta = r.open_table(META)?;
            Ok(meta.get("store")?.map(|v| v.value().to_owned()).unwrap_or_default())
        };
        read().unwrap_or_default()
    }

    /// How many links the book holds.
    pub fn links(&self) -> u64 {
        let read = || -> anyhow::Result<u64> { Ok(self.db.begin_read()?.open_table(REDIRECTS)?.len()?) };
        read().unwrap_or(0)
    }

    /// Opens the book as it was left, for the store it was last opened for (which is not asked:
    /// it does not answer), with what a start needs that it keeps (`keep_secrets`); `None`
    /// when there is no book, or it keeps none. Blocking.
    pub fn open_offline(dir: &Path, meters: BookMeters) -> anyhow::Result<Option<(Self, StartSecrets)>> {
        let path = dir.join("links.redb");
        if !path.exists() {
            return Ok(None);
        }
        let db = open_db(&path)?;
        let secrets = {
            let read = db.begin_read()?;
            let meta = match read.open_table(META) {
                Ok(meta) => meta,
                Err(redb::TableError::TableDoesNotExist(_)) => return Ok(None),
                Err(e) => return Err(e.into()),
            };
            let kept = |name: &str| -> anyhow::Result<Option<String>> {
                Ok(meta
                    .get(format!("secret:{name}").as_str())?
                    .map(|v| v.value().to_owned()))
            };
            let (Some(admin_token_sha256), Some(visitor_key), Some(session_key)) =
                (kept(SECRETS[0])?, kept(SECRETS[1])?, kept(SECRETS[2])?)
            else {
                return Ok(None);
            };
            let links = match read.open_table(REDIRECTS) {
                Ok(t) => t.len()?,
                Err(_) => 0,
            };
            meters.size.set(i64::try_from(links).unwrap_or(i64::MAX));
            StartSecrets {
                admin_token_sha256,
                visitor_key,
                session_key,
            }
        };
        Ok(Some((Self { db, meters }, secrets)))
    }

    /// Keeps what a start needs of the store in the book, for a start while the store does not
    /// answer (`open_offline`). Blocking.
    pub fn keep_secrets(&self, secrets: &StartSecrets) -> anyhow::Result<()> {
        let w = self.db.begin_write()?;
        {
            let mut meta = w.open_table(META)?;
            for (name, value) in
                SECRETS
                    .iter()
                    .zip([&secrets.admin_token_sha256, &secrets.visitor_key, &secrets.session_key])
            {
                meta.insert(format!("secret:{name}").as_str(), value.as_str())?;
            }
        }
        w.commit()?;
        Ok(())
    }
}

/// What a process needs of its store to start (the stored secrets, `Store::init_secret`), kept
/// in the book: a process restarted while Redis does not answer starts from the book
/// (`startup`), its links redirecting and their clicks spooled, rather than not at all.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StartSecrets {
    pub admin_token_sha256: String,
    pub visitor_key: String,
    pub session_key: String,
}

/// The names of `StartSecrets`, as the store and the book keep them.
const SECRETS: [&str; 3] = ["admin_token_sha256", "visitor_key", "session_key"];

/// The book's database at `path`, readable by kolink's user alone (created if missing),
/// waiting `LOCK_WAIT` for a process letting go of it. Blocking.
fn open_db(path: &Path) -> anyhow::Result<redb::Database> {
    let failed = || format!("Failed to open the link book {}", path.display());
    let until = Instant::now() + LOCK_WAIT;
    loop {
        let file = std::os::unix::fs::OpenOptionsExt::mode(&mut std::fs::OpenOptions::new(), 0o600)
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(path)
            .with_context(failed)?;
        let opened = redb::backends::FileBackend::new(file).and_then(|backend| {
            redb::Database::builder()
                .set_cache_size(CACHE_BYTES)
                .create_with_backend(backend)
        });
        match opened {
            Err(redb::DatabaseError::DatabaseAlreadyOpen) if Instant::now() < until => {
                std::thread::sleep(Duration::from_millis(20));
            }
            other => return other.with_context(failed),
        }
    }
}

impl LinkBook {
    /// Where `code` goes, as last copied. Blocking.
    pub fn get(&self, code: &str) -> anyhow::Result<Option<Redirect>> {
        let read = self.db.begin_read().context("Failed to read the link book")?;
        let t = read.open_table(REDIRECTS).context("Failed to read the link book")?;
        let Some(bytes) = t.get(code).context("Failed to read the link book")? else {
            return Ok(None);
        };
        let link: Redirect = serde_json::from_slice(bytes.value()).context("Failed to read a link of the link book")?;
        self.meters.answered.inc();
        Ok(Some(link))
    }

    /// Writes `links` where they changed (see `Written`), and returns how many rows changed
    /// and how many links the book then holds. Blocking.
    fn write(&self, links: &[Redirect], written: Written) -> anyhow::Result<(usize, u64)> {
        let mut w = self.db.begin_write()?;
        w.set_durability(match written {
            Written::Page => redb::Durability::None,
            Written::Changes | Written::Whole { .. } => redb::Durability::Immediate,
        })?;
        let mut changed = 0;
        let held;
        {
            let mut t = w.open_table(REDIRECTS)?;
            for l in links {
                let row = serde_json::to_vec(l)?;
                let same = t.get(l.code.as_str())?.is_some_and(|old| old.value() == row.as_slice());
                if !same {
                    t.insert(l.code.as_str(), row.as_slice())?;
                    changed += 1;
                }
            }
            if let Written::Whole { seen } = written {
                let mut gone = Vec::new();
                for row in t.iter()? {
                    let code = row?.0.value().to_owned();
                    if !seen.contains(&code) {
                        gone.push(code);
                    }
                }
                for code in &gone {
                    t.remove(code.as_str())?;
                }
                changed += gone.len();
            }
            held = t.len()?;
        }
        w.commit()?;
        if !matches!(written, Written::Page) {
            self.meters.size.set(i64::try_from(held).unwrap_or(i64::MAX));
        }
        Ok((changed, held))
    }
}

/// Keeps `book` a copy of the store's links (see the module doc); runs until aborted.
pub async fn keep(book: Arc<LinkBook>, store: Arc<dyn Store>) {
    // The links version the book holds, the store's change number it holds (where the store
    // numbers them), and when it was last copied whole.
    let (mut copied, mut changes, mut whole_at) = (None::<u64>, None::<u64>, None::<Instant>);
    let mut wait = CHECK_EVERY;
    loop {
        match store.links_version().await {
            Ok(None) => return,
            Ok(Some(version)) => {
                let whole_due = whole_at.is_none_or(|t| t.elapsed() >= WHOLE_EVERY);
                if copied != Some(version) || whole_due {
                    let started = Instant::now();
                    match bring_up_to_date(&book, store.as_ref(), changes.filter(|_| !whole_due)).await {
                        Ok(done) => {
                            copied = Some(version);
                            changes = done.seq;
                            if done.kind == BookCopy::whole {
                                whole_at = Some(started);
                            }
                            book.meters
                                .copies
                                .get_or_create(&BookCopyLabel { kind: done.kind })
                                .inc();
                            wait = CHECK_EVERY.max(started.elapsed() * 20);
                            tracing::debug!(kind = ?done.kind, links = done.links, changed = done.changed, took = ?started.elapsed(), "link book copied");
                        }
                        Err(e) => crate::telemetry::warn_limited!(error = %format!("{e:#}"), "link book not copied"),
                    }
                }
            }
            // The store does not answer: the book stays as it is, and is what answers.
            Err(_) => {}
        }
        tokio::time::sleep(wait).await;
    }
}

/// A copy done: which kind, how many links it read, how many rows changed, and the store's
/// change number the book now holds.
struct Copied {
    kind: BookCopy,
    links: usize,
    changed: usize,
    seq: Option<u64>,
}

/// The links changed since change `after`, when the store can say which and they are few;
/// else every link. The changes are enough only if the book then holds as many links as the
/// store: a link minted by a process of an older version, which numbers no changes, is found
/// that way, and one such a process changed waits for the next whole copy (`WHOLE_EVERY`).
async fn bring_up_to_date(book: &Arc<LinkBook>, store: &dyn Store, after: Option<u64>) -> anyhow::Result<Copied> {
    if let Some(after) = after {
        let read = store
            .link_changes(Some(after), PAGE)
            .await
            .context("Failed to read the links' changes for the link book")?;
        // No numbered change, though the version moved: a change only a whole copy sees.
        if let Some(LinkChanges {
            seq,
            links,
            records: Some(records),
        }) = read.filter(|c| c.seq > after)
        {
            let page = decode(&records);
            let b = book.clone();
            let (changed, held) = tokio::task::spawn_blocking(move || b.write(&page, Written::Changes))
                .await?
                .context("Failed to write the link book")?;
            if held == links {
                return Ok(Copied {
                    kind: BookCopy::changes,
                    links: records.len(),
                    changed,
                    seq: Some(seq),
                });
            }
            tracing::debug!(
                held,
                links,
                "the link book holds another number of links than the store: copied whole"
            );
        }
    }
    // Read before the copy: a change made during it is read again by the next.
    let seq = store
        .link_changes(None, 0)
        .await
        .context("Failed to read the links' changes for the link book")?
        .map(|c| c.seq);
    let (links, changed) = copy(book, store).await?;
    Ok(Copied {
        kind: BookCopy::whole,
        links,
        changed,
        seq,
    })
}

/// The links of `rows` (JSON records), less those that do not decode (a record a newer
/// version wrote?), which are logged: no worse than no book for them.
fn decode(rows: &[String]) -> Vec<Redirect> {
    let mut unread = 0;
    let links = rows
        .iter()
        .filter_map(|r| match serde_json::from_str::<Link>(r) {
            Ok(l) => Some(Redirect::from(l)),
            Err(_) => {
                unread += 1;
                None
            }
        })
        .collect();
    if unread > 0 {
        tracing::warn!(links = unread, "links the link book could not read were left out of it");
    }
    links
}

/// Every link of the store into the book, a page at a time: how many links, and how many rows
/// changed.
async fn copy(book: &Arc<LinkBook>, store: &dyn Store) -> anyhow::Result<(usize, usize)> {
    let (mut after, mut changed) = (None, 0);
    let mut seen = HashSet::new();
    loop {
        let (rows, next) = store
            .link_rows(LinkIndex::All, LinkRows::Records, after, PAGE)
            .await
            .context("Failed to read the links for the link book")?;
        let page = decode(&rows);
        seen.extend(page.iter().map(|l| l.code.as_str().to_owned()));
        let b = book.clone();
        let Some(n) = next else {
            // A whole copy drops the codes the store no longer has: only once the store is
            // found to be the one the process started with (a Redis flushed or restarted
            // without its data, in the moment before the process noticed, would have emptied
            // the book it then redirects from).
            store
                .confirm_identity()
                .await
                .context("The link book is not copied whole from a store not known to be this process's")?;
            let links = seen.len();
            changed += tokio::task::spawn_blocking(move || b.write(&page, Written::Whole { seen: &seen }))
                .await?
                .context("Failed to write the link book")?
                .0;
            return Ok((links, changed));
        };
        changed += tokio::task::spawn_blocking(move || b.write(&page, Written::Page))
            .await?
            .context("Failed to write the link book")?
            .0;
        after = Some(n);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{LinkStatus, ShortCode};

    fn link(code: &str, target: &str) -> Redirect {
        Redirect {
            id: 7,
            code: ShortCode::stored(code).unwrap(),
            target_url: target.into(),
            status: LinkStatus::Active,
            expires_at: None,
        }
    }

    fn open(dir: &Path, store: &str) -> LinkBook {
        LinkBook::open(dir, store, BookMeters::default()).unwrap()
    }

    #[test]
    fn a_book_opened_for_another_store_is_empty() {
        let dir = tempfile::tempdir().unwrap();
        let book = open(dir.path(), "store-a");
        let links = [link("amy-serum", "https://shop.example.com/a")];
        book.write(
            &links,
            Written::Whole {
                seen: &HashSet::from(["amy-serum".to_owned()]),
            },
        )
        .unwrap();
        drop(book);
        assert_eq!(
            open(dir.path(), "store-a").get("amy-serum").unwrap(),
            Some(links[0].clone())
        );
        let other = open(dir.path(), "store-b");
        assert_eq!(other.get("amy-serum").unwrap(), None);
        assert_eq!(other.meters.size.get(), 0);
    }

    #[test]
    fn a_book_keeps_what_a_start_needs_for_its_store_alone() {
        let dir = tempfile::tempdir().unwrap();
        assert!(LinkBook::open_offline(dir.path(), BookMeters::default())
            .unwrap()
            .is_none());
        let secrets = StartSecrets {
            admin_token_sha256: "ab".repeat(32),
            visitor_key: "visitor".into(),
            session_key: "session".into(),
        };
        let book = open(dir.path(), "store-a");
        book.write(
            &[link("amy-serum", "https://a.example/")],
            Written::Whole {
                seen: &HashSet::from(["amy-serum".to_owned()]),
            },
        )
        .unwrap();
        book.keep_secrets(&secrets).unwrap();
        drop(book);
        let (book, kept) = LinkBook::open_offline(dir.path(), BookMeters::default())
            .unwrap()
            .expect("the secrets kept");
        assert_eq!(
            (kept, book.store_id(), book.links()),
            (secrets, "store-a".to_owned(), 1)
        );
        // Made another store's, the book forgets them with its links.
        book.belong_to("store-b").unwrap();
        drop(book);
        assert!(LinkBook::open_offline(dir.path(), BookMeters::default())
            .unwrap()
            .is_none());
    }

    #[test]
    fn a_whole_copy_removes_the_codes_the_store_no_longer_has_and_rewrites_only_changes() {
        let dir = tempfile::tempdir().unwrap();
        let book = open(dir.path(), "store-a");
        let seen = |codes: &[&str]| codes.iter().map(|c| c.to_string()).collect::<HashSet<_>>();
        let (a, b) = (
            link("amy-serum", "https://a.example/"),
            link("ben-1", "https://b.example/"),
        );
        assert_eq!(book.write(std::slice::from_ref(&a), Written::Page).unwrap(), (1, 1));
        assert_eq!(
            book.write(
                std::slice::from_ref(&b),
                Written::Whole {
                    seen: &seen(&["amy-serum", "ben-1"])
                }
            )
            .unwrap(),
            (1, 2)
        );
        assert_eq!(book.meters.size.get(), 2);
        // The next copy: amy's link unchanged, ben's gone from the store.
        assert_eq!(
            book.write(
                std::slice::from_ref(&a),
                Written::Whole {
                    seen: &seen(&["amy-serum"])
                }
            )
            .unwrap(),
            (1, 1)
        );
        assert_eq!(
            (book.get("amy-serum").unwrap(), book.get("ben-1").unwrap()),
            (Some(a), None)
        );
        assert_eq!(book.meters.size.get(), 1);
    }
}
