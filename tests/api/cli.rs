//! The binary: help, bad commands and bad settings, and the generated admin token.

use std::process::Command;

use crate::helpers::{settings_for, start, Backend, Backing};

fn kolink(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_kolink"))
        .args(args)
        .env_remove("KOLINK_REDIS_URL")
        .env_remove("KOLINK_CONFIG")
        .output()
        .expect("run the kolink binary")
}

#[test]
fn help_lists_the_commands_and_unknown_commands_fail() {
    let out = kolink(&["--help"]);
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("kolink [serve]"), "{text}");
    let out = kolink(&["frobnicate"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("unknown command 'frobnicate'"));
}

#[test]
fn help_after_a_command_is_help_and_not_a_start() {
    // A bad log filter too: a kolink that started instead would stop at it rather than serve.
    let run = |args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_kolink"))
            .args(args)
            .env("KOLINK_LOG", "kolink=loud")
            .env_remove("KOLINK_CONFIG")
            .output()
            .expect("run the kolink binary")
    };
    let out = run(&["serve", "--help"]);
    assert!(out.status.success(), "{out:?}");
    assert!(String::from_utf8_lossy(&out.stdout).contains("kolink [serve]"));
    let out = run(&["tail", "--help"]);
    assert!(out.status.success(), "{out:?}");
    assert!(String::from_utf8_lossy(&out.stdout).contains("--group"));
    let out = run(&["serve", "--port", "9"]);
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    assert!(String::from_utf8_lossy(&out.stderr).contains("'--port'"));
}

/// kolink started with the settings file `text`, in `dir` (its data there too).
fn with_settings_file(dir: &std::path::Path, text: &str) -> std::process::Output {
    let config = dir.join("kolink.toml");
    std::fs::write(&config, text).unwrap();
    Command::new(env!("CARGO_BIN_EXE_kolink"))
        .env("KOLINK_CONFIG", &config)
        .env("KOLINK_DATA_DIR", dir)
        .env_remove("KOLINK_REDIS_URL")
        .output()
        .unwrap()
}

#[test]
fn bad_settings_stop_the_start_with_a_clear_message() {
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_kolink"))
        .env("KOLINK_CONFIG", dir.path().join("missing.toml"))
        .env("KOLINK_DATA_DIR", dir.path())
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("not a readable file"));

    let out = with_settings_file(dir.path(), "listen = \"127.0.0.1:0\"\ndefault_currency = \"dollars\"\n");
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("default_currency"),
        "{:?}",
        out
    );
}

/// A misspelt setting is not silently dropped (with `redis_ulr`, kolink started on its own
/// embedded store while its siblings shared a Redis): in a settings file it stops the start,
/// naming it; as a `KOLINK_*` variable (which other tools may set too) it is warned about.
#[test]
fn a_misspelt_setting_is_named() {
    let dir = tempfile::tempdir().unwrap();
    // (A bad log filter too, so that a kolink that took the file would stop rather than serve.)
    let file = "listen = \"127.0.0.1:0\"\nredis_ulr = \"redis://127.0.0.1:1/0\"\nlog = \"kolink=loud\"\n";
    let out = with_settings_file(dir.path(), file);
    assert!(!out.status.success());
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(said.contains("redis_ulr") && said.contains("redis_url"), "{said}");

    // As a variable: a warning, then the start goes on (here to a log filter that stops it).
    let out = Command::new(env!("CARGO_BIN_EXE_kolink"))
        .env("KOLINK_REDIS_ULR", "redis://127.0.0.1:1/0")
        .env("KOLINK_LOG", "kolink=loud")
        .env("KOLINK_DATA_DIR", dir.path())
        .env_remove("KOLINK_CONFIG")
        .env_remove("KOLINK_REDIS_URL")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(said.contains("KOLINK_REDIS_ULR is not a setting"), "{said}");
    assert!(said.contains("log"), "the start went on to the next check: {said}");
}

per_store!(a_generated_admin_token_is_shown_once_and_kept);
/// With no token configured, one is generated at the first start, works, is kept with the data
/// and is not generated (nor shown) again.
async fn a_generated_admin_token_is_shown_once_and_kept(backend: Backend) {
    let backing = Backing::new(backend);
    let mut settings = settings_for(&backing);
    settings.admin_token = None;

    let app = start(backing, settings).await;
    let token = app.generated_admin_token.clone().expect("a token at the first start");
    assert_eq!(app.get_as("/api/v1/campaigns", &token).await.status(), 200);

    let (backing, settings) = app.stop().await;
    let app = start(backing, settings).await;
    assert_eq!(app.generated_admin_token, None, "generated only once");
    let ok = app.get_as("/api/v1/campaigns", &token).await;
    assert_eq!(ok.status(), 200, "the token survives a restart");
    assert_eq!(app.get_as("/api/v1/campaigns", "kl_guess").await.status(), 401);
}

per_store!(a_first_start_that_fails_generates_no_token_it_could_not_show);
/// A first start that fails (the port is taken) must not keep a token it never printed: the
/// next start generates and shows one, or the operator would be locked out.
async fn a_first_start_that_fails_generates_no_token_it_could_not_show(backend: Backend) {
    let backing = Backing::new(backend);
    let mut settings = settings_for(&backing);
    settings.admin_token = None;
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    settings.listen = taken.local_addr().unwrap().to_string();
    let failed = kolink::startup::Application::build_with_faults(
        settings.clone(),
        std::sync::Arc::new(kolink::clock::SystemClock),
        backing.faults.clone(),
    )
    .await;
    let error = failed.err().expect("the port is taken");
    assert!(format!("{error:#}").contains("Failed to bind"), "{error:#}");
    settings.listen = "127.0.0.1:0".into();
    let app = start(backing, settings).await;
    let token = app
        .generated_admin_token
        .clone()
        .expect("a token shown at the first start that ran");
    assert_eq!(app.get_as("/api/v1/campaigns", &token).await.status(), 200);
}

per_store!(a_start_whose_click_retention_is_shorter_than_a_campaigns_window_is_refused);
/// Clicks are trimmed past `click_retention_days`, by every process of a store: one started
/// with a retention shorter than a stored campaign's attribution window would trim clicks
/// that campaign's purchases still need (for every process), so it does not start.
async fn a_start_whose_click_retention_is_shorter_than_a_campaigns_window_is_refused(backend: Backend) {
    let backing = Backing::new(backend);
    let settings = settings_for(&backing);
    let app = start(backing, settings).await;
    app.post_expect(
        "/api/v1/campaigns",
        &serde_json::json!({"id": "long", "name": "Long", "attribution_window_days": 30}),
        201,
    )
    .await;
    let (backing, mut settings) = app.stop().await;
    settings.click_retention_days = 7;
    settings.default_attribution_window_days = 7;
    let refused = kolink::startup::Application::build_with_faults(
        settings.clone(),
        std::sync::Arc::new(kolink::clock::SystemClock),
        backing.faults.clone(),
    )
    .await;
    let error = format!("{:#}", refused.err().expect("refused"));
    assert!(
        error.contains("click_retention_days (7)") && error.contains("'long'") && error.contains("30"),
        "{error}"
    );
    settings.click_retention_days = 30;
    let app = start(backing, settings).await;
    assert_eq!(app.get("/api/v1/campaigns/long").await.status(), 200);
}

/// A kolink started before its Redis (a compose file that starts both at once, a host that
/// reboots) waits for it, rather than exiting before Redis listens.
#[tokio::test]
async fn a_start_waits_for_a_redis_that_is_not_up_yet() {
    let mut backing = Backing::new(Backend::Redis);
    let settings = settings_for(&backing);
    backing.redis.as_mut().unwrap().kill();
    let starting = tokio::spawn(kolink::startup::Application::build_with_faults(
        settings,
        std::sync::Arc::new(kolink::clock::SystemClock),
        backing.faults.clone(),
    ));
    tokio::time::sleep(std::time::Duration::from_secs(3)).await;
    assert!(!starting.is_finished(), "it waits for Redis");
    backing.redis.as_mut().unwrap().start_again();
    let app = tokio::time::timeout(std::time::Duration::from_secs(30), starting)
        .await
        .expect("started once Redis was up")
        .unwrap()
        .expect("started");
    assert!(app.port() > 0);
}

/// A first start makes the data directory, its spool inside it by default: both are kolink's
/// user's alone, like the files in them (the spool, made first, once left the directory 755).
#[tokio::test]
async fn a_first_start_makes_its_data_directory_for_kolinks_user_alone() {
    use std::os::unix::fs::PermissionsExt;
    let backing = Backing::new(Backend::Embedded);
    let mut settings = settings_for(&backing);
    let parent = tempfile::tempdir().unwrap();
    settings.data_dir = parent.path().join("data");
    settings.spool_dir = None;
    let app = start(backing, settings.clone()).await;
    let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&settings.data_dir), 0o700, "the data directory");
    assert_eq!(mode(&settings.data_dir.join("spool")), 0o700, "the spool's directory");
    assert_eq!(mode(&settings.data_dir.join("kolink.redb")), 0o600, "the database");
    drop(app);
}

/// The operator's log says which version started, and that a stop finished its work: its
/// clicks written (or spooled) and its store closed.
#[tokio::test]
async fn a_start_names_its_version_and_a_stop_says_it_finished() {
    let backing = Backing::new(Backend::Embedded);
    let port = crate::helpers::free_port();
    let child = Command::new(env!("CARGO_BIN_EXE_kolink"))
        .arg("serve")
        .env_remove("KOLINK_REDIS_URL")
        .env_remove("KOLINK_CONFIG")
        .env("KOLINK_LISTEN", format!("127.0.0.1:{port}"))
        .env("KOLINK_ADMIN_TOKEN", crate::helpers::TOKEN)
        .env("KOLINK_LOG", "info")
        .env("KOLINK_STORAGE", "embedded")
        .env("KOLINK_DATA_DIR", backing.data.as_ref().unwrap().path())
        .env("KOLINK_SPOOL_DIR", backing.spool.path())
        .env("KOLINK_SPOOL_MAX_MB", "16")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("start the kolink binary");
    let base = format!("http://127.0.0.1:{port}");
    crate::crash::wait_healthy(&reqwest::Client::new(), &base).await;
    let stopped = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(stopped.success());
    let out = tokio::task::spawn_blocking(move || child.wait_with_output().unwrap())
        .await
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let started = format!("kolink {} listening on", env!("CARGO_PKG_VERSION"));
    assert!(stdout.contains(&started), "{stdout}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("kolink stopped"), "{stderr}");
}

/// The image's first stage builds the dependencies from `Cargo.toml` and stand-in sources, and
/// cargo reads every target the manifest names: each needs a stand-in there, and its real
/// source copied in the second stage (the image did not build once a bench was added).
#[test]
fn the_dockerfile_stands_in_for_and_copies_every_target_the_manifest_names() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let manifest = std::fs::read_to_string(root.join("Cargo.toml")).unwrap();
    let dockerfile = std::fs::read_to_string(root.join("Dockerfile")).unwrap();
    let benches: Vec<&str> = manifest
        .split("[[bench]]")
        .skip(1)
        .filter_map(|table| {
            table
                .lines()
                .find_map(|l| l.trim().strip_prefix("name = ").map(|n| n.trim_matches('"')))
        })
        .collect();
    assert!(!benches.is_empty(), "the manifest names its benches");
    for bench in benches {
        assert!(
            dockerfile.contains(&format!("benches/{bench}.rs")),
            "a stand-in for the bench {bench}"
        );
    }
    for dir in ["src", "benches", "config", "templates"] {
        assert!(
            dockerfile.contains(&format!("COPY {dir} ./{dir}")),
            "{dir} copied into the build"
        );
    }
}
