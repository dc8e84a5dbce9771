//! The test harness: a private `redis-server` per test (free loopback port, temp dir), the real
//! kolink server on port 0, and typed helpers that speak real HTTP.

use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use std::sync::Arc;

use actix_web::dev::ServerHandle;
use kolink::clock::{SharedClock, SystemClock};
use kolink::config::Settings;
use kolink::signature::WebhookSecret;
use kolink::startup::Application;
use kolink::store::embedded::DiskFaults;
use reqwest::{Response, StatusCode};

use crate::cluster_server::ClusterLease;
use serde_json::{json, Value};

pub const TOKEN: &str = "test-admin-token-0123456789";

/// The stores every test runs against.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Redis,
    Embedded,
    /// A share of the test binary's local Redis Cluster (`crate::cluster_server`).
    Cluster,
}

impl Backend {
    /// The backend a `per_store!` test function is named after.
    pub fn named(name: &str) -> Self {
        match name {
            "redis" => Backend::Redis,
            "embedded" => Backend::Embedded,
            "cluster" => Backend::Cluster,
            other => panic!("no store is named {other}"),
        }
    }
}

/// What a store lives on: a private redis-server or a temp data dir, and the spool's own temp
/// dir. Dropping it removes them.
pub struct Backing {
    pub redis: Option<RedisServer>,
    pub cluster: Option<ClusterLease>,
    pub data: Option<tempfile::TempDir>,
    pub spool: tempfile::TempDir,
    /// Makes the embedded store's disk act full.
    pub faults: DiskFaults,
}

impl Backing {
    /// The store this backing holds, opened directly (no server), its "now" from `clock`.
    pub async fn open_store(&self, clock: kolink::clock::SharedClock) -> std::sync::Arc<dyn kolink::store::Store> {
        use kolink::store::redis::{RedisStore, Target};
        let retention = Duration::from_secs(400 * 86_400);
        match (&self.redis, &self.cluster, &self.data) {
            (Some(redis), _, _) => std::sync::Arc::new(
                RedisStore::connect(&Target::Single(redis.url()), "kl", retention, 0, clock)
                    .await
                    .unwrap(),
            ),
            (None, Some(lease), _) => std::sync::Arc::new(
                RedisStore::connect(&lease.target(), &lease.prefix, retention, 0, clock)
                    .await
                    .unwrap(),
            ),
            (None, None, Some(dir)) => std::sync::Arc::new(
                kolink::store::embedded::EmbeddedStore::open(dir.path(), retention, clock)
                    .await
                    .unwrap(),
            ),
            (None, None, None) => unreachable!("a backing has a redis, a cluster or a data dir"),
        }
    }

    pub fn new(backend: Backend) -> Self {
        let (redis, data) = match backend {
            Backend::Redis => (Some(RedisServer::start()), None),
            Backend::Embedded => (None, Some(tempfile::tempdir().expect("temp dir"))),
            Backend::Cluster => (None, None),
        };
        Backing {
            redis,
            cluster: (backend == Backend::Cluster).then(crate::cluster_server::lease),
            data,
            spool: tempfile::tempdir().expect("temp dir"),
            faults: DiskFaults::default(),
        }
    }
}

/// A private redis-server (AOF on, fsync always), stopped when dropped.
pub struct RedisServer {
    child: Child,
    pub port: u16,
    dir: tempfile::TempDir,
    /// Its data while it runs without (`start_again_without_its_data`).
    aside: Option<tempfile::TempDir>,
    /// The password clients must give (`requirepass`), if any.
    password: Option<String>,
}

impl RedisServer {
    pub fn start() -> Self {
        Self::start_with(None)
    }

    /// A server that asks clients for `password` (`requirepass`).
    pub fn start_with_password(password: &str) -> Self {
        Self::start_with(Some(password.to_owned()))
    }

    fn start_with(password: Option<String>) -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let port = free_port();
        let child = Self::spawn(port, dir.path(), password.as_deref());
        let server = Self {
            child,
            port,
            dir,
            aside: None,
            password,
        };
        server.wait_ready();
        server
    }

    /// Stops and starts the server on the same port and data (AOF keeps what was written).
    pub fn restart(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        self.child = Self::spawn(self.port, self.dir.path(), self.password.as_deref());
        self.wait_ready();
    }

    /// Kills the server (SIGKILL); `start_again` brings it back on the same port and data.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    pub fn start_again(&mut self) {
        self.child = Self::spawn(self.port, self.dir.path(), self.password.as_deref());
        self.wait_ready();
    }

    /// `start_again`, with its data gone (a flushed Redis, or a new one at the address).
    pub fn start_again_empty(&mut self) {
        for entry in std::fs::read_dir(self.dir.path()).expect("the server's dir") {
            let path = entry.expect("an entry").path();
            let _ = std::fs::remove_dir_all(&path).or_else(|_| std::fs::remove_file(&path));
        }
        self.start_again();
    }

    /// Kills the server and starts it again on an empty directory, its data set aside for
    /// `start_again_with_its_data` (a Redis restarted without its data, then restored).
    pub fn start_again_without_its_data(&mut self) {
        self.kill();
        let empty = tempfile::tempdir().expect("temp dir");
        self.aside = Some(std::mem::replace(&mut self.dir, empty));
        self.start_again();
    }

    /// Kills the server and starts it again on the data `start_again_without_its_data` set aside.
    pub fn start_again_with_its_data(&mut self) {
        self.kill();
        if let Some(dir) = self.aside.take() {
            self.dir = dir;
        }
        self.start_again();
    }

    /// Freezes the server (SIGSTOP): connections stay open and nothing answers.
    pub fn pause(&self) {
        self.signal("-STOP");
    }

    pub fn resume(&self) {
        self.signal("-CONT");
    }

    fn signal(&self, sig: &str) {
        let ok = Command::new("kill")
            .arg(sig)
            .arg(self.child.id().to_string())
            .status()
            .expect("run kill")
            .success();
        assert!(ok, "kill {sig} redis-server");
    }

    fn spawn(port: u16, dir: &std::path::Path, password: Option<&str>) -> Child {
        Command::new("redis-server")
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1", "--save", ""])
            .args(["--appendonly", "yes", "--appendfsync", "always"])
            .args(password.map(|p| ["--requirepass", p]).into_iter().flatten())
            .arg("--dir")
            .arg(dir)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server must be installed (run scripts/test, which installs it)")
    }

    fn wait_ready(&self) {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Ok(client) = redis::Client::open(self.url()) {
                if let Ok(mut c) = client.get_connection() {
                    if redis::cmd("PING").query::<String>(&mut c).is_ok() {
                        return;
                    }
                }
            }
            assert!(
                Instant::now() < deadline,
                "redis-server did not start on port {}",
                self.port
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub fn url(&self) -> String {
        self.url_of_db(0)
    }

    /// The URL of database `db` (with the password, if the server asks for one).
    pub fn url_of_db(&self, db: u8) -> String {
        match &self.password {
            Some(p) => format!("redis://:{p}@127.0.0.1:{}/{db}", self.port),
            None => format!("redis://127.0.0.1:{}/{db}", self.port),
        }
    }

    pub async fn connection(&self) -> redis::aio::MultiplexedConnection {
        redis::Client::open(self.url())
            .unwrap()
            .get_multiplexed_async_connection()
            .await
            .expect("connect to the test redis")
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        // A paused server must wake to die.
        let _ = Command::new("kill")
            .arg("-CONT")
            .arg(self.child.id().to_string())
            .status();
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// A running kolink server and what a test needs to talk to it.
pub struct TestApp {
    pub address: String,
    pub api: reqwest::Client,
    pub redis: Option<RedisServer>,
    pub cluster: Option<ClusterLease>,
    pub data: Option<tempfile::TempDir>,
    pub spool: Option<tempfile::TempDir>,
    pub faults: DiskFaults,
    pub settings: Settings,
    /// The admin token this start generated, when the settings named none.
    pub generated_admin_token: Option<String>,
    handle: ServerHandle,
    running: tokio::task::JoinHandle<std::io::Result<()>>,
}

pub fn settings_for(backing: &Backing) -> Settings {
    let mut s = Settings::defaults();
    s.listen = "127.0.0.1:0".into();
    s.admin_token = Some(TOKEN.into());
    s.default_currency = "TWD".into();
    s.workers = Some(2);
    // The suite sends hundreds of requests from one address; the rate limit has its own test.
    s.rate_limit_per_second = 0;
    s.redis_url = backing.redis.as_ref().map(|r| r.url());
    if let Some(c) = &backing.cluster {
        s.redis_cluster = Some(c.seeds.clone());
        s.redis_prefix = c.prefix.clone();
    }
    s.spool_dir = Some(backing.spool.path().to_owned());
    // Outage tests spool a few seconds of load (about 300 bytes a click).
    s.spool_max_mb = 64;
    if let Some(d) = &backing.data {
        s.data_dir = d.path().to_owned();
    }
    s
}

pub async fn spawn_app(backend: Backend) -> TestApp {
    spawn_app_with_clock(backend, Arc::new(SystemClock)).await
}

/// A kolink whose "now" is `clock` (see `kolink::clock::ManualClock`).
pub async fn spawn_app_with_clock(backend: Backend, clock: SharedClock) -> TestApp {
    let backing = Backing::new(backend);
    let settings = settings_for(&backing);
    start_with_clock(backing, settings, clock).await
}

/// `spawn_app_with_clock`, keeping hourly counters `days` days (`hourly_retention_days`; 0:
/// every hour).
pub async fn spawn_app_keeping_hours(backend: Backend, clock: SharedClock, days: u32) -> TestApp {
    let backing = Backing::new(backend);
    let mut settings = settings_for(&backing);
    settings.hourly_retention_days = days;
    start_with_clock(backing, settings, clock).await
}

/// Starts kolink with `settings` (and keeps its backing alive with it).
pub async fn start(backing: Backing, settings: Settings) -> TestApp {
    start_with_clock(backing, settings, Arc::new(SystemClock)).await
}

pub async fn start_with_clock(backing: Backing, settings: Settings, clock: SharedClock) -> TestApp {
    let app = Application::build_with_faults(settings.clone(), clock, backing.faults.clone())
        .await
        .expect("build the application");
    let address = format!("http://127.0.0.1:{}", app.port());
    let handle = app.handle();
    let generated_admin_token = app.generated_admin_token.clone();
    let running = tokio::spawn(app.run_until_stopped());
    let api = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        // Well under the server's keep-alive (actix's 5 s): a connection the server is closing
        // as it is reused fails the request (`IncompleteMessage`), as a browser test that had
        // waited on Chromium for 5 s once did.
        .pool_idle_timeout(std::time::Duration::from_secs(2))
        .build()
        .unwrap();
    TestApp {
        address,
        api,
        redis: backing.redis,
        cluster: backing.cluster,
        data: backing.data,
        spool: Some(backing.spool),
        faults: backing.faults,
        settings,
        generated_admin_token,
        handle,
        running,
    }
}

/// A connection to a test's Redis or Redis Cluster (the one type a test's closure takes).
pub enum StoreConnection {
    Single(redis::aio::MultiplexedConnection),
    Cluster(redis::cluster_async::ClusterConnection),
}

impl redis::aio::ConnectionLike for StoreConnection {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a redis::Cmd) -> redis::RedisFuture<'a, redis::Value> {
        match self {
            StoreConnection::Single(c) => c.req_packed_command(cmd),
            StoreConnection::Cluster(c) => c.req_packed_command(cmd),
        }
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        pipeline: &'a redis::Pipeline,
        offset: usize,
        count: usize,
    ) -> redis::RedisFuture<'a, Vec<redis::Value>> {
        match self {
            StoreConnection::Single(c) => c.req_packed_commands(pipeline, offset, count),
            StoreConnection::Cluster(c) => c.req_packed_commands(pipeline, offset, count),
        }
    }

    fn get_db(&self) -> i64 {
        match self {
            StoreConnection::Single(c) => c.get_db(),
            StoreConnection::Cluster(c) => c.get_db(),
        }
    }
}

/// Stops `app`, changes what its store holds (as an older version or a fault would have left
/// it) and starts it again on the same store. On Redis and the cluster, `redis` runs with a
/// connection and the prefix of the keys (`kl`, or the cluster lease's); on the embedded store,
/// `embedded` runs in a write transaction of its file.
pub async fn restart_with_store_changed(
    app: TestApp,
    redis: impl AsyncFnOnce(&mut StoreConnection, String),
    embedded: impl FnOnce(&redb::WriteTransaction),
) -> TestApp {
    let (backing, settings) = app.stop().await;
    if let Some(server) = &backing.redis {
        redis(&mut StoreConnection::Single(server.connection().await), "kl".to_owned()).await;
    } else if let Some(lease) = &backing.cluster {
        redis(
            &mut StoreConnection::Cluster(lease.connection().await),
            lease.prefix.clone(),
        )
        .await;
    } else {
        let file = backing
            .data
            .as_ref()
            .expect("an embedded store's data dir")
            .path()
            .join("kolink.redb");
        let db = redb::Database::create(&file).unwrap();
        let txn = db.begin_write().unwrap();
        embedded(&txn);
        txn.commit().unwrap();
    }
    start(backing, settings).await
}

impl TestApp {
    /// Stops the server, waits until it has shut down (its store closed), and returns its
    /// backing so that a new one can start on it.
    pub async fn stop(mut self) -> (Backing, Settings) {
        self.handle.stop(true).await;
        (&mut self.running)
            .await
            .expect("the server task ends")
            .expect("the server shuts down cleanly");
        (
            Backing {
                redis: self.redis.take(),
                cluster: self.cluster.take(),
                data: self.data.take(),
                spool: self.spool.take().expect("the spool dir lives with the app"),
                faults: self.faults.clone(),
            },
            self.settings.clone(),
        )
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.address, path)
    }

    pub async fn get(&self, path: &str) -> Response {
        self.api.get(self.url(path)).bearer_auth(TOKEN).send().await.unwrap()
    }

    /// DELETE with the admin token.
    pub async fn delete(&self, path: &str) -> Response {
        self.api.delete(self.url(path)).bearer_auth(TOKEN).send().await.unwrap()
    }

    /// The JSON at `url` (a whole URL), read without the admin token (a KOL's page).
    pub async fn json_of(&self, url: &str) -> Value {
        self.api.get(url).send().await.unwrap().json().await.unwrap()
    }

    /// The text of a page at `url` (a whole URL), as a browser without a session reads it.
    pub async fn page_text(&self, url: &str) -> String {
        let r = self.api.get(url).header("accept", "text/html").send().await.unwrap();
        r.text().await.unwrap()
    }

    pub async fn post(&self, path: &str, body: &Value) -> Response {
        self.api
            .post(self.url(path))
            .bearer_auth(TOKEN)
            .json(body)
            .send()
            .await
            .unwrap()
    }

    pub async fn patch(&self, path: &str, body: &Value) -> Response {
        self.api
            .patch(self.url(path))
            .bearer_auth(TOKEN)
            .json(body)
            .send()
            .await
            .unwrap()
    }

    /// POST of a raw body with the admin token and the given content type.
    pub async fn post_raw(&self, path: &str, content_type: &str, body: &str) -> Response {
        let req = self
            .api
            .post(self.url(path))
            .bearer_auth(TOKEN)
            .header("content-type", content_type);
        req.body(body.to_owned()).send().await.unwrap()
    }

    /// GET with a bearer token of the caller's choosing.
    pub async fn get_as(&self, path: &str, token: &str) -> Response {
        self.api.get(self.url(path)).bearer_auth(token).send().await.unwrap()
    }

    /// GET, asserting 200, returning the JSON.
    pub async fn get_ok(&self, path: &str) -> Value {
        let r = self.get(path).await;
        assert_eq!(r.status(), StatusCode::OK, "GET {path}");
        r.json().await.unwrap()
    }

    /// `/metrics` as Prometheus reads it (no token).
    pub async fn metrics_text(&self) -> String {
        let r = self.api.get(self.url("/metrics")).send().await.unwrap();
        assert_eq!(r.status(), StatusCode::OK, "GET /metrics");
        r.text().await.unwrap()
    }

    /// A metric's value in `/metrics` now, by its whole name and labels (0 when it is not there).
    pub async fn metric(&self, name: &str) -> f64 {
        self.metrics_text()
            .await
            .lines()
            .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.trim().parse().ok())
            .unwrap_or(0.0)
    }

    /// GET with the admin token, asking for CSV.
    pub async fn get_csv(&self, path: &str) -> Response {
        self.api
            .get(self.url(path))
            .bearer_auth(TOKEN)
            .header("accept", "text/csv")
            .send()
            .await
            .unwrap()
    }

    /// PATCH, asserting `200`, returning the JSON.
    pub async fn patch_ok(&self, path: &str, body: &Value) -> Value {
        let r = self.patch(path, body).await;
        assert_eq!(r.status(), StatusCode::OK, "PATCH {path}");
        r.json().await.unwrap()
    }

    /// POST, asserting `status`, returning the JSON.
    pub async fn post_expect(&self, path: &str, body: &Value, status: u16) -> Value {
        let r = self.post(path, body).await;
        let got = r.status().as_u16();
        let text = r.text().await.unwrap();
        assert_eq!(got, status, "POST {path} answered {text}");
        serde_json::from_str(&text).unwrap_or(Value::Null)
    }

    pub async fn create_campaign(&self, id: &str) -> Value {
        self.post_expect(
            "/api/v1/campaigns",
            &json!({"id": id, "name": format!("Campaign {id}"), "destination": "https://shop.example.com/spring",
                    "currency": "TWD", "attribution_window_days": 30}),
            201,
        )
        .await
    }

    pub async fn create_kol(&self, id: &str, followers: u64) -> Value {
        self.post_expect(
            "/api/v1/kols",
            &json!({"id": id, "name": format!("KOL {id}"), "handle": format!("@{id}"), "platform": "instagram", "followers": followers}),
            201,
        )
        .await
    }

    pub async fn create_link(&self, body: Value) -> Value {
        self.post_expect("/api/v1/links", &body, 201).await
    }

    /// A campaign `spring-sale`, a KOL `amy`, and her link `amy-serum` costing 5000.
    pub async fn seed(&self) -> Value {
        self.create_campaign("spring-sale").await;
        self.create_kol("amy", 42_000).await;
        self.create_link(
            json!({"campaign": "spring-sale", "kol": "amy", "code": "amy-serum", "cost": "5000", "coupon": "AMY10",
                                "destination": "https://shop.example.com/serum?ref=home"}),
        )
        .await
    }

    /// Follows a short link as a person on a phone would; returns the response.
    pub async fn tap(&self, code: &str) -> Response {
        self.tap_as(code, PHONE).await
    }

    pub async fn tap_as(&self, code: &str, user_agent: &str) -> Response {
        self.api
            .get(self.url(&format!("/{code}")))
            .header("user-agent", user_agent)
            .send()
            .await
            .unwrap()
    }

    /// Loads a link's pixel as a person's phone would (a bot's load counts nothing).
    pub async fn pixel(&self, code: &str) -> Response {
        self.pixel_as(code, PHONE).await
    }

    /// The pixel of `code`, loaded by `user_agent`.
    pub async fn pixel_as(&self, code: &str, user_agent: &str) -> Response {
        self.api
            .get(self.url(&format!("/p/{code}.gif")))
            .header("user-agent", user_agent)
            .send()
            .await
            .unwrap()
    }

    /// The `kl_cid` of a redirect answer.
    pub async fn click_id(&self, code: &str) -> String {
        let r = self.tap(code).await;
        assert_eq!(r.status(), StatusCode::FOUND);
        let loc = r.headers()["location"].to_str().unwrap().to_owned();
        url::Url::parse(&loc)
            .unwrap()
            .query_pairs()
            .find(|(k, _)| k == "kl_cid")
            .map(|(_, v)| v.into_owned())
            .expect("a kl_cid in the Location")
    }

    pub async fn create_shop(&self, id: &str) -> String {
        let v = self
            .post_expect(
                "/api/v1/shops",
                &json!({"id": id, "name": "Acme Store", "platform": "generic"}),
                201,
            )
            .await;
        v["secret"].as_str().unwrap().to_owned()
    }

    /// Posts a conversion signed per Standard Webhooks with `secret`.
    pub async fn webhook(&self, shop: &str, secret: &str, body: &Value) -> Response {
        let raw = serde_json::to_vec(body).unwrap();
        self.signed_webhook(shop, secret, &raw, chrono::Utc::now().timestamp())
            .await
    }

    pub async fn signed_webhook(&self, shop: &str, secret: &str, raw: &[u8], ts: i64) -> Response {
        self.signed_webhook_as(shop, secret, raw, ts, "application/json").await
    }

    /// Posts `raw`, correctly signed at `ts`, with the given content type.
    pub async fn signed_webhook_as(
        &self,
        shop: &str,
        secret: &str,
        raw: &[u8],
        ts: i64,
        content_type: &str,
    ) -> Response {
        let id = format!("msg_{}", nanoid::nanoid!(12));
        let sig = WebhookSecret::parse(secret).unwrap().sign(&id, &ts.to_string(), raw);
        self.api
            .post(self.url(&format!("/webhooks/conversions/{shop}")))
            .header("content-type", content_type)
            .header("webhook-id", id)
            .header("webhook-timestamp", ts.to_string())
            .header("webhook-signature", sig)
            .body(raw.to_vec())
            .send()
            .await
            .unwrap()
    }

    pub async fn webhook_ok(&self, shop: &str, secret: &str, body: &Value) -> Value {
        let r = self.webhook(shop, secret, body).await;
        assert_eq!(r.status(), StatusCode::OK);
        r.json().await.unwrap()
    }

    pub async fn link_totals(&self, code: &str) -> Value {
        self.get_ok(&format!("/api/v1/links/{code}/stats")).await["totals"].clone()
    }
}

pub const PHONE: &str = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Mobile/15E148 Instagram 307.0.0.34.111 (iPhone15,2; iOS 17_1; en_US; en; scale=3.00; 1179x2556; 531253145)";

/// Asserts an API.md error body with `code` and a message.
/// Every click id the link's log holds (the click export reads the store), page by page, from
/// the kolink at `base`.
pub async fn stored_click_ids(api: &reqwest::Client, base: &str, code: &str) -> Vec<String> {
    let mut ids = Vec::new();
    let mut after = String::new();
    loop {
        let page: Value = api
            .get(format!("{base}/api/v1/links/{code}/clicks?limit=10000&after={after}"))
            .bearer_auth(TOKEN)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        ids.extend(
            page["clicks"]
                .as_array()
                .unwrap()
                .iter()
                .map(|c| c["id"].as_str().unwrap().to_owned()),
        );
        match page["next_cursor"].as_str() {
            Some(next) => after = next.to_owned(),
            None => return ids,
        }
    }
}

/// A UTC time written in RFC 3339, for a `ManualClock`.
pub fn at(s: &str) -> chrono::DateTime<chrono::Utc> {
    chrono::DateTime::parse_from_rfc3339(s).unwrap().to_utc()
}

/// A conversion webhook to shop `acme`, signed at the time of `clock` (the app's clock), and
/// its answer, which must be a 200.
pub async fn signed(app: &TestApp, clock: &kolink::clock::ManualClock, secret: &str, body: Value) -> Value {
    use kolink::clock::Clock;
    let raw = serde_json::to_vec(&body).unwrap();
    let r = app.signed_webhook("acme", secret, &raw, clock.now().timestamp()).await;
    assert_eq!(r.status(), 200);
    r.json().await.unwrap()
}

pub async fn assert_error(r: Response, status: u16, code: &str) -> Value {
    assert_eq!(r.status().as_u16(), status, "expected {status} {code}");
    let body: Value = r.json().await.expect("a JSON error body");
    assert_eq!(body["error"]["code"], code, "{body}");
    assert!(
        body["error"]["message"].as_str().is_some_and(|m| !m.is_empty()),
        "{body}"
    );
    body
}
