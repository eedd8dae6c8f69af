# syntax=docker/dockerfile:1.7
# curve-operator image: build with the Rust toolchain, run from a distroless base as non-root.
#   docker build -t opencurvedocker/curve-operator:0.1.0 .
# That is the Helm chart's default image (image.repository and its appVersion; tests/helm.rs
# checks the two agree); charts/curve-operator/README.md says how to load it into a cluster.

FROM rust:1.95-bookworm AS builder
# etcd-client compiles etcd's .proto files at build time, which needs protoc.
RUN apt-get update \
 && apt-get install -y --no-install-recommends protobuf-compiler \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY . .
# Cache mounts keep the crate registry and build artefacts between builds; the binary is
# copied out because the target cache is not part of the image.
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked --bin curve-operator \
 && install -D target/release/curve-operator /out/curve-operator

# glibc and libgcc only: TLS is rustls, nothing else is linked dynamically.
FROM gcr.io/distroless/cc-debian12:nonroot
COPY --from=builder /out/curve-operator /curve-operator
# The chart's default securityContext.runAsUser/runAsGroup (distroless "nonroot").
USER 65532:65532
EXPOSE 8080
ENTRYPOINT ["/curve-operator"]
CMD ["run"]
