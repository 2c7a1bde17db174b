# Production image of Ledgerdesk: build with the Rust toolchain, run on a slim Debian.
FROM rust:1.95-bookworm AS build
WORKDIR /src
COPY . .
RUN cargo build --release --locked --bin ledgerdesk

FROM debian:bookworm-slim
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --uid 10001 --no-create-home ledgerdesk \
    && mkdir -p /var/lib/ledgerdesk \
    && chown ledgerdesk /var/lib/ledgerdesk
COPY --from=build /src/target/release/ledgerdesk /usr/local/bin/ledgerdesk
USER ledgerdesk
ENV LEDGERDESK_BIND=0.0.0.0:8080 \
    LEDGERDESK_LOG_FORMAT=json \
    LEDGERDESK_DATA_DIR=/var/lib/ledgerdesk
EXPOSE 8080
ENTRYPOINT ["ledgerdesk"]
CMD ["serve"]
