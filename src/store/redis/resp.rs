//! RESP2 replies read where they lie in a read buffer, for the bulk reads (`bulk`): `decode`
//! gives a whole reply as ranges of the buffer, `ReplyEnd` finds where a reply that takes many
//! reads ends without reading its start again.
//!
//! `redis-protocol`'s `decode_range` gives the same frames (its tests here say so, on every
//! kind of reply cut anywhere, and on random ones), through nom's streaming parsers: reading a
//! length prefix (`$12\r\n`) alone took about 3,300 instructions, a third of a 10,000-link
//! report's CPU (callgrind). Here each of the protocol's five kinds of reply starts with a line
//! found by its CRLF, and a bulk string's bytes are taken by their length. One difference, on
//! purpose: arrays nested more than `MAX_DEPTH` deep are refused (`decode_range` reads them, or
//! waits for the rest), since no reply kolink asks for nests more than two deep.

/// A reply, as positions in the buffer it was decoded from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Frame {
    /// `+OK`: the line.
    Simple(usize, usize),
    /// `-ERR …`: the line.
    Error(usize, usize),
    Integer(i64),
    /// `$3\r\nabc`: the bytes.
    Bulk(usize, usize),
    Array(Vec<Frame>),
    /// `$-1` or `*-1`.
    Nil,
}

/// Bytes that are not a RESP2 reply.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Malformed(pub &'static str);

/// How deep arrays may nest: kolink's replies nest two deep; a peer that sends more is not Redis.
const MAX_DEPTH: usize = 32;

/// The reply at the start of `buf` and its length, or `None` while it is not whole.
pub(super) fn decode(buf: &[u8]) -> Result<Option<(Frame, usize)>, Malformed> {
    let mut at = 0;
    match frame(buf, &mut at, 0) {
        Ok(frame) => Ok(Some((frame, at))),
        Err(Stop::More) => Ok(None),
        Err(Stop::Bad(why)) => Err(Malformed(why)),
    }
}

enum Stop {
    /// Not whole yet.
    More,
    Bad(&'static str),
}

/// The frame that starts at `*at`, moving `*at` past it.
fn frame(buf: &[u8], at: &mut usize, depth: usize) -> Result<Frame, Stop> {
    let start = *at;
    let kind = *buf.get(start).ok_or(Stop::More)?;
    if !b"+-:$*".contains(&kind) {
        return Err(Stop::Bad("not a reply's first byte"));
    }
    let (line, next) = line(buf, start + 1).ok_or(Stop::More)?;
    *at = next;
    match kind {
        b'+' => Ok(Frame::Simple(line.0, line.1)),
        b'-' => Ok(Frame::Error(line.0, line.1)),
        b':' => number::<i64>(&buf[line.0..line.1]).map(Frame::Integer),
        b'$' => match number::<isize>(&buf[line.0..line.1])? {
            -1 => Ok(Frame::Nil),
            len => {
                let len = usize::try_from(len).map_err(|_| Stop::Bad("a negative length"))?;
                let end = next.checked_add(len).ok_or(Stop::Bad("a length past memory"))?;
                // The two bytes after it end it, as for the decoder: not looked at.
                if buf.len() < end.saturating_add(2) {
                    return Err(Stop::More);
                }
                *at = end + 2;
                Ok(Frame::Bulk(next, end))
            }
        },
        _ => match number::<isize>(&buf[line.0..line.1])? {
            -1 => Ok(Frame::Nil),
            len => {
                let len = usize::try_from(len).map_err(|_| Stop::Bad("a negative length"))?;
                if depth == MAX_DEPTH {
                    return Err(Stop::Bad("arrays nested too deep"));
                }
                // Each item takes three bytes at least: no more room than the buffer can fill.
                let mut items = Vec::with_capacity(len.min((buf.len() - next) / 3));
                for _ in 0..len {
                    items.push(frame(buf, at, depth + 1)?);
                }
                Ok(Frame::Array(items))
            }
        },
    }
}

/// The line that starts at `from` (up to its CRLF), and where the next one starts.
fn line(buf: &[u8], from: usize) -> Option<((usize, usize), usize)> {
    let end = from + line_end(buf.get(from..)?)?;
    Some(((from, end), end + 2))
}

/// Where the first CRLF of `b` starts (a lone CR or LF is part of the line).
fn line_end(b: &[u8]) -> Option<usize> {
    let mut from = 0;
    loop {
        let cr = from + b[from..].iter().position(|&c| c == b'\r')?;
        if b.get(cr + 1) == Some(&b'\n') {
            return Some(cr);
        }
        from = cr + 1;
    }
}

/// A length or an integer: most are a few plain digits, read here; anything else (a sign,
/// 19 digits or more, not a number at all) as `str::parse` reads it.
fn number<T: std::str::FromStr + TryFrom<i64>>(digits: &[u8]) -> Result<T, Stop> {
    let plain = (1..=18).contains(&digits.len()) && digits.iter().all(u8::is_ascii_digit);
    let read = if plain {
        let n = digits.iter().fold(0i64, |n, d| n * 10 + i64::from(d - b'0'));
        T::try_from(n).ok()
    } else {
        std::str::from_utf8(digits).ok().and_then(|s| s.parse().ok())
    };
    read.ok_or(Stop::Bad("a number that does not read"))
}

/// Where the reply at the start of a buffer ends, found across reads: each part of it is
/// looked at once, however many reads it takes (decoding a reply not yet whole reads it from
/// its start again, and a hash of 30,000 fields read 16 KiB at a time took 128 ms instead of 11).
#[derive(Default)]
pub(super) struct ReplyEnd {
    /// Bytes of the reply scanned: where its next item starts.
    at: usize,
    /// Items still to come in each array open at `at`, the innermost last.
    open: Vec<u64>,
}

impl ReplyEnd {
    /// The reply's length once `buf` (which starts with it) holds it whole; until then `None`,
    /// and the next call, with more of it, goes on from where this one stopped. What is not
    /// RESP2 ends the scan at the buffer's end, for `decode` to say what is wrong.
    pub(super) fn find(&mut self, buf: &[u8]) -> Option<usize> {
        loop {
            let rest = buf.get(self.at..)?;
            let kind = *rest.first()?;
            if !b"+-:$*".contains(&kind) {
                return Some(buf.len());
            }
            let eol = line_end(rest)?;
            let header = eol + 2;
            let number = || std::str::from_utf8(&rest[1..eol]).ok()?.parse::<i64>().ok();
            match kind {
                b'$' => match number() {
                    Some(n) if n < 0 => self.at += header,
                    Some(n) => {
                        let whole = header.checked_add(usize::try_from(n).ok()?)?.checked_add(2)?;
                        if rest.len() < whole {
                            return None;
                        }
                        self.at += whole;
                    }
                    None => return Some(buf.len()),
                },
                b'*' => match number() {
                    Some(n) if n > 0 => {
                        self.at += header;
                        self.open.push(n as u64);
                        continue;
                    }
                    Some(_) => self.at += header,
                    None => return Some(buf.len()),
                },
                // `+`, `-`, `:`: the line is the item.
                _ => self.at += header,
            }
            // An item ended: so did each array it was the last item of.
            loop {
                match self.open.last_mut() {
                    None => return Some(self.at),
                    Some(left) => {
                        *left -= 1;
                        if *left > 0 {
                            break;
                        }
                        self.open.pop();
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;
    use redis_protocol::resp2::decode::decode_range;
    use redis_protocol::resp2::types::RangeFrame;

    use super::*;

    /// `redis-protocol`'s frame, as a `Frame`.
    fn theirs(f: &RangeFrame) -> Frame {
        match f {
            RangeFrame::SimpleString((a, b)) => Frame::Simple(*a, *b),
            RangeFrame::Error((a, b)) => Frame::Error(*a, *b),
            RangeFrame::Integer(n) => Frame::Integer(*n),
            RangeFrame::BulkString((a, b)) => Frame::Bulk(*a, *b),
            RangeFrame::Array(items) => Frame::Array(items.iter().map(theirs).collect()),
            RangeFrame::Null => Frame::Nil,
        }
    }

    /// What a decoder makes of bytes: a frame and its length, not whole yet, or a refusal.
    type Outcome = Result<Option<(Frame, usize)>, ()>;

    /// What each decoder, ours then `redis-protocol`'s, makes of `buf`.
    fn both(buf: &[u8]) -> (Outcome, Outcome) {
        let ours = decode(buf).map_err(|_| ());
        let reference = decode_range(buf)
            .map(|o| o.map(|(f, used)| (theirs(&f), used)))
            .map_err(|_| ());
        (ours, reference)
    }

    /// Replies of every kind, nested, empty and null ones, and a bulk string holding CRLF.
    const KINDS: &[&[u8]] = &[
        b"*4\r\n$5\r\nc|day\r\n$2\r\n12\r\n$1\r\nh\r\n$1\r\n3\r\n",
        b"*0\r\n",
        b"*-1\r\n",
        b"$-1\r\n",
        b"$0\r\n\r\n",
        b"$4\r\na\r\nb\r\n",
        b":42\r\n",
        b":-7\r\n",
        b":+7\r\n",
        b":9223372036854775807\r\n",
        b":-9223372036854775808\r\n",
        b":000000000000000042\r\n",
        b"$+1\r\nx\r\n",
        b"+OK\r\n",
        b"+\r\n",
        b"-WRONGTYPE Operation against a key holding the wrong kind of value\r\n",
        b"*3\r\n*2\r\n:1\r\n*0\r\n*1\r\n$1\r\nx\r\n$-1\r\n",
        b"*2\r\n+a\n$100\r\n:1\r\n",
        b"+a\rb\r\n",
    ];

    #[test]
    fn every_kind_of_reply_decodes_as_redis_protocol_decodes_it_however_it_is_cut() {
        for reply in KINDS {
            let mut buf = reply.to_vec();
            buf.extend_from_slice(b":7\r\n"); // the next reply, not to be taken in
            let (ours, reference) = both(&buf);
            assert_eq!(ours, reference, "{:?}", String::from_utf8_lossy(reply));
            assert_eq!(ours.unwrap().unwrap().1, reply.len());
            for cut in 0..reply.len() {
                assert_eq!(
                    decode(&buf[..cut]),
                    Ok(None),
                    "{:?} cut at {cut}",
                    String::from_utf8_lossy(reply)
                );
            }
        }
    }

    #[test]
    fn a_reply_end_is_found_where_the_reply_decodes_however_it_arrives() {
        for reply in KINDS {
            let mut buf = reply.to_vec();
            buf.extend_from_slice(b":7\r\n");
            // A scan of the reply growing a byte at a time, and a fresh one of each part.
            let mut growing = ReplyEnd::default();
            for cut in 0..reply.len() {
                assert_eq!(
                    growing.find(&buf[..cut]),
                    None,
                    "{:?} cut at {cut}",
                    String::from_utf8_lossy(reply)
                );
                assert_eq!(ReplyEnd::default().find(&buf[..cut]), None);
            }
            assert_eq!(
                growing.find(&buf),
                Some(reply.len()),
                "{:?}",
                String::from_utf8_lossy(reply)
            );
            assert_eq!(ReplyEnd::default().find(&buf), Some(reply.len()));
        }
    }

    #[test]
    fn a_long_reply_is_scanned_on_from_where_the_last_read_stopped() {
        let fields = 5_000;
        let mut reply = format!("*{}\r\n", fields * 2).into_bytes();
        let mut item_ends = Vec::new();
        for i in 0..fields {
            reply.extend_from_slice(format!("$12\r\nx|c|day|{i:04}\r\n").as_bytes());
            item_ends.push(reply.len());
            reply.extend_from_slice(format!(":{i}\r\n").as_bytes());
            item_ends.push(reply.len());
        }
        let mut end = ReplyEnd::default();
        let half = reply.len() / 2;
        assert_eq!(end.find(&reply[..half]), None);
        let whole_items = item_ends.iter().filter(|&&e| e <= half).count();
        assert_eq!(
            end.at,
            item_ends[whole_items - 1],
            "the scan stopped after the last whole item before the cut"
        );
        assert_eq!(end.open, [(fields * 2 - whole_items) as u64]);
        // What was scanned is not read again: spoiling it changes nothing.
        let mut rest_only = reply.clone();
        rest_only[..end.at].fill(b'!');
        assert_eq!(end.find(&rest_only), Some(reply.len()));
        assert_eq!(decode(&reply).unwrap().unwrap().1, reply.len());
    }

    #[test]
    fn what_is_not_resp_is_refused_and_left_to_decode_by_the_scan() {
        for junk in [
            &b"HTTP/1.1 400 Bad Request\r\n"[..],
            b"HTTP/1.1 400",
            b"\x15\x03\x03\x00\x02\x02\x46",
            b"$abc\r\n",
            b"*x\r\n",
            b"\n",
        ] {
            assert_eq!(ReplyEnd::default().find(junk), Some(junk.len()));
            let (ours, reference) = both(junk);
            assert_eq!(ours, Err(()), "{:?}", String::from_utf8_lossy(junk));
            assert_eq!(reference, Err(()));
        }
        for bad in [
            &b"$-2\r\n"[..],
            b"*-5\r\n",
            b":1.5\r\n",
            b"$\r\n",
            b":\r\n",
            b":-\r\n",
            b":99999999999999999999\r\n",
            b"*2\r\n:1\r\n?\r\n",
        ] {
            assert_eq!(both(bad).0, Err(()), "{:?}", String::from_utf8_lossy(bad));
            assert_eq!(both(bad).1, Err(()), "{:?}", String::from_utf8_lossy(bad));
        }
    }

    #[test]
    fn arrays_nested_past_the_limit_are_refused() {
        let deep = |n: usize| {
            let mut b = b"*1\r\n".repeat(n);
            b.extend_from_slice(b":1\r\n");
            b
        };
        assert!(matches!(decode(&deep(MAX_DEPTH)), Ok(Some(_))));
        assert_eq!(decode(&deep(MAX_DEPTH + 1)), Err(Malformed("arrays nested too deep")));
    }

    /// A piece of a reply: the protocol's lines, right and wrong.
    fn token() -> impl Strategy<Value = Vec<u8>> {
        prop_oneof![
            (0usize..6).prop_map(|n| format!("*{n}\r\n").into_bytes()),
            Just(b"*-1\r\n".to_vec()),
            Just(b"$-1\r\n".to_vec()),
            "[a-z|\r\n]{0,6}".prop_map(|s| format!("${}\r\n{s}\r\n", s.len()).into_bytes()),
            "[a-z|\r\n]{0,6}".prop_map(|s| format!("$3\r\n{s}\r\n").into_bytes()),
            any::<i64>().prop_map(|n| format!(":{n}\r\n").into_bytes()),
            "[ -~]{0,8}".prop_map(|s| format!("+{s}\r\n").into_bytes()),
            "[ -~]{0,8}".prop_map(|s| format!("-{s}\r\n").into_bytes()),
            prop::collection::vec(any::<u8>(), 0..4),
        ]
    }

    /// A whole reply: any kind, arrays nested in arrays.
    fn reply() -> impl Strategy<Value = Vec<u8>> {
        let leaf = prop_oneof![
            "[a-z|\r\n]{0,12}".prop_map(|s| format!("${}\r\n{s}\r\n", s.len()).into_bytes()),
            Just(b"$-1\r\n".to_vec()),
            any::<i64>().prop_map(|n| format!(":{n}\r\n").into_bytes()),
            "[ -~]{0,8}".prop_map(|s| format!("+{s}\r\n").into_bytes()),
            "[ -~]{0,8}".prop_map(|s| format!("-{s}\r\n").into_bytes()),
        ];
        leaf.prop_recursive(4, 64, 8, |inner| {
            prop_oneof![
                prop::collection::vec(inner, 0..8).prop_map(|items| {
                    let mut out = format!("*{}\r\n", items.len()).into_bytes();
                    out.extend(items.concat());
                    out
                }),
                Just(b"*-1\r\n".to_vec()),
            ]
        })
    }

    proptest! {
        /// A whole reply decodes as it does with `redis-protocol`, to its last byte; cut
        /// anywhere before that, it is not whole yet.
        #[test]
        fn whole_replies_decode_as_redis_protocol_decodes_them(
            reply in reply(),
            next in token(),
            cut in any::<prop::sample::Index>(),
        ) {
            let buf = [reply.clone(), next].concat();
            let (ours, reference) = both(&buf);
            prop_assert_eq!(&ours, &reference);
            prop_assert_eq!(ours.unwrap().map(|(_, used)| used), Some(reply.len()));
            prop_assert_eq!(decode(&buf[..cut.index(reply.len())]), Ok(None));
            prop_assert_eq!(ReplyEnd::default().find(&buf), Some(reply.len()));
        }

        /// Any run of such pieces, cut anywhere: the same frame and length, "not whole yet", or
        /// a refusal, from both decoders.
        #[test]
        fn any_bytes_decode_as_redis_protocol_decodes_them(
            pieces in prop::collection::vec(token(), 1..12),
            cut in any::<prop::sample::Index>(),
        ) {
            let buf = pieces.concat();
            let buf = &buf[..cut.index(buf.len() + 1)];
            let (ours, reference) = both(buf);
            prop_assert_eq!(ours, reference, "{:?}", String::from_utf8_lossy(buf));
        }
    }
}
