# syntax=docker/dockerfile:1
#
# sessionmon: one static binary in a distroless image, run as a non-root user.
#
#   docker build --build-arg VERSION=v1.2.3 --build-arg REVISION=$(git rev-parse --short=12 HEAD) -t sessionmon .
#
# No secret is passed at build time: passwords and tokens reach the container
# at run time as SESSIONMON_*_FILE files (docker-compose.yml uses secrets).

ARG GO_VERSION=1.26

FROM golang:${GO_VERSION} AS build
WORKDIR /src
COPY go.mod go.sum ./
# The Go SDK is a module of its own that the server's go.mod replaces with ./sdk.
COPY sdk/go.mod sdk/go.sum ./sdk/
RUN --mount=type=cache,target=/go/pkg/mod go mod download
COPY . .
ARG VERSION=dev
ARG REVISION=
# -buildvcs=false: the build context has no .git; the commit comes from REVISION.
RUN --mount=type=cache,target=/go/pkg/mod --mount=type=cache,target=/root/.cache/go-build \
    CGO_ENABLED=0 go build -trimpath -buildvcs=false \
      -ldflags "-s -w -X main.version=${VERSION} -X main.revision=${REVISION}" \
      -o /out/sessionmon ./cmd/sessionmon \
 && mkdir -p /out/data

# distroless static, nonroot variant: no shell, no package manager, UID 65532.
FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/sessionmon /usr/local/bin/sessionmon
COPY --from=build --chown=65532:65532 /out/data /var/lib/sessionmon
USER 65532:65532
# 8080: the dashboard and serve's HTTP intake; 9477: /metrics, /healthz and
# /readyz.
ENV SESSIONMON_DATA_DIR=/var/lib/sessionmon \
    SESSIONMON_DASHBOARD_ADDR=0.0.0.0:8080 \
    SESSIONMON_METRICS_ADDR=0.0.0.0:9477 \
    SESSIONMON_LOG_FORMAT=json
VOLUME ["/var/lib/sessionmon"]
EXPOSE 8080 9477
# `sessionmon health` asks /readyz on SESSIONMON_METRICS_ADDR (a wildcard
# address is probed on loopback): no shell or curl needed in the image.
HEALTHCHECK --interval=10s --timeout=6s --start-period=30s --retries=3 \
    CMD ["/usr/local/bin/sessionmon", "health"]
ENTRYPOINT ["/usr/local/bin/sessionmon"]
CMD ["serve"]
