# syntax=docker/dockerfile:1
# Build stage: compile the release binary.
FROM rust:1-slim-bookworm AS build
WORKDIR /src
COPY Cargo.toml Cargo.lock ./
COPY src ./src
COPY config ./config
COPY tests ./tests
RUN cargo build --release --locked --bin kolink

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
