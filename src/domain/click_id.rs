//! Click ids: the `kl_cid` value appended to every human redirect.
//!
//! A click id names the link (by its numeric id) and the click's entry in that link's click log
//! (an `EntryId`: milliseconds and a sequence number), so attribution finds the click with one
//! read and no global index. Text form: three base-36 numbers joined by `-`, e.g.
//! `2s-mgx0k2pq-5`: URL-safe, at most 41 characters, opaque to shops.

use std::fmt;

/// The id of an entry in a link's click log: the click's time in milliseconds and a sequence
/// number, ordered by time. Each store keeps it in its own form.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct EntryId {
    pub ms: u64,
    pub seq: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ClickId {
    pub link_id: u64,
    pub entry: EntryId,
}

impl ClickId {
    pub fn parse(s: &str) -> Option<Self> {
        if s.len() > 64 {
            return None;
        }
        let mut it = s.split('-');
        let link_id = from_base36(it.next()?)?;
        let ms = from_base36(it.next()?)?;
        let seq = from_base36(it.next()?)?;
        if it.next().is_some() {
            return None;
        }
        Some(Self {
            link_id,
            entry: EntryId { ms, seq },
        })
    }
}

impl fmt::Display for ClickId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Digits from a buffer on the stack: this runs for every redirect.
        let mut buf = [0u8; 13];
        f.write_str(base36(self.link_id, &mut buf))?;
        f.write_str("-")?;
        f.write_str(base36(self.entry.ms, &mut buf))?;
        f.write_str("-")?;
        f.write_str(base36(self.entry.seq, &mut buf))
    }
}

/// `n` in base 36 (lower case), written at the end of `buf` (13 digits hold any `u64`).
fn base36(mut n: u64, buf: &mut [u8; 13]) -> &str {
    const DIGITS: &[u8; 36] = b"0123456789abcdefghijklmnopqrstuvwxyz";
    let mut i = buf.len();
    loop {
        i -= 1;
        buf[i] = DIGITS[(n % 36) as usize];
        n /= 36;
        if n == 0 {
            break;
        }
    }
    std::str::from_utf8(&buf[i..]).expect("base 36 digits are ASCII")
}

fn from_base36(s: &str) -> Option<u64> {
    // Reject empty, upper-case and leading-zero forms so that each id has exactly one spelling.
    if s.is_empty() || s.len() > 13 || (s.len() > 1 && s.starts_with('0')) {
        return None;
    }
    if !s.bytes().all(|b| b.is_ascii_digit() || b.is_ascii_lowercase()) {
        return None;
    }
    u64::from_str_radix(s, 36).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_through_text() {
        let cases = [
            ClickId {
                link_id: 1,
                entry: EntryId {
                    ms: 1_763_800_000_000,
                    seq: 0,
                },
            },
            ClickId {
                link_id: 0,
                entry: EntryId { ms: 0, seq: 0 },
            },
            ClickId {
                link_id: u64::MAX,
                entry: EntryId {
                    ms: u64::MAX,
                    seq: u64::MAX,
                },
            },
        ];
        for c in cases {
            let text = c.to_string();
            assert!(text.len() <= 64, "{text}");
            assert!(text.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-'), "{text}");
            assert_eq!(ClickId::parse(&text), Some(c), "{text}");
        }
    }

    #[test]
    fn rejects_foreign_text() {
        for s in [
            "",
            "abc",
            "1-2",
            "1-2-3-4",
            "1--3",
            "A-2-3",
            "01-2-3",
            "1-2-zzzzzzzzzzzzzz",
            "1-2-3 ",
        ] {
            assert_eq!(ClickId::parse(s), None, "{s:?}");
        }
    }
}
