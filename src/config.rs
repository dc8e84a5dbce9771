//! Settings, layered: `config/default.toml` (compiled in) → the file named by `KOLINK_CONFIG`
//! (or `config/kolink.toml` when present) → `KOLINK_*` environment variables. Validated on load.

use std::path::PathBuf;

use anyhow::{bail, Context};
use figment::providers::{Env, Format, Toml};
use figment::Figment;
use serde::{Deserialize, Serialize};

use crate::domain::Currency;

const DEFAULTS: &str = include_str!("../config/default.toml");

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum StorageKind {
    Embedded,
    Redis,
}

/// A key no field has is refused (a misspelt `redis_ulr` in a settings file would otherwise
/// leave kolink on its own embedded store); `Serialize` names the fields (`Settings::keys`).
#[derive(Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    pub listen: String,
    pub public_url: Option<String>,
    pub storage: Option<StorageKind>,
    pub redis_url: Option<String>,
    /// Comma-separated `redis://host:port` seeds of a Redis Cluster (instead of `redis_url`).
    pub redis_cluster: Option<String>,
    /// Replicas that must hold a click before its redirect is answered (`WAIT`); 0: none.
    pub redis_wait_replicas: u32,
    pub redis_prefix: String,
    pub data_dir: PathBuf,
    pub embedded_cache_mb: u64,
    pub spool_dir: Option<PathBuf>,
    pub spool_max_mb: u64,
    pub admin_token: Option<String>,
    /// The bearer token `/metrics` asks for; none: `/metrics` is open.
    pub metrics_token: Option<String>,
    pub default_currency: String,
    pub default_attribution_window_days: u32,
    pub click_retention_days: u32,
    /// UTC days (today included) whose hourly counters are kept; 0: for ever (`crate::hours`).
    pub hourly_retention_days: u32,
    pub client_ip_header: Option<String>,
    /// Proxies in front of kolink that each append an address to `client_ip_header`: the
    /// client's is this many entries from the end (what comes before is the client's to write).
    pub trusted_proxies: u32,
    pub country_header: Option<String>,
    pub link_cache_seconds: u64,
    pub link_cache_capacity: u64,
    pub rate_limit_per_second: u32,
    pub rate_limit_burst: u32,
    pub workers: Option<usize>,
    pub log: String,
}

impl std::fmt::Debug for Settings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Settings")
            .field("listen", &self.listen)
            .field("public_url", &self.public_url)
            .field("storage", &self.storage())
            .field("data_dir", &self.data_dir)
            .field("admin_token", &self.admin_token.as_ref().map(|_| "[redacted]"))
            .field("metrics_token", &self.metrics_token.as_ref().map(|_| "[redacted]"))
            .finish_non_exhaustive()
    }
}

/// Settings whose value is text: a `KOLINK_*` variable gives them its value as written.
const TEXT_KEYS: &[&str] = &[
    "listen",
    "public_url",
    "storage",
    "redis_url",
    "redis_cluster",
    "redis_prefix",
    "data_dir",
    "spool_dir",
    "admin_token",
    "metrics_token",
    "default_currency",
    "client_ip_header",
    "country_header",
    "log",
];

/// The `KOLINK_*` variables as a layer, keyed by setting (lower case). A text setting takes the
/// value as written: figment's own `Env` reads every value as TOML would, so a token of digits
/// was a number that no text setting takes (the start failed), and a token in quotes lost its
/// quotes. The other settings are read that way still (`30`, `true`).
struct EnvLayer(Vec<(String, String)>);

impl figment::Provider for EnvLayer {
    fn metadata(&self) -> figment::Metadata {
        figment::Metadata::named("`KOLINK_` environment variable(s)")
            .interpolater(|_, keys| format!("KOLINK_{}", keys.join("_").to_ascii_uppercase()))
    }

    fn data(&self) -> Result<figment::value::Map<figment::Profile, figment::value::Dict>, figment::Error> {
        let dict = self
            .0
            .iter()
            .map(|(key, value)| {
                let value = if TEXT_KEYS.contains(&key.as_str()) {
                    figment::value::Value::from(value.clone())
                } else {
                    let Ok(read) = value.parse();
                    read
                };
                (key.clone(), value)
            })
            .collect();
        Ok(figment::Profile::Default.collect(dict))
    }
}

impl Settings {
    /// Reads the layers from the process environment.
    pub fn load() -> anyhow::Result<Self> {
        let mut fig = Figment::from(Toml::string(DEFAULTS));
        match std::env::var_os("KOLINK_CONFIG") {
            Some(path) => {
                let path = PathBuf::from(path);
                if !path.is_file() {
                    bail!("KOLINK_CONFIG names {}, which is not a readable file", path.display());
                }
                fig = fig.merge(Toml::file(path));
            }
            None => fig = fig.merge(Toml::file("config/kolink.toml")),
        }
        // A `KOLINK_*` variable that names no setting is warned about and left out: other
        // tools (a benchmark's KOLINK_BIN) share the prefix, and a typo is still seen.
        let keys = Self::keys();
        for (name, _) in std::env::vars_os().filter_map(|(k, v)| Some((k.into_string().ok()?, v))) {
            if let Some(key) = name.strip_prefix("KOLINK_") {
                let key = key.to_ascii_lowercase();
                if key != "config" && !keys.contains(&key) {
                    eprintln!("kolink: warning: {name} is not a setting kolink knows, and is ignored (settings: config/default.toml)");
                }
            }
        }
        let env = Env::prefixed("KOLINK_")
            .ignore(&["config"])
            .filter(move |k| keys.iter().any(|known| known.eq_ignore_ascii_case(k.as_str())));
        let fig = fig.merge(EnvLayer(env.iter().map(|(k, v)| (k.as_str().to_owned(), v)).collect()));
        let settings: Settings = fig.extract().context("Failed to read the settings")?;
        settings.validate()
    }

    /// Every setting's key, as files and `KOLINK_*` variables (lower-cased) name it.
    pub fn keys() -> Vec<String> {
        match serde_json::to_value(Self::defaults()) {
            Ok(serde_json::Value::Object(fields)) => fields.keys().cloned().collect(),
            _ => Vec::new(),
        }
    }

    /// The defaults alone, for tests and tools.
    pub fn defaults() -> Self {
        Figment::from(Toml::string(DEFAULTS))
            .extract()
            .expect("the compiled-in defaults are valid")
    }

    pub fn validate(self) -> anyhow::Result<Self> {
        Currency::parse_listed(&self.default_currency).map_err(|e| anyhow::anyhow!("default_currency: {e}"))?;
        if let Some(u) = &self.public_url {
            let parsed = url::Url::parse(u).with_context(|| format!("public_url {u:?} is not a URL"))?;
            if parsed.scheme() != "http" && parsed.scheme() != "https" {
                bail!("public_url must be an http:// or https:// URL");
            }
        }
        if self.redis_url.is_some() && self.redis_cluster.is_some() {
            bail!("set redis_url (KOLINK_REDIS_URL) or redis_cluster (KOLINK_REDIS_CLUSTER), not both");
        }
        if self.storage() == StorageKind::Redis && self.redis_target().is_none() {
            bail!("storage is redis but neither redis_url (KOLINK_REDIS_URL) nor redis_cluster (KOLINK_REDIS_CLUSTER) is set");
        }
        if let Some(crate::store::redis::Target::Cluster(seeds)) = self.redis_target() {
            if seeds.is_empty() {
                bail!("redis_cluster names no seed: give redis://host:port URLs separated by commas");
            }
            for seed in &seeds {
                let u =
                    url::Url::parse(seed).with_context(|| format!("redis_cluster: {seed:?} is not a redis:// URL"))?;
                if u.scheme() != "redis" || u.host_str().is_none() {
                    bail!("redis_cluster: {seed:?} is not a redis://host:port URL (TLS is not built in)");
                }
            }
        }
        if self.admin_token.as_ref().is_some_and(|t| t.len() < 16) {
            bail!("admin_token must be at least 16 characters");
        }
        if self.metrics_token.as_ref().is_some_and(|t| t.len() < 16) {
            bail!("metrics_token must be at least 16 characters");
        }
        if let Err(e) = self.log.parse::<tracing_subscriber::filter::Targets>() {
            bail!(
                "log {:?} is not a log filter, e.g. \"info\" or \"warn,kolink=debug\" ({e})",
                self.log
            );
        }
        if self.workers == Some(0) {
            bail!("workers must be at least 1 (or left out: one per CPU core)");
        }
        if self.trusted_proxies == 0 {
            bail!("trusted_proxies must be at least 1 (the proxy that sets client_ip_header)");
        }
        if self.spool_max_mb == 0 {
            bail!("spool_max_mb must be at least 1");
        }
        if self.hourly_retention_days > crate::hours::MAX_RETENTION_DAYS {
            bail!(
                "hourly_retention_days must be at most {} (0 keeps every hour)",
                crate::hours::MAX_RETENTION_DAYS
            );
        }
        if u64::from(self.click_retention_days) < u64::from(self.default_attribution_window_days) {
            bail!(
                "click_retention_days (KOLINK_CLICK_RETENTION_DAYS, {}) must be at least default_attribution_window_days (KOLINK_DEFAULT_ATTRIBUTION_WINDOW_DAYS, {}): clicks are kept as long as a window looks back",
                self.click_retention_days,
                self.default_attribution_window_days
            );
        }
        Ok(self)
    }

    /// Where clicks wait while the store does not answer.
    pub fn spool_dir(&self) -> PathBuf {
        self.spool_dir.clone().unwrap_or_else(|| self.data_dir.join("spool"))
    }

    pub fn storage(&self) -> StorageKind {
        self.storage
            .unwrap_or(if self.redis_url.is_some() || self.redis_cluster.is_some() {
                StorageKind::Redis
            } else {
                StorageKind::Embedded
            })
    }

    /// The Redis the settings name: one server or a cluster's seeds.
    pub fn redis_target(&self) -> Option<crate::store::redis::Target> {
        use crate::store::redis::Target;
        match (&self.redis_url, &self.redis_cluster) {
            (Some(url), _) => Some(Target::Single(url.clone())),
            (None, Some(seeds)) => Some(Target::Cluster(
                seeds
                    .split(',')
                    .map(str::trim)
                    .filter(|s| !s.is_empty())
                    .map(str::to_owned)
                    .collect(),
            )),
            (None, None) => None,
        }
    }

    /// Base of short URLs, without a trailing slash; `bound` is the address actually bound.
    pub fn public_base(&self, bound: std::net::SocketAddr) -> String {
        match &self.public_url {
            Some(u) => u.trim_end_matches('/').to_owned(),
            None => format!("http://{bound}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::redis::Target;

    #[test]
    fn a_cluster_is_named_by_its_seeds_and_is_redis_storage() {
        let mut s = Settings::defaults();
        s.redis_cluster = Some("redis://10.0.0.1:6379, redis://10.0.0.2:6379,".into());
        let s = s.validate().unwrap();
        assert_eq!(s.storage(), StorageKind::Redis);
        match s.redis_target() {
            Some(Target::Cluster(seeds)) => assert_eq!(seeds, ["redis://10.0.0.1:6379", "redis://10.0.0.2:6379"]),
            other => panic!("{other:?}"),
        }
    }

    fn with_env(vars: &[(&str, &str)]) -> Result<Settings, String> {
        let vars = vars.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect();
        Figment::from(Toml::string(DEFAULTS))
            .merge(EnvLayer(vars))
            .extract()
            .map_err(|e| e.to_string())
    }

    #[test]
    fn a_variable_gives_a_text_setting_its_value_as_written() {
        for key in TEXT_KEYS.iter().filter(|k| **k != "storage") {
            for value in ["12345678901234567890", "\"quoted-token-0123456789\"", "[abc]", "true"] {
                let s = with_env(&[(key, value)]).unwrap_or_else(|e| panic!("{key}={value}: {e}"));
                assert_eq!(serde_json::to_value(&s).unwrap()[*key], value, "{key}");
            }
        }
        let s = with_env(&[("click_retention_days", "500"), ("workers", "3")]).unwrap();
        assert_eq!((s.click_retention_days, s.workers), (500, Some(3)));
        let e = with_env(&[("click_retention_days", "many")]).unwrap_err();
        assert!(e.contains("KOLINK_CLICK_RETENTION_DAYS"), "{e}");
    }

    #[test]
    fn every_setting_that_takes_text_is_listed_as_text() {
        for key in Settings::keys() {
            let takes_text = Figment::from(Toml::string(DEFAULTS))
                .merge(Toml::string(&format!("{key} = \"x\"")))
                .extract::<Settings>()
                .is_ok();
            assert!(
                !takes_text || TEXT_KEYS.contains(&key.as_str()),
                "{key} takes text: list it in TEXT_KEYS"
            );
        }
    }

    #[test]
    fn zero_workers_is_refused_with_a_reason() {
        let mut s = Settings::defaults();
        s.workers = Some(0);
        assert!(s.validate().unwrap_err().to_string().contains("workers"));
    }

    #[test]
    fn at_least_one_proxy_sets_the_client_address_header() {
        assert_eq!(Settings::defaults().trusted_proxies, 1);
        let mut s = Settings::defaults();
        s.trusted_proxies = 0;
        assert!(s.validate().unwrap_err().to_string().contains("trusted_proxies"));
    }

    #[test]
    fn hours_are_kept_90_days_and_at_most_a_century() {
        assert_eq!(Settings::defaults().hourly_retention_days, 90);
        let mut s = Settings::defaults();
        s.hourly_retention_days = 36_500;
        assert!(s.validate().is_ok());
        let mut s = Settings::defaults();
        s.hourly_retention_days = 36_501;
        assert!(s.validate().unwrap_err().to_string().contains("hourly_retention_days"));
    }

    #[test]
    fn a_log_filter_names_levels_by_target_and_a_bad_one_is_refused() {
        for good in ["info", "warn,kolink=debug", "kolink::http=trace"] {
            let mut s = Settings::defaults();
            s.log = good.into();
            assert!(s.validate().is_ok(), "{good}");
        }
        let mut s = Settings::defaults();
        s.log = "kolink=loud".into();
        assert!(s.validate().unwrap_err().to_string().contains("not a log filter"));
    }

    #[test]
    fn a_url_and_a_cluster_together_or_a_bad_seed_are_refused() {
        let mut s = Settings::defaults();
        s.redis_url = Some("redis://127.0.0.1:6379/0".into());
        s.redis_cluster = Some("redis://127.0.0.1:7000".into());
        assert!(s.validate().unwrap_err().to_string().contains("not both"));
        let mut s = Settings::defaults();
        s.redis_cluster = Some("http://127.0.0.1:7000".into());
        assert!(s.validate().unwrap_err().to_string().contains("redis_cluster"));
        let mut s = Settings::defaults();
        s.redis_cluster = Some("not a url".into());
        assert!(s.validate().unwrap_err().to_string().contains("redis_cluster"));
    }
}
