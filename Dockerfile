# syntax=docker/dockerfile:1
# fleet-scheduler's image for those who build with Docker. `make image` builds
# the same image without a Docker daemon (hack/image); here the build stage
# runs `make build` and `hack/image --rootfs`, which writes the very files
# the image's layers hold, so both ways ship the same filesystem, user,
# entrypoint and labels (test/image checks that this file agrees).
#
#   docker build --build-arg REVISION=$(git rev-parse --short=12 HEAD) \
#     -t ghcr.io/fleet-scheduler/fleet-scheduler:v0.1.0 .
# or, as an OCI image layout like bin/image:
#   docker buildx build --build-arg REVISION=$(git rev-parse --short=12 HEAD) \
#     --output type=oci,tar=false,dest=bin/image .
ARG GO_VERSION=1.26.8
FROM golang:${GO_VERSION}-bookworm AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
ARG VERSION=v0.1.0
ARG REVISION=unknown
RUN make build VERSION=${VERSION} REVISION=${REVISION} \
 && go run ./hack/image --rootfs /rootfs --binary bin/fleet-scheduler

FROM scratch
ARG VERSION=v0.1.0
ARG REVISION=unknown
ARG CREATED=1970-01-01T00:00:00Z
COPY --from=build /rootfs/ /
# The nonroot user's home, owned by it (COPY makes everything else root's).
COPY --from=build --chown=65532:65532 /rootfs/home/ /home/
USER 65532:65532
ENV PATH=/usr/local/bin:/usr/bin:/bin
WORKDIR /
ENTRYPOINT ["/usr/local/bin/fleet-scheduler"]
LABEL org.opencontainers.image.title="fleet-scheduler" \
      org.opencontainers.image.description="kube-scheduler with the Provisioner plugin: node autoscaling for kubeadm clusters on EC2" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.source="https://github.com/fleet-scheduler/fleet-scheduler" \
      org.opencontainers.image.created="${CREATED}"
