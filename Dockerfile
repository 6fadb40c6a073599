# dealsync: multi-stage build on Debian bookworm. The build stage uses the project's Makefile; the
# runtime stage holds the binary and its shared libraries only, and runs as a non-root user.
FROM docker.io/library/debian:bookworm-slim AS build
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
      build-essential pkg-config ca-certificates \
      libmicrohttpd-dev libcurl4-openssl-dev libcjson-dev libpq-dev libxml2-dev libssl-dev \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY Makefile ./
COPY scripts ./scripts
COPY include ./include
COPY service ./service
COPY migrations ./migrations
RUN make build/dealsync && strip build/dealsync

FROM docker.io/library/debian:bookworm-slim
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
      ca-certificates libmicrohttpd12 libcurl4 libcjson1 libpq5 libxml2 libssl3 \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --uid 10001 --no-create-home --shell /usr/sbin/nologin dealsync
COPY --from=build /src/build/dealsync /usr/local/bin/dealsync
USER dealsync
ENV PORT=8080 BIND_ADDRESS=0.0.0.0
EXPOSE 8080
HEALTHCHECK --interval=15s --timeout=5s --start-period=10s --retries=3 \
  CMD ["/usr/local/bin/dealsync", "healthcheck"]
ENTRYPOINT ["/usr/local/bin/dealsync"]
CMD ["serve"]
