# syntax=docker/dockerfile:1
#
# The sflow image: one `sflow` binary that is the runtime, the std steps (`sflow step`), the
# data sources (`sflow data`) and the built-in TorchScript model server (`sflow serve`), with the
# CPU libtorch it links. The manifests `sflowc build` emits run it as `<registry>/sflow:<version>`
# (docs/kubernetes-manifests.md §11); compiler/kube/tests/image.rs checks that this file and the
# manifests agree (entrypoint, user, ports, paths, version, data).
#
#   docker build -t ghcr.io/acme/sflow:0.1.0 .          # the tag: <app registry>/sflow:<version>
#   docker buildx build --platform linux/amd64 -t … .   # from an arm64 machine (libtorch is x86_64)
#
# Reproducible inputs: the Rust toolchain by exact version, Cargo.lock (--locked), libtorch
# from three pinned PyPI wheels checked against their sha256 (scripts/setup-libtorch.sh, the
# script developers use), MNIST from the repository. Pin the two base images by digest in your
# registry mirror for bit-for-bit rebuilds (docs/kubernetes.md, "Building the image").

ARG RUST_VERSION=1.95.0

# ---- builder: the `sflow` binary with the ML feature, against a CPU libtorch ----------------
FROM rust:${RUST_VERSION}-slim-bookworm AS builder

SHELL ["/bin/bash", "-o", "pipefail", "-c"]

# g++ for torch-sys's C++ shim; python3-pip only downloads the libtorch wheels (torch is never
# imported); unzip unpacks them. Debian package versions are not pinned (DL3008): a point
# release replaces them, so a pinned version would stop building; the base image pins the suite.
# hadolint ignore=DL3008
RUN apt-get update \
 && apt-get install -y --no-install-recommends g++ python3 python3-pip unzip ca-certificates \
 && rm -rf /var/lib/apt/lists/*

WORKDIR /src
# libtorch first: its layer (~1 GB of wheels, fetched once) survives source changes.
COPY scripts/setup-libtorch.sh scripts/setup-libtorch.sh
RUN SFLOW_LIBTORCH_CACHE=/tmp/wheels scripts/setup-libtorch.sh /opt/libtorch \
 && rm -rf /tmp/wheels

COPY . .
# LIBTORCH: where torch-sys finds it; the binary gets an rpath to /opt/libtorch/lib
# (runtime/build.rs), the same path as in the final stage.
ENV LIBTORCH=/opt/libtorch \
    CARGO_INCREMENTAL=0 \
    CARGO_TERM_COLOR=never
RUN cargo build --release --locked -p sflow-runtime --features ml,kubernetes --bin sflow \
 && install -D -m 0755 target/release/sflow /out/usr/local/bin/sflow \
 # Every library the binary loads must be one the final stage has: glibc and libstdc++ (the
 # base image) and the libtorch files copied below. Anything else fails the build here.
 && LD_LIBRARY_PATH=/opt/libtorch/lib ldd /out/usr/local/bin/sflow | tee /tmp/ldd.txt \
 && ! grep -q 'not found' /tmp/ldd.txt \
 && mkdir -p /out/opt/libtorch/lib \
 && cp -L /opt/libtorch/lib/libtorch_cpu.so /opt/libtorch/lib/libc10.so \
          /opt/libtorch/lib/libgomp.so.1 /opt/libtorch/lib/libcudart.so.13 \
          /opt/libtorch/lib/libcupti.so.13 /out/opt/libtorch/lib/ \
 # The directories the manifests mount volumes on, and the working directory with the MNIST
 # copy that `sflow data std.data.mnist` reads by default (`path = "data/mnist"`, relative to
 # the working directory).
 && mkdir -p /out/artifacts/runs /out/artifacts/sflow/ingest /out/etc/sflow/plan /out/opt/sflow/data \
 && cp -r data/mnist /out/opt/sflow/data/mnist

# ---- the image: glibc + libstdc++, no shell, no package manager ------------------------------
# distroless "cc" (Debian 12) has the C and C++ runtimes libtorch needs and the user `nonroot`,
# uid/gid 65532 — the id every sflow pod runs as (runAsUser/runAsGroup/fsGroup).
FROM gcr.io/distroless/cc-debian12:nonroot

ARG SFLOW_VERSION=0.1.0
LABEL org.opencontainers.image.title="sflow" \
      org.opencontainers.image.description="The sflow runtime, std steps, data sources and TorchScript model server" \
      org.opencontainers.image.version="${SFLOW_VERSION}" \
      org.opencontainers.image.licenses="Apache-2.0"

COPY --from=builder --chown=65532:65532 /out/ /

# HOME: the root filesystem is read-only in the cluster; /tmp is a writable emptyDir there.
# LD_LIBRARY_PATH: belt and braces next to the rpath.
ENV HOME=/tmp \
    LD_LIBRARY_PATH=/opt/libtorch/lib

USER 65532:65532
WORKDIR /opt/sflow
# The runtime's control API, health and metrics; `sflow serve --port 8080` for services.
EXPOSE 8080
ENTRYPOINT ["sflow"]
CMD ["--help"]
