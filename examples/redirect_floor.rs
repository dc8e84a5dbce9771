//! The floor of a redirect on kolink's HTTP stack, for `scripts/bench-redirect floor`: actix-web
//! with kolink's server settings and allocator, answering every `GET` with the `302` kolink
//! sends (the same headers, a location of the same length), and doing nothing else: no link
//! lookup, no classification, no click written. What kolink spends per click above this is its
//! own work; what this spends is the stack's.
//!
//!   cargo run --release --example redirect_floor -- 127.0.0.1:8080

#[cfg(feature = "mimalloc")]
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

use actix_web::http::header::{CACHE_CONTROL, LOCATION};
use actix_web::{web, App, HttpResponse, HttpServer};

const LOCATION_VALUE: &str = "https://shop.example.com/p?ref=bench&utm_source=instagram&utm_medium=kol&utm_campaign=bench&utm_content=amy&kl_cid=1-mxdmi5pn-8z43wvngr28";

#[actix_web::main]
async fn main() -> std::io::Result<()> {
    let listen = std::env::args().nth(1).unwrap_or_else(|| "127.0.0.1:8080".to_owned());
    HttpServer::new(|| {
        App::new().default_service(web::to(|| async {
            HttpResponse::Found()
                .insert_header((LOCATION, LOCATION_VALUE))
                .insert_header((CACHE_CONTROL, "private, no-store"))
                .finish()
        }))
    })
    .client_request_timeout(std::time::Duration::from_secs(10))
    .client_disconnect_timeout(std::time::Duration::from_secs(1))
    .bind(listen)?
    .run()
    .await
}
