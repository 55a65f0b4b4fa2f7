# voucherd in a container: built in one stage, run from a small one as a non-root user, the store
# in a volume. Build: docker build -t voucherd .
# Run:   docker run -p 8080:8080 -v voucherd-data:/var/lib/voucherd voucherd
# (the first start prints the console URL and the admin's password; set VOUCHERD_ADMIN_PASSWORD
# to choose it, and VOUCHERD__HTTP__PUBLIC_URL to the address users reach).

FROM rust:1-bookworm AS build
WORKDIR /src
COPY . .
RUN cargo build --release --locked --bin voucherd \
    && strip target/release/voucherd

FROM debian:bookworm-slim
# CA certificates: TLS to networks, SMTP, SMS and providers checks against the system's roots.
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --uid 10001 --home-dir /var/lib/voucherd --shell /usr/sbin/nologin voucherd \
    && mkdir -p /var/lib/voucherd \
    && chown voucherd:voucherd /var/lib/voucherd
COPY --from=build /src/target/release/voucherd /usr/local/bin/voucherd
USER voucherd
WORKDIR /var/lib/voucherd
VOLUME ["/var/lib/voucherd"]
ENV VOUCHERD__HTTP__BIND=0.0.0.0:8080 \
    VOUCHERD__STORE__PATH=/var/lib/voucherd/data
EXPOSE 8080
# SIGTERM drains requests and flushes the store (allow it up to 45 s: docker stop -t 45).
STOPSIGNAL SIGTERM
ENTRYPOINT ["/usr/local/bin/voucherd"]
