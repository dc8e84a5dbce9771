//! Bulk reads: many links' hashes and counts for a report, and long lists (a campaign's link
//! index and summaries), on connections of their own, each reply decoded where it lies in the
//! read buffer, once it is whole (`ReplyEnd`).
//!
//! The redis client decodes replies with a parser-combinator that keeps a resumable state per
//! value: about 1,100 instructions a value, half of a 10,000-link report's CPU (130,000 values),
//! all of it on the one thread that drives the shared connection. Here a pipeline of reads goes
//! out on a plain socket, and each reply is decoded as ranges of the buffer (`resp::decode`,
//! RESP2), which the caller reads as borrowed bytes (no value is copied out of the buffer), on
//! the task that asked.
//!
//! One Redis (`Target::Single`, over TCP or a Unix socket); on a Redis Cluster reads go through
//! the client, a pipeline per shard. A connection is opened when no idle one is left (`AUTH`
//! and `SELECT` as the URL says, then `PING`), kept for the next read (a few, for a while), and
//! dropped after any failure, so a read that failed never leaves replies behind for the next
//! one. At most `OPEN` are open at once; a read past them waits for one. A failure is the read's
//! error, never a short answer: no answer, or a connection Redis refuses (`maxclients`, a
//! password it no longer takes), is an I/O error (the store is unavailable); an error reply to
//! a read keeps its code (`LOADING` is unavailable, `WRONGTYPE` a fault, as `failed` sorts them).

use std::sync::Mutex;
use std::time::{Duration, Instant};

use redis::{ConnectionAddr, ConnectionInfo, ErrorKind, RedisError, RedisResult};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpStream, UnixStream};
use tokio::sync::Semaphore;

use super::resp::{decode, Frame, Malformed, ReplyEnd};

/// Connections open at once: a report reads up to three batches at a time (the next chunk's
/// links, two ways, while this chunk's visitors are counted).
const OPEN: usize = 8;
/// Idle connections kept for the next read.
const IDLE: usize = 4;
/// How long an idle connection is kept: past it, a proxy or firewall on the way may have
/// dropped it without a word, and a read on it would wait for `DEADLINE`.
const IDLE_FOR: Duration = Duration::from_secs(30);
/// How long a connection may take to open, and a read to be answered whole (the client's
/// response timeout is the same).
const DEADLINE: Duration = Duration::from_secs(5);
/// Bytes read from the socket at a time, at least.
const READ_AHEAD: usize = 64 * 1024;

/// Where bulk reads go, and the connections kept for them.
pub(super) struct BulkReads {
    info: ConnectionInfo,
    /// Idle connections, and since when.
    idle: Mutex<Vec<(Stream, Instant)>>,
    open: Semaphore,
}

enum Stream {
    Tcp(TcpStream),
    Unix(UnixStream),
}

/// A field of a hash reply and its value.
pub(super) type Pair<'a> = (&'a [u8], &'a [u8]);

/// One reply of a bulk read, borrowed from the read buffer.
#[derive(Clone, Copy)]
pub(super) struct Reply<'a> {
    frame: &'a Frame,
    buf: &'a [u8],
}

impl<'a> Reply<'a> {
    /// The reply as bytes: a bulk or simple string's.
    fn bytes(self) -> Option<&'a [u8]> {
        match self.frame {
            Frame::Bulk(start, end) | Frame::Simple(start, end) => self.buf.get(*start..*end),
            _ => None,
        }
    }

    /// A bulk string's bytes (`GET`, `ZSCORE`); `None` for a nil or any other reply.
    pub(super) fn text(self) -> Option<&'a [u8]> {
        match self.frame {
            Frame::Bulk(..) => self.bytes(),
            _ => None,
        }
    }

    /// The reply as an integer (`:` reply).
    pub(super) fn int(self) -> Option<i64> {
        match self.frame {
            Frame::Integer(n) => Some(*n),
            _ => None,
        }
    }

    /// A status reply's text (`+OK`, `+QUEUED`); `None` for any other reply.
    pub(super) fn status(self) -> Option<&'a [u8]> {
        match self.frame {
            Frame::Simple(start, end) => self.buf.get(*start..*end),
            _ => None,
        }
    }

    /// An error reply (a whole reply, or one that `EXEC`'s array holds) as the error it
    /// reports, its code kept for `failed` to sort; `None` for any other reply.
    pub(super) fn error(self) -> Option<RedisError> {
        match self.frame {
            // The whole reply: its `-` before the line, its CRLF after.
            Frame::Error(start, end) => Some(server_error(self.buf.get(start.checked_sub(1)?..end + 2)?)),
            _ => None,
        }
    }

    /// The replies an array holds (`EXEC`'s, one per command of the transaction); `None` for
    /// any other reply.
    pub(super) fn replies(self) -> Option<impl Iterator<Item = Reply<'a>>> {
        let buf = self.buf;
        match self.frame {
            Frame::Array(items) => Some(items.iter().map(move |frame| Reply { frame, buf })),
            _ => None,
        }
    }

    /// The items of an array reply (none for a nil one); `None` for any other reply.
    fn array(self) -> Option<&'a [Frame]> {
        match self.frame {
            Frame::Array(items) => Some(items),
            Frame::Nil => Some(&[]),
            _ => None,
        }
    }

    /// Each item of an array reply (`HMGET`'s, `ZRANGE`'s) as bytes, `None` for a nil one; `None`
    /// for a reply that is not an array.
    pub(super) fn items(self) -> Option<impl Iterator<Item = Option<&'a [u8]>>> {
        let buf = self.buf;
        Some(self.array()?.iter().map(move |frame| Reply { frame, buf }.bytes()))
    }

    /// Each field and value of a hash (`HGETALL`'s flat array; none for a nil reply), and how
    /// many; `None` for a reply that is not a hash.
    pub(super) fn pairs(self) -> Option<(usize, impl Iterator<Item = Pair<'a>>)> {
        let items = self.array()?;
        let buf = self.buf;
        let pairs = items.chunks_exact(2).filter_map(move |kv| {
            let k = Reply { frame: &kv[0], buf }.bytes()?;
            let v = Reply { frame: &kv[1], buf }.bytes()?;
            Some((k, v))
        });
        Some((items.len() / 2, pairs))
    }
}

impl BulkReads {
    /// Bulk reads to the Redis `info` names (TCP or a Unix socket; else `None`).
    pub(super) fn new(info: &ConnectionInfo) -> Option<Self> {
        match info.addr() {
            ConnectionAddr::Tcp(..) | ConnectionAddr::Unix(_) => Some(BulkReads {
                info: info.clone(),
                idle: Mutex::new(Vec::new()),
                open: Semaphore::new(OPEN),
            }),
            _ => None,
        }
    }

    /// Sends `packed` (commands packed by the client: `Pipeline::get_packed_pipeline`), and hands
    /// `each` their `count` replies in order. An error reply is the read's error, as the client
    /// makes it; so is anything `each` answers with an error.
    pub(super) async fn read(
        &self,
        packed: &[u8],
        count: usize,
        mut each: impl FnMut(Reply<'_>) -> RedisResult<()>,
    ) -> RedisResult<()> {
        let _open = self.open.acquire().await.expect("the semaphore is never closed");
        let pooled = self.take_idle();
        let reused = pooled.is_some();
        let mut stream = match pooled {
            Some(s) => s,
            None => self.open().await?,
        };
        let mut seen = 0;
        let mut done = in_time(stream.exchange(packed, count, &mut seen, &mut each)).await;
        if let Err(e) = &done {
            // An idle connection that Redis closed meanwhile (a restart, its idle `timeout`):
            // nothing was read from it, so the read goes once more on a new one.
            if reused && seen == 0 && e.is_io_error() && !e.is_timeout() {
                stream = self.open().await?;
                done = in_time(stream.exchange(packed, count, &mut seen, &mut each)).await;
            }
        }
        done?;
        let mut idle = self.idle.lock().expect("idle bulk connections");
        if idle.len() < IDLE {
            idle.push((stream, Instant::now()));
        }
        Ok(())
    }

    /// The idle connection used last, unless it has been idle too long (then none is: the
    /// others are older).
    fn take_idle(&self) -> Option<Stream> {
        let mut idle = self.idle.lock().expect("idle bulk connections");
        let (stream, since) = idle.pop()?;
        if since.elapsed() < IDLE_FOR {
            return Some(stream);
        }
        idle.clear();
        None
    }

    /// A new connection, signed in, on the URL's database, and answering.
    async fn open(&self) -> RedisResult<Stream> {
        in_time(async {
            let mut stream = match self.info.addr() {
                ConnectionAddr::Tcp(host, port) => {
                    let s = TcpStream::connect((host.as_str(), *port)).await?;
                    s.set_nodelay(true)?;
                    Stream::Tcp(s)
                }
                ConnectionAddr::Unix(path) => Stream::Unix(UnixStream::connect(path).await?),
                _ => {
                    return Err(RedisError::from((
                        ErrorKind::InvalidClientConfig,
                        "bulk reads need TCP or a Unix socket",
                    )))
                }
            };
            let settings = self.info.redis_settings();
            let mut hello = redis::pipe();
            if let Some(password) = settings.password() {
                let auth = hello.cmd("AUTH");
                if let Some(user) = settings.username() {
                    auth.arg(user);
                }
                auth.arg(password);
            }
            if settings.db() != 0 {
                hello.cmd("SELECT").arg(settings.db());
            }
            // Redis past `maxclients` answers a new connection's first command with an error.
            hello.cmd("PING");
            let mut seen = 0;
            stream
                .exchange(&hello.get_packed_pipeline(), hello.len(), &mut seen, |_| Ok(()))
                .await
                .map_err(|e| match e.is_io_error() {
                    true => e,
                    false => RedisError::from(std::io::Error::new(
                        std::io::ErrorKind::ConnectionRefused,
                        format!("Redis refused a connection for reports: {e}"),
                    )),
                })?;
            Ok(stream)
        })
        .await
    }
}

impl Stream {
    async fn exchange(
        &mut self,
        packed: &[u8],
        count: usize,
        seen: &mut usize,
        each: impl FnMut(Reply<'_>) -> RedisResult<()>,
    ) -> RedisResult<()> {
        match self {
            Stream::Tcp(s) => {
                let (r, w) = s.split();
                exchange(r, w, packed, count, seen, each).await
            }
            Stream::Unix(s) => {
                let (r, w) = s.split();
                exchange(r, w, packed, count, seen, each).await
            }
        }
    }
}

/// `work`, or a timeout error past `DEADLINE`.
async fn in_time<T>(work: impl std::future::Future<Output = RedisResult<T>>) -> RedisResult<T> {
    tokio::time::timeout(DEADLINE, work)
        .await
        .unwrap_or_else(|_| Err(RedisError::from(std::io::Error::from(std::io::ErrorKind::TimedOut))))
}

/// Writes `packed` while reading its `count` replies (a big pipeline's first replies arrive
/// before it is all sent), each decoded in place and handed to `each`.
async fn exchange<R, W>(
    mut r: R,
    mut w: W,
    packed: &[u8],
    count: usize,
    seen: &mut usize,
    mut each: impl FnMut(Reply<'_>) -> RedisResult<()>,
) -> RedisResult<()>
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    let send = async {
        w.write_all(packed).await?;
        w.flush().await?;
        RedisResult::Ok(())
    };
    let receive = async {
        let mut buf: Vec<u8> = Vec::with_capacity(READ_AHEAD);
        // Once the reply at the buffer's start was found not whole, how far it was scanned: a
        // reply that takes many reads is decoded when it is whole, not again from its start
        // after each read. A reply that arrived whole is decoded at once.
        let mut partial: Option<ReplyEnd> = None;
        while *seen < count {
            // Every whole reply in the buffer, then the rest of the buffer moved to its start.
            let mut at = 0;
            while *seen < count {
                let whole = match &mut partial {
                    None => decode(&buf[at..]).map_err(malformed)?,
                    Some(end) => match end.find(&buf[at..]) {
                        Some(len) => decode(&buf[at..at + len]).map_err(malformed)?,
                        None => break,
                    },
                };
                let Some((frame, used)) = whole else {
                    // Not whole yet: scanned from here on. (A scan that finds it whole where
                    // the decoder does not is no RESP.)
                    if partial.is_none() {
                        let mut end = ReplyEnd::default();
                        if end.find(&buf[at..]).is_none() {
                            partial = Some(end);
                            break;
                        }
                    }
                    return Err(RedisError::from((ErrorKind::Parse, "malformed reply")));
                };
                partial = None;
                let reply = Reply {
                    frame: &frame,
                    buf: &buf[at..],
                };
                if let Some(e) = reply.error() {
                    return Err(e);
                }
                each(reply)?;
                at += used;
                *seen += 1;
            }
            buf.drain(..at);
            if *seen == count {
                break;
            }
            buf.reserve(READ_AHEAD);
            if r.read_buf(&mut buf).await? == 0 {
                return Err(RedisError::from(std::io::Error::from(
                    std::io::ErrorKind::UnexpectedEof,
                )));
            }
        }
        RedisResult::Ok(())
    };
    tokio::try_join!(send, receive).map(|_| ())
}

fn malformed(e: Malformed) -> RedisError {
    RedisError::from((ErrorKind::Parse, "malformed reply", e.0.to_owned()))
}

/// An error reply (`-LOADING ...`), as the client makes it: its code then sorts it (`failed`).
fn server_error(raw: &[u8]) -> RedisError {
    match redis::parse_redis_value(raw) {
        Ok(redis::Value::ServerError(e)) => e.into(),
        _ => RedisError::from((ErrorKind::Parse, "malformed error reply")),
    }
}

#[cfg(test)]
mod tests {
    use tokio::io::{duplex, split, AsyncReadExt, AsyncWriteExt};

    use super::super::failed;
    use super::*;

    /// Runs `exchange` against a peer that reads the request whole, then answers `replies`
    /// `piece` bytes at a time (and closes). Each reply's pairs, or its integer, as text.
    async fn exchange_with(replies: &[u8], piece: usize, count: usize) -> (RedisResult<()>, Vec<String>, usize) {
        let (ours, theirs) = duplex(64);
        let request = b"*2\r\n$7\r\nHGETALL\r\n$1\r\nk\r\n".repeat(count);
        let expected = request.len();
        let answers = replies.to_vec();
        let peer = tokio::spawn(async move {
            let (mut r, mut w) = split(theirs);
            let mut got = vec![0; expected];
            r.read_exact(&mut got).await.unwrap();
            for chunk in answers.chunks(piece) {
                // A read that failed stops reading: the rest finds the connection closed.
                if w.write_all(chunk).await.is_err() {
                    break;
                }
                tokio::task::yield_now().await;
            }
            got
        });
        let (r, w) = split(ours);
        let (mut seen, mut seen_replies) = (0, Vec::new());
        let done = exchange(r, w, &request, count, &mut seen, |reply| {
            seen_replies.push(match (reply.int(), reply.pairs()) {
                (Some(n), _) => n.to_string(),
                (None, Some((_, pairs))) => pairs
                    .map(|(k, v)| format!("{}={}", String::from_utf8_lossy(k), String::from_utf8_lossy(v)))
                    .collect::<Vec<_>>()
                    .join(","),
                (None, None) => "not a hash".into(),
            });
            Ok(())
        })
        .await;
        assert_eq!(peer.await.unwrap(), request, "the request went out whole");
        (done, seen_replies, seen)
    }

    #[tokio::test]
    async fn replies_split_anywhere_are_read_whole_and_in_order() {
        let replies = b"*4\r\n$5\r\nc|day\r\n$2\r\n12\r\n$1\r\nh\r\n$1\r\n3\r\n*0\r\n:42\r\n*2\r\n$3\r\nx|a\r\n$0\r\n\r\n$-1\r\n+OK\r\n";
        for piece in [1, 2, 3, 7, replies.len()] {
            let (done, got, seen) = exchange_with(replies, piece, 6).await;
            done.unwrap();
            assert_eq!(
                got,
                ["c|day=12,h=3", "", "42", "x|a=", "", "not a hash"],
                "in pieces of {piece}"
            );
            assert_eq!(seen, 6);
        }
    }

    #[tokio::test]
    async fn an_error_reply_fails_the_read_with_its_code() {
        let replies = b"*2\r\n$1\r\na\r\n$1\r\n1\r\n-LOADING Redis is loading the dataset in memory\r\n*0\r\n";
        let (done, got, seen) = exchange_with(replies, 5, 3).await;
        let e = done.unwrap_err();
        assert_eq!(e.code(), Some("LOADING"), "{e}");
        assert_eq!((got.len(), seen), (1, 1), "the replies before it were read");
    }

    #[tokio::test]
    async fn a_connection_closed_before_the_last_reply_fails_the_read() {
        let (done, got, seen) = exchange_with(b"*2\r\n$1\r\na\r\n$1\r\n1\r\n*2\r\n$1\r\nb", 4, 2).await;
        let e = done.unwrap_err();
        assert!(e.is_io_error(), "{e}");
        assert_eq!((got.len(), seen), (1, 1));
    }

    #[tokio::test]
    async fn a_reply_that_is_not_resp_fails_the_read() {
        for junk in [
            &b"HTTP/1.1 400 Bad Request\r\n\r\n"[..],
            b"\x15\x03\x03\x00\x02\x02\x46",
        ] {
            let (done, got, _) = exchange_with(junk, 3, 1).await;
            assert_eq!(done.unwrap_err().kind(), ErrorKind::Parse);
            assert!(got.is_empty());
        }
    }

    #[test]
    fn a_transactions_replies_read_as_statuses_and_its_exec_as_the_replies_it_holds() {
        let buf = b"*2\r\n*2\r\n$1\r\na\r\n$1\r\n1\r\n*0\r\n";
        let (exec, _) = decode(buf).unwrap().unwrap();
        let hashes: Vec<usize> = Reply { frame: &exec, buf }
            .replies()
            .unwrap()
            .map(|r| r.pairs().unwrap().0)
            .collect();
        assert_eq!(hashes, [1, 0]);
        assert!(Reply { frame: &exec, buf }.status().is_none());
        let (queued, _) = decode(b"+QUEUED\r\n").unwrap().unwrap();
        assert_eq!(
            Reply {
                frame: &queued,
                buf: b"+QUEUED\r\n"
            }
            .status(),
            Some(&b"QUEUED"[..])
        );
        assert!(Reply {
            frame: &queued,
            buf: b"+QUEUED\r\n"
        }
        .replies()
        .is_none());
        let held = b"*1\r\n-WRONGTYPE Operation against a key holding the wrong kind of value\r\n";
        let (exec, _) = decode(held).unwrap().unwrap();
        let inner = Reply {
            frame: &exec,
            buf: held,
        }
        .replies()
        .unwrap()
        .next()
        .unwrap();
        assert_eq!(
            inner.error().and_then(|e| e.code().map(str::to_owned)).as_deref(),
            Some("WRONGTYPE")
        );
        assert!(Reply {
            frame: &exec,
            buf: held
        }
        .error()
        .is_none());
        let (bulk, _) = decode(b"$2\r\nOK\r\n").unwrap().unwrap();
        assert!(
            Reply {
                frame: &bulk,
                buf: b"$2\r\nOK\r\n"
            }
            .status()
            .is_none(),
            "a bulk string is no status"
        );
    }

    #[test]
    fn an_array_reply_gives_its_items_and_nil_ones_as_none() {
        let buf = b"*3\r\n$1\r\na\r\n$-1\r\n$2\r\nbc\r\n";
        let (frame, _) = decode(buf).unwrap().unwrap();
        let items: Vec<Option<&[u8]>> = Reply { frame: &frame, buf }.items().unwrap().collect();
        assert_eq!(items, [Some(&b"a"[..]), None, Some(&b"bc"[..])]);
        let (nil, _) = decode(b"*-1\r\n").unwrap().unwrap();
        assert_eq!(Reply { frame: &nil, buf: b"" }.items().unwrap().count(), 0);
        let (int, _) = decode(b":3\r\n").unwrap().unwrap();
        assert!(Reply { frame: &int, buf: b"" }.items().is_none(), "not an array");
    }

    /// A stand-in for Redis on a free port: it answers `PING` with `PONG` (unless
    /// `refusing`: then with `reply` too, as Redis past `maxclients` answers a new connection)
    /// and every other command with `reply`, and closes a connection after `per_connection`
    /// answers (if given). It counts the connections it took.
    struct FakeRedis {
        port: u16,
        accepted: std::sync::Arc<std::sync::atomic::AtomicUsize>,
    }

    impl FakeRedis {
        async fn start(reply: &'static [u8], per_connection: Option<usize>, refusing: bool) -> Self {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            let port = listener.local_addr().unwrap().port();
            let accepted = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
            let count = accepted.clone();
            tokio::spawn(async move {
                while let Ok((mut socket, _)) = listener.accept().await {
                    count.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                    tokio::spawn(async move {
                        let (mut buf, mut answered) = (Vec::new(), 0);
                        loop {
                            while let Ok(Some((frame, used))) = decode(&buf) {
                                let ping = !refusing
                                    && matches!(&frame, Frame::Array(a)
                                        if matches!(a.first(), Some(Frame::Bulk(s, e)) if &buf[*s..*e] == b"PING"));
                                buf.drain(..used);
                                let out: &[u8] = if ping { b"+PONG\r\n" } else { reply };
                                if socket.write_all(out).await.is_err() {
                                    return;
                                }
                                answered += usize::from(!ping);
                                if per_connection.is_some_and(|n| answered >= n) {
                                    return;
                                }
                            }
                            if socket.read_buf(&mut buf).await.unwrap_or(0) == 0 {
                                return;
                            }
                        }
                    });
                }
            });
            FakeRedis { port, accepted }
        }

        fn reads(&self) -> BulkReads {
            let url = format!("redis://127.0.0.1:{}/0", self.port);
            BulkReads::new(&redis::IntoConnectionInfo::into_connection_info(url.as_str()).unwrap()).unwrap()
        }

        fn accepted(&self) -> usize {
            self.accepted.load(std::sync::atomic::Ordering::SeqCst)
        }
    }

    /// One `HGETALL`'s fields, read through `reads`.
    async fn hgetall(reads: &BulkReads) -> RedisResult<Vec<String>> {
        let mut pipe = redis::pipe();
        pipe.hgetall("k");
        let mut fields = Vec::new();
        reads
            .read(&pipe.get_packed_pipeline(), 1, |reply| {
                let (_, pairs) = reply.pairs().expect("a hash");
                fields.extend(pairs.map(|(k, _)| String::from_utf8_lossy(k).into_owned()));
                Ok(())
            })
            .await
            .map(|()| fields)
    }

    #[tokio::test]
    async fn reads_take_turns_on_one_connection() {
        let redis = FakeRedis::start(b"*2\r\n$1\r\na\r\n$1\r\n1\r\n", None, false).await;
        let reads = redis.reads();
        for _ in 0..3 {
            assert_eq!(hgetall(&reads).await.unwrap(), ["a"]);
        }
        assert_eq!(redis.accepted(), 1);
    }

    #[tokio::test]
    async fn a_connection_closed_while_idle_is_replaced_once_and_the_read_answered() {
        // Each connection is closed after one read, as a restart of Redis would close it.
        let redis = FakeRedis::start(b"*2\r\n$1\r\na\r\n$1\r\n1\r\n", Some(1), false).await;
        let reads = redis.reads();
        assert_eq!(hgetall(&reads).await.unwrap(), ["a"]);
        assert_eq!(hgetall(&reads).await.unwrap(), ["a"]);
        assert_eq!(
            redis.accepted(),
            2,
            "the idle connection was found closed, and another opened"
        );
    }

    #[tokio::test]
    async fn a_redis_that_refuses_the_connection_or_is_not_there_is_unavailable() {
        let redis = FakeRedis::start(b"-ERR max number of clients reached\r\n", Some(1), true).await;
        let e = hgetall(&redis.reads()).await.unwrap_err();
        assert!(e.to_string().contains("max number of clients"), "{e}");
        assert!(matches!(failed("x")(e), crate::store::StoreError::Unavailable(_)));

        let port = {
            let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            listener.local_addr().unwrap().port()
        };
        let gone = FakeRedis {
            port,
            accepted: Default::default(),
        };
        let e = hgetall(&gone.reads()).await.unwrap_err();
        assert!(matches!(failed("x")(e), crate::store::StoreError::Unavailable(_)));
    }
}
