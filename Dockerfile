# jwkctl as a container: for the token agent (`jwkctl serve`) as a Kubernetes sidecar, or for
# `jwkctl token` in a job. The image holds one static binary and nothing else: no shell, no
# package manager, no root.
#
#   docker build -t jwkctl:dev .
#   docker run --rm jwkctl:dev --version
#
# This build has no cgo, so it serves file, Google Cloud KMS, AWS KMS and Azure Key Vault keys;
# pkcs11: keys answer "built without cgo". For an HSM, build with CGO_ENABLED=1 on a glibc base
# (gcr.io/distroless/base-debian12:nonroot) and mount the vendor's PKCS#11 module; see
# docs/agent.md.

FROM golang:1.26.8-bookworm AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
# -trimpath: no build paths in the binary. The VCS revision is read from .git when present
# (see `jwkctl --version`); .dockerignore keeps everything else out.
RUN CGO_ENABLED=0 go build -trimpath -ldflags='-s -w' -o /out/jwkctl . \
 && /out/jwkctl --version

# distroless static: CA certificates and /etc/passwd with the nonroot user (65532), nothing else.
FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/jwkctl /usr/local/bin/jwkctl
USER 65532:65532
ENTRYPOINT ["/usr/local/bin/jwkctl"]
CMD ["--help"]
