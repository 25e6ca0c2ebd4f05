# syntax=docker/dockerfile:1
# hostpatrol image: `make image` (docker build -t hostpatrol:$(VERSION) --build-arg VERSION=...
# --build-arg COMMIT=... .). The build context has no .git (.dockerignore), so the version and
# commit come in as build args and override the Makefile's `git describe`.

# ---- builder: the same Debian and -dev packages as tests/tools/deps.sh builds with
FROM debian:bookworm AS builder
RUN apt-get update \
    && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
       build-essential pkg-config make git xxd \
       libcurl4-openssl-dev libjansson-dev libyaml-dev libwebsockets-dev libssl-dev libpcre2-dev \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY Makefile ./
COPY include/ include/
COPY controller/ controller/
ARG VERSION=0.0.0-dev
ARG COMMIT=unknown
RUN make -j"$(nproc)" VERSION="$VERSION" COMMIT="$COMMIT" build/hostpatrol \
    && ./build/hostpatrol version

# ---- runtime: exactly the packages owning the binary's NEEDED libraries (libc6 is in the base
# image), plus ca-certificates. tests/integration/test-image.sh checks this list against
# `readelf -d build/hostpatrol`.
FROM debian:bookworm-slim
ARG VERSION=0.0.0-dev
ARG COMMIT=unknown
# The repository URL: pass --build-arg SOURCE_URL=https://... (no default is guessed).
ARG SOURCE_URL=""
LABEL org.opencontainers.image.title="hostpatrol" \
      org.opencontainers.image.description="Kubernetes operator running host inspections, results in etcd" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${COMMIT}" \
      org.opencontainers.image.source="${SOURCE_URL}"
RUN apt-get update \
    && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
       ca-certificates libcurl4 libjansson4 libpcre2-8-0 libssl3 libwebsockets17 libyaml-0-2 \
    && rm -rf /var/lib/apt/lists/* \
    && groupadd --system --gid 65532 hostpatrol \
    && useradd --system --uid 65532 --gid 65532 --no-create-home --home-dir /nonexistent \
       --shell /usr/sbin/nologin hostpatrol
COPY --from=builder /src/build/hostpatrol /usr/local/bin/hostpatrol
USER 65532:65532
ENTRYPOINT ["/usr/local/bin/hostpatrol"]
CMD ["controller"]
