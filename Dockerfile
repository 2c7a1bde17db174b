# Production image of Ledgerdesk: the panel built with Node.js, the binary (embedding it) with
# the Rust toolchain, run on a slim Debian.
FROM node:22-bookworm-slim AS panel
WORKDIR /src/panel
COPY panel/package.json panel/package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY schema.graphql /src/schema.graphql
COPY panel/ ./
RUN npm run build

FROM rust:1.95-bookworm AS build
WORKDIR /src
COPY . .
COPY --from=panel /src/panel/dist panel/dist
RUN cargo build --release --locked --bin ledgerdesk

FROM debian:bookworm-slim
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --uid 10001 --no-create-home ledgerdesk \
    && install -d -o ledgerdesk -m 0700 /var/lib/ledgerdesk
COPY --from=build /src/target/release/ledgerdesk /usr/local/bin/ledgerdesk
USER ledgerdesk
ENV LEDGERDESK_BIND=0.0.0.0:8080 \
    LEDGERDESK_LOG_FORMAT=json \
    LEDGERDESK_DATA_DIR=/var/lib/ledgerdesk \
    LEDGERDESK_ANCHOR_KEY_FILE=/var/lib/ledgerdesk/anchor.key
EXPOSE 8080
ENTRYPOINT ["ledgerdesk"]
CMD ["serve"]
