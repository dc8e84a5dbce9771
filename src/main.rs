//! The `kolink` binary: settings → telemetry → application → run.

use kolink::config::Settings;

#[cfg(feature = "mimalloc")]
#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;
use kolink::startup::Application;

const USAGE: &str = "\
kolink: short links, click tracking and conversion attribution for KOL marketing

Usage:
  kolink [serve]     start the server (the default)
  kolink tail --group NAME [--consumer NAME] [--once]
                     stream clicks and conversions as NDJSON (Redis consumer group)
  kolink --help      show this help
  kolink --version   show the version

Settings come from config/kolink.toml (or the file KOLINK_CONFIG names) and KOLINK_*
environment variables; see config/default.toml for every key.";

#[actix_web::main]
async fn main() -> std::process::ExitCode {
    let arg = std::env::args().nth(1);
    match arg.as_deref() {
        None | Some("serve") => {
            // `serve` takes no options: its settings come from the file and the environment.
            match std::env::args().nth(2).as_deref() {
                None => {}
                Some("-h" | "--help") => {
                    println!("{USAGE}");
                    return std::process::ExitCode::SUCCESS;
                }
                Some(other) => {
                    eprintln!("kolink serve: unknown argument '{other}' (settings come from KOLINK_* variables or the settings file)\n\n{USAGE}");
                    return std::process::ExitCode::from(2);
                }
            }
        }
        Some("-h" | "--help" | "help") => {
            println!("{USAGE}");
            return std::process::ExitCode::SUCCESS;
        }
        Some("-V" | "--version") => {
            println!("kolink {}", env!("CARGO_PKG_VERSION"));
            return std::process::ExitCode::SUCCESS;
        }
        Some("tail") => return tail().await,
        Some(other) => {
            eprintln!("kolink: unknown command '{other}'\n\n{USAGE}");
            return std::process::ExitCode::from(2);
        }
    }
    match serve().await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("kolink: {}", kolink::error::chain_text(&e));
            std::process::ExitCode::FAILURE
        }
    }
}

async fn tail() -> std::process::ExitCode {
    let args: Vec<String> = std::env::args().skip(2).collect();
    if args.iter().any(|a| a == "-h" || a == "--help") {
        println!("{}", kolink::tail::USAGE);
        return std::process::ExitCode::SUCCESS;
    }
    let opts = match kolink::tail::TailOptions::parse(&args) {
        Ok(o) => o,
        Err(e) => {
            eprintln!("kolink tail: {e}\n\n{}", kolink::tail::USAGE);
            return std::process::ExitCode::from(2);
        }
    };
    let run = async {
        let settings = Settings::load()?;
        kolink::telemetry::init_logs(&settings.log);
        kolink::tail::run(&settings, &opts, &mut std::io::stdout().lock()).await
    };
    match run.await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("kolink tail: {}", kolink::error::chain_text(&e));
            std::process::ExitCode::FAILURE
        }
    }
}

/// mimalloc keeps freed pages for `purge_delay` (1 s) and purges them only on later allocator
/// calls, so a process that goes quiet after a big report keeps that report's memory resident.
/// How long it should wait depends on the store:
/// - embedded (the single-box default, whose memory is the bound that matters): at once. Purging
///   costs an madvise per freed page run, which did not show in the redirect benchmark.
/// - Redis: 10 ms. Purging at once took about 15 % of a 10,000-link report's CPU (madvise, page
///   faults, TLB shootdowns, page by page); 10 ms made those reports 6–15 % faster and the
///   1,000-link ones 10–13 → 9–10 ms, for about 5 MiB more after a report (47 → 53 MiB).
///
/// `MIMALLOC_PURGE_DELAY` (or its older name) in the environment still wins.
#[cfg(feature = "mimalloc")]
fn tune_allocator(storage: kolink::config::StorageKind) {
    /// `mi_option_purge_delay` in mimalloc.h's `mi_option_e` (v3), which the sys crate leaves
    /// unnamed.
    const PURGE_DELAY: libmimalloc_sys::mi_option_t = 15;
    let delay_ms = match storage {
        kolink::config::StorageKind::Embedded => 0,
        kolink::config::StorageKind::Redis => 10,
    };
    if std::env::var_os("MIMALLOC_PURGE_DELAY").is_none() && std::env::var_os("MIMALLOC_RESET_DELAY").is_none() {
        // SAFETY: sets an integer option; mimalloc reads options at each use, from any thread.
        unsafe { libmimalloc_sys::mi_option_set(PURGE_DELAY, delay_ms) };
    }
}

async fn serve() -> anyhow::Result<()> {
    let settings = Settings::load()?;
    #[cfg(feature = "mimalloc")]
    tune_allocator(settings.storage());
    // Logs go to stderr; stdout carries the address and the token.
    kolink::telemetry::init_logs(&settings.log);
    let app = Application::build(settings.clone()).await?;
    let bound = format!(
        "{}:{}",
        settings.listen.rsplit_once(':').map(|(h, _)| h).unwrap_or("127.0.0.1"),
        app.port()
    );
    let storage = match settings.storage() {
        kolink::config::StorageKind::Embedded => {
            format!("embedded, {}", settings.data_dir.join("kolink.redb").display())
        }
        kolink::config::StorageKind::Redis => "redis".to_owned(),
    };
    println!(
        "kolink {} listening on http://{bound} (storage: {storage})",
        env!("CARGO_PKG_VERSION")
    );
    if let Some(token) = &app.generated_admin_token {
        println!("Admin token (shown once, keep it safe): {token}");
    }
    app.run_until_stopped().await?;
    tracing::info!("kolink stopped: its clicks written to the store or left in the spool, the store closed");
    Ok(())
}
