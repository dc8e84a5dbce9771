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
fn bad_settings_stop_the_start_with_a_clear_message() {
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_kolink"))
        .env("KOLINK_CONFIG", dir.path().join("missing.toml"))
        .env("KOLINK_DATA_DIR", dir.path())
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("not a readable file"));

    let config = dir.path().join("kolink.toml");
    std::fs::write(&config, "listen = \"127.0.0.1:0\"\ndefault_currency = \"dollars\"\n").unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_kolink"))
        .env("KOLINK_CONFIG", &config)
        .env("KOLINK_DATA_DIR", dir.path())
        .env_remove("KOLINK_REDIS_URL")
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("default_currency"),
        "{:?}",
        out
    );
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
