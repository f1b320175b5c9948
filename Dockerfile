# Build a static recourse binary, then ship it on a minimal image.
FROM golang:1.26 AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
RUN CGO_ENABLED=0 go build -trimpath -ldflags "-s -w" -o /out/recourse ./cmd/recourse

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/recourse /usr/local/bin/recourse
WORKDIR /var/lib/recourse
EXPOSE 8080
ENTRYPOINT ["/usr/local/bin/recourse"]
CMD ["serve"]
