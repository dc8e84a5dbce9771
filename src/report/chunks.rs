//! The links a report counts, in pages as a list is read (`lookup::all_links_as_read`), cut
//! into chunks of at most `CHUNK` links: one store call each.

use std::ops::Range;
use std::sync::Arc;

use tokio::sync::mpsc;

use crate::domain::LinkSummary;
use crate::lookup::LIST_PAGE;

/// Links read per store call by reports: what a report over a big campaign holds at once.
pub(super) const CHUNK: usize = 1_000;

// A page of a list read whole is whole chunks.
const _: () = assert!(LIST_PAGE.is_multiple_of(CHUNK));

/// A list's pages of links, as they are read or all at once ([`pages_of`]).
pub(super) type Pages = mpsc::UnboundedReceiver<Arc<[LinkSummary]>>;

/// Pages all in hand (a list read whole).
pub(super) fn pages_of(pages: &[Arc<[LinkSummary]>]) -> Pages {
    let (tx, rx) = mpsc::unbounded_channel();
    for page in pages {
        let _ = tx.send(page.clone());
    }
    rx
}

/// Pages cut into chunks of `CHUNK` links at most, a page's rest being a chunk of its own.
pub(super) struct Chunks {
    pages: Pages,
    page: Arc<[LinkSummary]>,
    at: usize,
}

/// Links `range` of `page`.
pub(super) struct Chunk {
    page: Arc<[LinkSummary]>,
    range: Range<usize>,
}

impl Chunk {
    pub(super) fn links(&self) -> &[LinkSummary] {
        &self.page[self.range.clone()]
    }
}

impl Chunks {
    pub(super) fn new(pages: Pages) -> Self {
        Self {
            pages,
            page: Arc::from([]),
            at: 0,
        }
    }

    /// The next chunk; waits for the next page when this one is done. `None` once the pages'
    /// sender is gone and every page is cut.
    pub(super) async fn next(&mut self) -> Option<Chunk> {
        while self.at == self.page.len() {
            self.page = self.pages.recv().await?;
            self.at = 0;
        }
        let start = self.at;
        self.at = (start + CHUNK).min(self.page.len());
        Some(Chunk {
            page: self.page.clone(),
            range: start..self.at,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn page(first: usize, n: usize) -> Arc<[LinkSummary]> {
        (first..first + n)
            .map(|i| {
                let json = format!(
                    r#"{{"code":"l-{i:05}","campaign":"c","kol":"k","cost":"1.00","created_at":"2026-12-01T00:00:00Z"}}"#
                );
                LinkSummary::from_json(&json).unwrap()
            })
            .collect()
    }

    #[tokio::test]
    async fn pages_are_cut_into_chunks_in_order_each_pages_rest_a_chunk_of_its_own() {
        let (tx, rx) = mpsc::unbounded_channel();
        let mut chunks = Chunks::new(rx);
        for p in [page(0, 3), page(3, 0), page(3, 2_500)] {
            tx.send(p).unwrap();
        }
        let reader = tokio::spawn(async move {
            let mut seen = vec![];
            while let Some(c) = chunks.next().await {
                let links = c.links();
                seen.push((links.len(), links[0].code.to_string()));
            }
            seen
        });
        // A page that arrives later is still read; the end comes when the sender goes.
        tokio::task::yield_now().await;
        tx.send(page(2_503, 1_000)).unwrap();
        drop(tx);
        assert_eq!(
            reader.await.unwrap(),
            [
                (3, "l-00000".to_owned()),
                (1_000, "l-00003".to_owned()),
                (1_000, "l-01003".to_owned()),
                (500, "l-02003".to_owned()),
                (1_000, "l-02503".to_owned()),
            ]
        );
    }
}
