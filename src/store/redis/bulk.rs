//! Bulk reads: many links' hashes for a report, on connections of their own, each reply decoded
//! where it lies in the read buffer.
//!
//! The redis client decodes replies with a parser-combinator that keeps a resumable state per
//! value: about 1,100 instructions a value, half of a 10,000-link report's CPU (130,000 values),
//! all of it on the one thread that drives the shared connection. Here a pipeline of reads goes
//! out on a plain socket, and `redis-protocol` decodes each reply as ranges of the buffer
//! (`decode_range`, RESP2), which the caller reads as borrowed bytes: nothing is copied or
//! allocated per value, and the work is done by the task that asked.
//!
//! One Redis only (`Target::Single`, over TCP or a Unix socket); on a Redis Cluster, and over
//! TLS, reads go through the client as everything else. A connection is opened when no idle
//! one is left (`AUTH` and `SELECT` as the URL says), kept for the next read (a few at most),
//! and dropped after any failure, so a read that failed never leaves replies behind for the
//! next one. A failure is the read's error (`Unavailable` for the store), never a short answer.

use std::sync::Mutex;
use std::time::Duration;

use redis::{ConnectionAddr, ConnectionInfo, ErrorKind, RedisError, RedisResult};
use redis_protocol::resp2::decode::decode_range;
use redis_protocol::resp2::types::RangeFrame;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpStream, UnixStream};

/// Idle connections kept for the next read: reports run a chunk ahead, so two at a time each.
const IDLE: usize = 4;
/// How long a connection may take to open, and a read to be answered whole (the client's
/// response timeout is the same).
const DEADLINE: Duration = Duration::from_secs(5);
/// Bytes read from the socket at a time, at least.
const READ_AHEAD: usize = 64 * 1024;

/// Where bulk reads go, and the connections kept for them.
pub(super) struct BulkReads {
    info: ConnectionInfo,
    idle: Mutex<Vec<Stream>>,
}

enum Stream {
    Tcp(TcpStream),
    Unix(UnixStream),
}

/// One reply of a bulk read, borrowed from the read buffer.
#[derive(Clone, Copy)]
pub(super) struct Reply<'a> {
    frame: &'a RangeFrame,
    buf: &'a [u8],
}

impl<'a> Reply<'a> {
    /// The reply as bytes: a bulk or simple string's.
    pub(super) fn bytes(self) -> Option<&'a [u8]> {
        match self.frame {
            RangeFrame::BulkString((start, end)) | RangeFrame::SimpleString((start, end)) => self.buf.get(*start..*end),
            _ => None,
        }
    }

    /// The reply as an integer (`:` reply).
    pub(super) fn int(self) -> Option<i64> {
        match self.frame {
            RangeFrame::Integer(n) => Some(*n),
            _ => None,
        }
    }

    /// Each field and value of a hash (`HGETALL`'s flat array); nothing for a nil or empty one.
    pub(super) fn pairs(self) -> impl Iterator<Item = (&'a [u8], &'a [u8])> {
        let items: &'a [RangeFrame] = match self.frame {
            RangeFrame::Array(items) => items,
            _ => &[],
        };
        let buf = self.buf;
        items.chunks_exact(2).filter_map(move |kv| {
            let k = Reply { frame: &kv[0], buf }.bytes()?;
            let v = Reply { frame: &kv[1], buf }.bytes()?;
            Some((k, v))
        })
    }

    /// Fields in a hash reply.
    pub(super) fn pair_count(self) -> usize {
        match self.frame {
            RangeFrame::Array(items) => items.len() / 2,
            _ => 0,
        }
    }
}

impl BulkReads {
    /// Bulk reads to the Redis `info` names; `None` where they go through the client (TLS).
    pub(super) fn new(info: &ConnectionInfo) -> Option<Self> {
        match info.addr() {
            ConnectionAddr::Tcp(..) | ConnectionAddr::Unix(_) => Some(BulkReads {
                info: info.clone(),
                idle: Mutex::new(Vec::new()),
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
        let pooled = self.idle.lock().expect("idle bulk connections").pop();
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
            idle.push(stream);
        }
        Ok(())
    }

    /// A new connection, signed in and on the URL's database.
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
            if !hello.is_empty() {
                let mut seen = 0;
                stream
                    .exchange(&hello.get_packed_pipeline(), hello.len(), &mut seen, |_| Ok(()))
                    .await?;
            }
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
        while *seen < count {
            // Every whole reply in the buffer, then the rest of the buffer moved to its start.
            let mut at = 0;
            while *seen < count {
                let Some((frame, used)) = decode_range(&buf[at..]).map_err(malformed)? else {
                    break;
                };
                let reply = Reply {
                    frame: &frame,
                    buf: &buf[at..],
                };
                if let RangeFrame::Error(_) = frame {
                    return Err(server_error(&buf[at..at + used]));
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

fn malformed(e: redis_protocol::error::RedisProtocolError) -> RedisError {
    RedisError::from((ErrorKind::Parse, "malformed reply", e.to_string()))
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
            let pairs: Vec<String> = reply
                .pairs()
                .map(|(k, v)| format!("{}={}", String::from_utf8_lossy(k), String::from_utf8_lossy(v)))
                .collect();
            seen_replies.push(match reply.int() {
                Some(n) => n.to_string(),
                None => pairs.join(","),
            });
            Ok(())
        })
        .await;
        assert_eq!(peer.await.unwrap(), request, "the request went out whole");
        (done, seen_replies, seen)
    }

    #[tokio::test]
    async fn replies_split_anywhere_are_read_whole_and_in_order() {
        let replies =
            b"*4\r\n$5\r\nc|day\r\n$2\r\n12\r\n$1\r\nh\r\n$1\r\n3\r\n*0\r\n:42\r\n*2\r\n$3\r\nx|a\r\n$0\r\n\r\n";
        for piece in [1, 2, 3, 7, replies.len()] {
            let (done, got, seen) = exchange_with(replies, piece, 4).await;
            done.unwrap();
            assert_eq!(got, ["c|day=12,h=3", "", "42", "x|a="], "in pieces of {piece}");
            assert_eq!(seen, 4);
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
        let (done, got, _) = exchange_with(b"HTTP/1.1 400 Bad Request\r\n\r\n", 64, 1).await;
        assert_eq!(done.unwrap_err().kind(), ErrorKind::Parse);
        assert!(got.is_empty());
    }
}
