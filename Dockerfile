# dealsync: multi-stage build on Debian bookworm. The build stage uses the project's Makefile and
# gathers into /rootfs exactly what the binary loads (ldd: its shared libraries and the dynamic
# loader), the CA certificates libcurl verifies the CRMs' TLS with, and a passwd entry for the
# non-root user. The runtime image is that tree FROM scratch: no shell, no package manager.
FROM docker.io/library/debian:bookworm-slim AS build
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
      build-essential pkg-config ca-certificates \
      libmicrohttpd-dev libcurl4-openssl-dev libcjson-dev libpq-dev libxml2-dev libssl-dev \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY Makefile ./
COPY scripts/embed-migrations.sh ./scripts/
COPY include ./include
COPY service ./service
COPY migrations ./migrations
RUN make -j"$(nproc)" build/dealsync && strip build/dealsync
RUN set -e; \
    mkdir -p /rootfs/usr/local/bin /rootfs/etc/ssl/certs /rootfs/tmp; \
    cp build/dealsync /rootfs/usr/local/bin/dealsync; \
    ldd build/dealsync | awk '$2 == "=>" && $3 ~ /^\// {print $3} $1 ~ /^\// {print $1}' \
      | sort -u | xargs -I{} cp --parents -L {} /rootfs/; \
    cp /etc/ssl/certs/ca-certificates.crt /rootfs/etc/ssl/certs/; \
    echo 'dealsync:x:10001:10001:dealsync:/nonexistent:/nonexistent' >/rootfs/etc/passwd; \
    echo 'dealsync:x:10001:' >/rootfs/etc/group; \
    printf 'passwd: files\ngroup: files\nhosts: files dns\n' >/rootfs/etc/nsswitch.conf; \
    chmod 1777 /rootfs/tmp

FROM scratch
COPY --from=build /rootfs/ /
USER 10001:10001
ENV PORT=8080 BIND_ADDRESS=0.0.0.0
EXPOSE 8080
HEALTHCHECK --interval=15s --timeout=5s --start-period=10s --retries=3 \
  CMD ["/usr/local/bin/dealsync", "healthcheck"]
ENTRYPOINT ["/usr/local/bin/dealsync"]
CMD ["serve"]
