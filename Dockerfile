# syntax=docker/dockerfile:1
# Build stage: compile the release binary.
FROM rust:1-slim-bookworm AS build
WORKDIR /src
# Dependencies first, in a layer of their own: a change to src/ does not rebuild them. The
# stand-in sources (every target Cargo.toml names, the bench too: cargo reads them all) are
# removed with kolink's own build outputs before the real build.
COPY Cargo.toml Cargo.lock ./
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    mkdir src benches && echo 'fn main() {}' > src/main.rs && touch src/lib.rs \
 && echo 'fn main() {}' > benches/prune_hours.rs \
 && cargo build --release --locked --bin kolink \
 && rm -rf src benches target/release/kolink* target/release/deps/kolink-* target/release/deps/libkolink-* \
           target/release/.fingerprint/kolink-*
COPY config ./config
COPY templates ./templates
COPY benches ./benches
COPY src ./src
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    cargo build --release --locked --bin kolink

# Runtime stage: the binary, its config, a non-root user.
FROM debian:bookworm-slim
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --uid 10001 --home-dir /var/lib/kolink --create-home kolink
WORKDIR /app
COPY --from=build /src/target/release/kolink /usr/local/bin/kolink
COPY config ./config
ENV KOLINK_LISTEN=0.0.0.0:8080 \
    KOLINK_DATA_DIR=/var/lib/kolink
USER kolink
EXPOSE 8080
VOLUME ["/var/lib/kolink"]
ENTRYPOINT ["kolink"]
CMD ["serve"]
